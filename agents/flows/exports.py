"""The eleven CSV exports (legacy §2.3, §11.2): scrape as child requests, wait until they are stored, then
stream the legacy columns from Postgres into the asset store. Each returns its paths under the legacy
result names, with its row counts and any child that failed (the report is written for the rest).

Where the legacy read a system Beat lacks, the nearest equivalent from Beat's own tables is read instead
(README, *Flow status*): the daily and monthly stats come from the daily history (``sinks/history.py``),
the demographic and geography files from ``youtube_profile_insights``, and a channel's category from the
most frequent category of its videos.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from agents.flows import export_sql as sql
from agents.flows.context import FlowContext
from agents.flows.export_io import ReportNotConfigured, ReportRun, chunks, id_list
from agents.flows.youtube import _collect
from providers import operations as ops
from providers.youtube.ad_vs_organic import BATCH as MODEL_BATCH
from providers.youtube.ad_vs_organic import SOURCE as MODEL_SOURCE
from topics.export_params import (
    ChannelIdsParams,
    ChannelRangeParams,
    ChannelVideosParams,
    EngagementParams,
    KeywordVideosParams,
    PlaylistParams,
    VideoIdsParams,
)

# A channel observed this recently is not refreshed again for fetch_channels_csv (legacy: only ids missing
# from the mart were scraped; Beat also refreshes the stale ones).
FRESH_FOR = 86400.0
_PUNCTUATION = re.compile(r"[^\w\s]")


async def fetch_channels_csv(ctx: FlowContext, params: ChannelIdsParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.channel_ids, params.channel_ids_path)
    fresh = {r["channel_id"] for r in await run.tools.pool.fetch(sql.FRESH_CHANNELS, ids, FRESH_FOR)}
    await run.scrape("refresh_yt_profiles", [{"channel_ids": c} for c in chunks([i for i in ids if i not in fresh])])
    path = await run.copy(run.key("fetch_channel_details_csv", f"{run.job}_channel_details.csv"), sql.CHANNELS, ids)
    return run.result(channels_csv=path)


async def fetch_channel_videos_csv(ctx: FlowContext, params: ChannelVideosParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.channel_ids, params.channel_ids_path)
    window = {"start_date": params.start_date.isoformat(), "end_date": params.end_date.isoformat()}
    await run.scrape(
        "refresh_yt_posts_by_channel_id",
        [{"channel_id": channel, "filter": window, "max_posts": params.max_posts} for channel in ids],
    )
    key = run.key("fetch_channel_videos_csv", f"{run.job}_channel_videos.csv")
    path = await run.copy(key, sql.CHANNEL_VIDEOS, ids, params.start_date, params.end_date)
    return run.result(channel_video_csv=path)


async def fetch_playlist_videos_csv(ctx: FlowContext, params: PlaylistParams) -> dict:
    run = ReportRun(ctx)
    playlists, videos, children = [], [], []
    for playlist in await id_list(params.playlist_ids, params.playlist_ids_path):
        listing = await _collect(ctx, ops.FETCH_YT_PLAYLIST_ITEMS, playlist)
        items = list(dict.fromkeys(listing.items))
        playlists += [playlist] * len(items)
        videos += items
        children += [{"post_ids": batch, "playlist_id": playlist} for batch in chunks(items)]
    await run.scrape("refresh_yt_posts", children)
    key = run.key("fetch_playlist_videos_csv", f"{run.job}_playlist_video_details.csv")
    path = await run.copy(key, sql.PLAYLIST_VIDEOS, playlists, videos)
    return run.result(playlist_videos_csv=path)


def clean_keyword(keyword: str) -> str:
    """A keyword without punctuation (legacy), its spaces collapsed."""
    return " ".join(_PUNCTUATION.sub("", keyword).split())


async def fetch_keyword_videos_csv(ctx: FlowContext, params: KeywordVideosParams) -> dict:
    run = ReportRun(ctx)
    raw = await id_list(params.keywords, params.keywords_list_path)
    keywords = list(dict.fromkeys(k for k in map(clean_keyword, raw) if k))
    window = {"start_date": params.start_date.isoformat(), "end_date": params.end_date.isoformat()}
    # One search per keyword: they run side by side, and one that fails leaves the others' videos.
    search = [
        {"job_id": run.job, "keywords": [k], **window, "categorization": False, "frequency": params.frequency}
        for k in keywords
    ]
    topics: list[str] = []
    video_ids: list[str] = []
    for child in await run.scrape("refresh_yt_posts_by_search", search):
        result = await run.tools.children.result_of(child)
        for keyword, found in (result.get("keywords") or {}).items():
            for video_id in found.get("video_ids") or ():
                topics.append(keyword)
                video_ids.append(video_id)
    folder = f"fetch_keyword_videos_csv/{run.day}/{run.job}"
    return run.result(
        video_list_path=await run.copy(f"Data_request/{folder}/video_list.csv", sql.KEYWORD_VIDEOS, video_ids),
        channel_list_path=await run.copy(f"Data_request/{folder}/channel_list.csv", sql.KEYWORD_CHANNELS, video_ids),
        keyword_video_mapping_path=await run.copy(
            f"Data_request/{folder}/keyword_video_mapping.csv", sql.KEYWORD_MAPPING, topics, video_ids
        ),
    )


async def fetch_video_details_csv(ctx: FlowContext, params: VideoIdsParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.video_ids, params.video_ids_path)
    await run.scrape("refresh_yt_posts", [{"post_ids": batch} for batch in chunks(ids)])
    path = await run.copy(run.key("fetch_video_details_csv", f"{run.job}_video_details.csv"), sql.VIDEO_DETAILS, ids)
    return run.result(video_details_csv=path)


async def fetch_channel_monthly_stats_csv(ctx: FlowContext, params: ChannelRangeParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.channel_ids, params.channel_ids_path)
    key = run.key("fetch_channel_monthly_stats_csv", f"{run.job}_channel_monthly_stats.csv")
    path = await run.copy(key, sql.MONTHLY_STATS, ids, params.start_date, params.end_date)
    return run.result(channel_monthly_stats_csv=path)


async def fetch_channel_daily_stats_csv(ctx: FlowContext, params: ChannelRangeParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.channel_ids, params.channel_ids_path)
    key = run.key("fetch_channel_daily_stats_csv", f"{run.job}_channel_daily_stats.csv")
    path = await run.copy(key, sql.DAILY_STATS, ids, params.start_date, params.end_date)
    return run.result(channel_daily_stats_csv=path)


async def fetch_channel_demographic_csv(ctx: FlowContext, params: ChannelIdsParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.channel_ids, params.channel_ids_path)
    folder = f"Data_request/fetch_channel_demographic_csv/{run.day}/{run.job}"
    return run.result(
        channel_demographic_csv=await run.copy(f"{folder}/channel_demographic.csv", sql.DEMOGRAPHIC_CSV, ids),
        channel_demographic_json=await run.copy(
            f"{folder}/channel_demographic.json", sql.DEMOGRAPHIC_JSON, ids, json_lines=True
        ),
    )


async def fetch_channel_audience_geography_csv(ctx: FlowContext, params: ChannelIdsParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.channel_ids, params.channel_ids_path)
    key = run.key("fetch_channel_audience_geography_report_generation", f"{run.job}_channel_geography.csv")
    return run.result(channel_audience_geography_csv=await run.copy(key, sql.GEOGRAPHY, ids))


async def fetch_channel_engagement_csv(ctx: FlowContext, params: EngagementParams) -> dict:
    run = ReportRun(ctx)
    ids = await id_list(params.channel_ids, params.channel_ids_path)
    key = run.key("fetch_channel_engagement_report_generation", f"{run.job}_channel_engagement.csv")
    query = sql.engagement(params.filter_by.value)
    return run.result(channel_engagement_csv=await run.copy(key, query, ids, params.start_date, params.end_date))


AD_COLUMNS = (
    "videoId",
    "ad_predicted",
    "view",
    "Channel_videoCount",
    "duration",
    "Channel_SubscriberCount",
    "DislikeCount",
    "Videoage",
    "likecount",
    "commentcount",
)


def _csv_rows(rows: list[dict[str, Any]]) -> bytes:
    """Rows in the legacy's CSV dialect: NULL as an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([["" if row.get(c) is None else row[c] for c in AD_COLUMNS] for row in rows])
    return out.getvalue().encode()


async def fetch_ad_vs_organic_csv(ctx: FlowContext, params: VideoIdsParams) -> dict:
    run = ReportRun(ctx)
    model = run.tools.ad_vs_organic
    if model is None:
        raise ReportNotConfigured("fetch_ad_vs_organic_csv needs the model's URL: set BEAT_AD_VS_ORGANIC_URL")
    ids = await id_list(params.video_ids, params.video_ids_path)
    await run.scrape("refresh_yt_posts", [{"post_ids": batch} for batch in chunks(ids)])
    channels = [r["channel_id"] for r in await run.tools.pool.fetch(sql.VIDEO_CHANNELS, ids)]
    await run.scrape("refresh_yt_profiles", [{"channel_ids": batch} for batch in chunks(channels)])
    key = run.key("fetch_ad_vs_organic_csv", f"{run.job}_ad_vs_organic.csv")
    upload = await run.tools.store.open_upload(key, "text/csv")
    written = 0
    try:
        await upload.write(_csv_rows([dict(zip(AD_COLUMNS, AD_COLUMNS, strict=True))]))
        async with run.tools.pool.acquire() as conn, conn.transaction():
            # A server-side cursor: the rows arrive a model batch at a time, never all at once.
            cursor = await conn.cursor(sql.AD_FEATURES, ids)
            while batch := [dict(r) for r in await cursor.fetch(MODEL_BATCH)]:
                ctx.used(MODEL_SOURCE)
                predictions = await model.predict(batch, request_id=ctx.request_id)
                for row in batch:
                    row["ad_predicted"] = predictions.get(row["videoId"])
                await upload.write(_csv_rows(batch))
                written += len(batch)
    except BaseException:
        await upload.abort()
        raise
    path = await upload.complete()
    run.rows[key.rsplit("/", 1)[-1]] = written
    return run.result(video_details_csv=path)
