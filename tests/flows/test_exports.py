"""The eleven CSV exports through the session stack: each file's header and column order as legacy §11.2
lists them, its values against the rows the child requests stored, its path, NULL written as an empty
field, and a failing child named in the result. The stack runs one worker process: an export's children
complete in the very worker the export waits in, so its waiting blocks none of the worker's other flows."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from core.requests import request_id_for
from core.settings import load_settings
from providers.sandbox.youtube import (
    MISSING_CHANNEL_ID,
    MISSING_VIDEO_ID,
    YouTubeWorld,
    channel_id_for,
)
from providers.youtube.youtube_data import iso8601_seconds
from tests.support import unique, wait_terminal
from topics.flows import FLOWS, REPORT_MARGIN

VIDEO_COLUMNS = [
    "id",
    "publishedAt",
    "channelId",
    "title",
    "description",
    "channelTitle",
    "tags",
    "categoryId",
    "defaultAudioLanguage",
    "duration",
    "viewCount",
    "likeCount",
    "commentCount",
]
STATS_COLUMNS = [
    "lifetime_views",
    "lifetime_subscribers",
    "lifetime_uploads",
    "netviewchange",
    "subchange",
    "uploadchange",
]
AGES = ["13_17", "18_24", "25_34", "35_44", "45_54", "55_64", "65"]
WORLD = YouTubeWorld()


def today_path() -> str:
    today = datetime.now(UTC).date()
    return f"{today.year}/{today.month}/{today.day}"


def read(path: str) -> tuple[list[str], list[list[str]], str]:
    text = Path(path).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:], text


def cell(value: object) -> str:
    return "" if value is None else str(value)


def channels(count: int, *, max_videos: int = 1000) -> list[str]:
    """World channels nobody else in the session uses, each with at most ``max_videos`` uploads."""
    found = []
    number = random.randrange(10**6, 10**9)
    while len(found) < count:
        number += 1
        channel = WORLD.channel(channel_id_for(number))
        if channel is not None and 0 < channel.video_count <= max_videos:
            found.append(channel.channel_id)
    return found


async def children_of(pool, request_id: str) -> list[dict]:
    rows = await pool.fetch(
        "SELECT id, flow, status, stored FROM scrape_request_log WHERE id LIKE $1 ORDER BY id", f"{request_id}.%"
    )
    return [dict(r) for r in rows]


async def request_id_of(pool, result: dict) -> str:
    # The job names the request: beat_scrape_<id>.
    path = next(v for k, v in result.items() if isinstance(v, str) and "beat_scrape_" in v)
    return path.split("beat_scrape_", 1)[1].split("/", 1)[0].split("_", 1)[0]


def video_row(p) -> list[str]:
    published = p["published_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if p["published_at"] else ""
    seconds = iso8601_seconds(p["duration"])
    return [
        p["shortcode"],
        published,
        cell(p["channel_id"]),
        cell(p["title"]),
        cell(p["description"]),
        cell(p["channel_title"]),
        cell(p["tags"]),
        cell(p["category_id"]),
        cell(p["audio_language"]),
        cell(seconds),
        cell(p["views"]),
        cell(p["likes"]),
        cell(p["comments"]),
    ]


async def posts(pool, ids: list[str]) -> dict[str, object]:
    rows = await pool.fetch("SELECT * FROM youtube_post WHERE shortcode = ANY($1)", ids)
    return {r["shortcode"]: r for r in rows}


async def test_channels_csv_refreshes_missing_channels_and_writes_their_details(run_flow, pool):
    ids = channels(2)
    result, _, _ = await run_flow("fetch_channels_csv", {"channel_ids": [*ids, MISSING_CHANNEL_ID]})
    request_id = await request_id_of(pool, result)
    path = result["channels_csv"]
    assert path.endswith(
        f"Data_request/fetch_channel_details_csv/{today_path()}/beat_scrape_{request_id}_channel_details.csv"
    )
    children = await children_of(pool, request_id)
    assert [(c["id"], c["flow"], c["status"], c["stored"]) for c in children] == [
        (f"{request_id}.0", "refresh_yt_profiles", "COMPLETE", True)
    ]
    header, rows, _ = read(path)
    assert header == [
        "id",
        "title",
        "description",
        "customUrl",
        "country",
        "viewCount",
        "subscriberCount",
        "videoCount",
    ]
    stored = {
        r["channel_id"]: r for r in await pool.fetch("SELECT * FROM youtube_account WHERE channel_id = ANY($1)", ids)
    }
    assert rows == [
        [
            a["channel_id"],
            cell(a["title"]),
            cell(a["description"]),
            cell(a["custom_url"]),
            cell(a["country"]),
            cell(a["views"]),
            cell(a["subscribers"]),
            cell(a["uploads"]),
        ]
        for a in (stored[i] for i in ids)
    ]
    # The sink kept today's history of both channels from the same events.
    history = await pool.fetch(
        "SELECT channel_id, subscribers, views, uploads FROM youtube_account_daily WHERE channel_id = ANY($1) "
        "AND day = (now() AT TIME ZONE 'UTC')::date",
        ids,
    )
    assert {(h["channel_id"], h["subscribers"], h["views"], h["uploads"]) for h in history} == {
        (a["channel_id"], a["subscribers"], a["views"], a["uploads"]) for a in stored.values()
    }
    # Fresh channels are not scraped again.
    again, _, _ = await run_flow("fetch_channels_csv", {"channel_ids": ids})
    assert again["children"] == 0 and again["rows"] == {Path(again["channels_csv"]).name: 2}


async def test_video_details_and_ad_vs_organic(run_flow, pool):
    channel = WORLD.channel(channels(1, max_videos=50)[0])
    assert channel is not None
    videos = [v.video_id for v in WORLD.uploads(channel.channel_id, 0, 3)]
    result, _, _ = await run_flow("fetch_video_details_csv", {"video_ids": [*videos, MISSING_VIDEO_ID]})
    request_id = await request_id_of(pool, result)
    assert result["video_details_csv"].endswith(
        f"Data_request/fetch_video_details_csv/{today_path()}/beat_scrape_{request_id}_video_details.csv"
    )
    header, rows, _ = read(result["video_details_csv"])
    assert header == VIDEO_COLUMNS
    stored = await posts(pool, videos)
    assert rows == [video_row(stored[v]) for v in videos]

    ad, _, _ = await run_flow("fetch_ad_vs_organic_csv", {"video_ids": videos})
    ad_id = await request_id_of(pool, ad)
    assert ad["video_details_csv"].endswith(
        f"Data_request/fetch_ad_vs_organic_csv/{today_path()}/beat_scrape_{ad_id}_ad_vs_organic.csv"
    )
    assert [c["flow"] for c in await children_of(pool, ad_id)] == ["refresh_yt_posts", "refresh_yt_profiles"]
    header, rows, text = read(ad["video_details_csv"])
    assert header == [
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
    ]
    account = await pool.fetchrow(
        "SELECT uploads, subscribers FROM youtube_account WHERE channel_id = $1", channel.channel_id
    )
    expected = []
    for video in videos:
        p = stored[video]
        ad_predicted = int(bool(p["views"]) and (p["likes"] or 0) < 0.01 * p["views"])
        age = (datetime.now(UTC).date() - p["published_at"].astimezone(UTC).date()).days
        expected.append(
            [
                video,
                str(ad_predicted),
                cell(p["views"]),
                cell(account["uploads"]),
                cell(iso8601_seconds(p["duration"])),
                cell(account["subscribers"]),
                "",  # NULL: YouTube no longer publishes dislikes
                str(age),
                cell(p["likes"]),
                cell(p["comments"]),
            ]
        )
    assert rows == expected
    assert all(line.split(",")[6] == "" for line in text.splitlines()[1:] if line.count(",") == 9)


async def test_channel_videos_playlist_and_engagement(run_flow, pool):
    channel = channels(1, max_videos=40)[0]
    end = datetime.now(UTC).date()
    start = end - timedelta(days=3650)
    window = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    result, _, _ = await run_flow("fetch_channel_videos_csv", {"channel_ids": [channel], **window})
    request_id = await request_id_of(pool, result)
    assert result["channel_video_csv"].endswith(
        f"Data_request/fetch_channel_videos_csv/{today_path()}/beat_scrape_{request_id}_channel_videos.csv"
    )
    children = await children_of(pool, request_id)
    assert [(c["flow"], c["stored"]) for c in children] == [("refresh_yt_posts_by_channel_id", True)]
    header, rows, _ = read(result["channel_video_csv"])
    assert header == [*VIDEO_COLUMNS[:9], "seconds", *VIDEO_COLUMNS[10:]]
    stored = await pool.fetch(
        "SELECT * FROM youtube_post WHERE channel_id = $1 ORDER BY published_at DESC, shortcode", channel
    )
    assert len(rows) == len(stored) > 0
    # tags come from the keywords (legacy).
    assert rows == [[*video_row(p)[:6], cell(p["keywords"]), *video_row(p)[7:]] for p in stored]

    playlist = "UU" + channel[2:]
    listed, _, _ = await run_flow("fetch_playlist_videos_csv", {"playlist_ids": [playlist]})
    header, rows, _ = read(listed["playlist_videos_csv"])
    listed_id = await request_id_of(pool, listed)
    assert listed["playlist_videos_csv"].endswith(
        f"Data_request/fetch_playlist_videos_csv/{today_path()}/beat_scrape_{listed_id}_playlist_video_details.csv"
    )
    assert [c["flow"] for c in await children_of(pool, listed_id)] == ["refresh_yt_posts"]
    assert header == [*VIDEO_COLUMNS[:3], "playlistId", *VIDEO_COLUMNS[3:9], "seconds", *VIDEO_COLUMNS[10:]]
    uploads = [v.video_id for v in WORLD.uploads(channel)]
    by_id = await posts(pool, uploads)
    assert [r[0] for r in rows] == uploads
    assert rows == [[*video_row(by_id[v])[:3], playlist, *video_row(by_id[v])[3:]] for v in uploads]

    engaged, _, _ = await run_flow(
        "fetch_channel_engagement_csv",
        {"channel_ids": [channel, MISSING_CHANNEL_ID], "filter_by": "channel_yt_category", **window},
    )
    engaged_id = await request_id_of(pool, engaged)
    assert engaged["channel_engagement_csv"].endswith(
        f"Data_request/fetch_channel_engagement_report_generation/{today_path()}/"
        f"beat_scrape_{engaged_id}_channel_engagement.csv"
    )
    header, rows, _ = read(engaged["channel_engagement_csv"])
    assert header == ["Channel Id", "channel_yt_category", "Subscriber Count"]
    counts = Counter(p["category_id"] for p in stored if p["category_id"] is not None)
    top = max(counts.values())
    subscribers = await pool.fetchval("SELECT subscribers FROM youtube_account WHERE channel_id = $1", channel)
    assert rows == [
        [channel, min(c for c, n in counts.items() if n == top), cell(subscribers)],
        [MISSING_CHANNEL_ID, "", ""],
    ]


async def test_a_failing_child_is_named_and_a_retry_does_not_submit_children_again(stack, pool):
    """The report's first attempt submitted two children, and one of them FAILED; the next attempt (the same
    request id, from its idempotency key) finds them by id, submits neither again, names the failed one and
    writes the rest."""
    failing, channel = channels(2, max_videos=20)
    end = datetime.now(UTC).date()
    window = {"start_date": (end - timedelta(days=3650)).isoformat(), "end_date": end.isoformat()}
    key = unique("export")
    request_id = request_id_for("fetch_channel_videos_csv", key)
    await pool.execute(
        "INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, priority, retry_count, "
        "created_at, status_at, error_type, error_message) VALUES ($1, 'refresh_yt_posts_by_channel_id', "
        "'YOUTUBE', $2::jsonb, 'FAILED', 1, 1, 0, now(), now(), 'ProfileMissing', 'no such channel')",
        f"{request_id}.0",
        json.dumps({"channel_id": failing, "filter": window, "max_posts": 500}),
    )
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post(
            "/requests",
            json={
                "flow": "fetch_channel_videos_csv",
                "params": {"channel_ids": [failing, channel], **window},
                "idempotency_key": key,
            },
        )
    assert response.status_code == 202, response.text
    assert response.json()["id"] == request_id
    assert await wait_terminal(pool, [request_id], timeout=120) == {request_id: "COMPLETE"}
    result = json.loads(await pool.fetchval("SELECT result FROM scrape_request_log WHERE id = $1", request_id))
    assert result["failed_children"] == [
        {
            "id": f"{request_id}.0",
            "flow": "refresh_yt_posts_by_channel_id",
            "status": "FAILED",
            "error": "ProfileMissing: no such channel",
        }
    ]
    children = await children_of(pool, request_id)
    assert [(c["id"], c["status"]) for c in children] == [
        (f"{request_id}.0", "FAILED"),
        (f"{request_id}.1", "COMPLETE"),
    ]
    # The failed child was never produced again: its only status is the one recorded before.
    assert (
        await pool.fetchval("SELECT count(*) FROM scrape_request_event WHERE request_id = $1", f"{request_id}.0") == 0
    )
    _, rows, _ = read(result["channel_video_csv"])
    assert rows and {r[2] for r in rows} == {channel}


async def test_keyword_videos_writes_three_files_under_the_job(run_flow, pool):
    end = datetime.now(UTC).date()
    params = {
        "keywords": ["lofi, music!"],
        "start_date": (end - timedelta(days=20)).isoformat(),
        "end_date": end.isoformat(),
    }
    result, _, _ = await run_flow("fetch_keyword_videos_csv", params)
    request_id = await request_id_of(pool, result)
    folder = f"Data_request/fetch_keyword_videos_csv/{today_path()}/beat_scrape_{request_id}/"
    assert result["video_list_path"].endswith(folder + "video_list.csv")
    assert result["channel_list_path"].endswith(folder + "channel_list.csv")
    assert result["keyword_video_mapping_path"].endswith(folder + "keyword_video_mapping.csv")
    children = await children_of(pool, request_id)
    assert [(c["flow"], c["stored"]) for c in children] == [("refresh_yt_posts_by_search", True)]
    child_params = json.loads(
        await pool.fetchval("SELECT params FROM scrape_request_log WHERE id = $1", children[0]["id"])
    )
    assert child_params["keywords"] == ["lofi music"] and child_params["categorization"] is False

    header, mapping, _ = read(result["keyword_video_mapping_path"])
    assert header == ["topic", "video_id"] and mapping and {m[0] for m in mapping} == {"lofi music"}
    ids = list(dict.fromkeys(m[1] for m in mapping))
    header, videos, _ = read(result["video_list_path"])
    assert header == [*VIDEO_COLUMNS, "post_keywords", "post_thumbnail", "post_type"]
    stored = await posts(pool, ids)
    assert [v[0] for v in videos] == [i for i in ids if i in stored]
    first = stored[videos[0][0]]
    assert videos[0] == [*video_row(first), cell(first["keywords"]), cell(first["thumbnail"]), cell(first["post_type"])]

    header, channel_rows, _ = read(result["channel_list_path"])
    assert header == [
        "channelId",
        "title",
        "description",
        "custom_url",
        "publishedAt",
        "country",
        "viewCount",
        "subscriberCount",
        "videoCount",
        "hiddenSubscriberCount",
        "profile_pic_url",
    ]
    assert sorted(r[0] for r in channel_rows) == sorted({p["channel_id"] for p in stored.values()})
    for row in channel_rows:
        assert "/default.jpg" not in row[10] and row[9] in ("true", "false")


async def seed_history(pool, channel: str, days: dict[date, tuple[int, int, int]]) -> None:
    await pool.executemany(
        "INSERT INTO youtube_account_daily (channel_id, day, views, subscribers, uploads, observed_at) "
        "VALUES ($1, $2, $3, $4, $5, now())",
        [(channel, day, *counts) for day, counts in days.items()],
    )


def month_start(months_ago: int) -> date:
    today = datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - months_ago
    return date(index // 12, index % 12 + 1, 1)


async def test_daily_and_monthly_stats_follow_the_gap_rules(run_flow, pool):
    channel = f"UCstats{random.randrange(10**12)}"
    # Within the history's retention, which the reconciler applies as the test runs.
    m0, m1, m3, m4 = month_start(5), month_start(4), month_start(2), month_start(1)
    d1, d2 = m1 - timedelta(days=2), m1 - timedelta(days=1)
    d3, d4, d5 = m1 + timedelta(days=1), m3 + timedelta(days=9), m4
    await seed_history(
        pool,
        channel,
        {
            d1: (100, 10, 1),
            d2: (150, 12, 2),  # the day after: a daily change
            d3: (200, 15, 2),  # two days later: no daily change; its month's last
            d4: (400, 20, 5),  # a month unobserved: more than 31 days since the last
            d5: (450, 21, 6),
        },
    )
    params = {"channel_ids": [channel], "start_date": d2.isoformat(), "end_date": d5.isoformat()}
    daily, _, _ = await run_flow("fetch_channel_daily_stats_csv", params)
    assert daily["channel_daily_stats_csv"].endswith(
        f"Data_request/fetch_channel_daily_stats_csv/{today_path()}/"
        f"beat_scrape_{await request_id_of(pool, daily)}_channel_daily_stats.csv"
    )
    header, rows, text = read(daily["channel_daily_stats_csv"])
    assert header == ["id", "created_at", *STATS_COLUMNS]
    assert rows == [
        [channel, d2.isoformat(), "150", "12", "2", "50", "2", "1"],
        [channel, d3.isoformat(), "200", "15", "2", "", "", ""],
        [channel, d4.isoformat(), "400", "20", "5", "", "", ""],
        [channel, d5.isoformat(), "450", "21", "6", "", "", ""],
    ]
    # NULL is an empty field, unquoted.
    assert text.splitlines()[2].endswith(",,,")

    monthly, _, _ = await run_flow("fetch_channel_monthly_stats_csv", params)
    header, rows, _ = read(monthly["channel_monthly_stats_csv"])
    assert monthly["channel_monthly_stats_csv"].endswith(
        f"Data_request/fetch_channel_monthly_stats_csv/{today_path()}/"
        f"beat_scrape_{await request_id_of(pool, monthly)}_channel_monthly_stats.csv"
    )
    assert header == ["id", "month", *STATS_COLUMNS]
    assert rows == [
        [channel, m0.isoformat(), "150", "12", "2", "", "", ""],
        [channel, m1.isoformat(), "200", "15", "2", "50", "3", "0"],
        [channel, m3.isoformat(), "400", "20", "5", "", "", ""],
        [channel, m4.isoformat(), "450", "21", "6", "50", "1", "1"],
    ]


async def test_demographic_and_geography_read_the_stored_insights(run_flow, pool):
    channel = f"UCinsights{random.randrange(10**12)}"
    gender_age = {"male": {"age18-24": 30.5, "age25-34": 20.0}, "female": {"age18-24": 25.0, "age65-": 4.5}}
    await pool.execute(
        "INSERT INTO youtube_profile_insights (channel_id, gender_age, country, observed_at) "
        "VALUES ($1, $2::jsonb, $3::jsonb, now())",
        channel,
        json.dumps(gender_age),
        json.dumps({"IN": 600, "US": 300, "GB": 100}),
    )
    await pool.execute("INSERT INTO youtube_account (channel_id, subscribers) VALUES ($1, 5000)", channel)
    result, _, _ = await run_flow("fetch_channel_demographic_csv", {"channel_ids": [channel]})
    request_id = await request_id_of(pool, result)
    folder = f"Data_request/fetch_channel_demographic_csv/{today_path()}/beat_scrape_{request_id}/"
    assert result["channel_demographic_csv"].endswith(folder + "channel_demographic.csv")
    assert result["channel_demographic_json"].endswith(folder + "channel_demographic.json")
    header, rows, _ = read(result["channel_demographic_csv"])
    columns = [*(f"m_{a}" for a in AGES), *(f"f_{a}" for a in AGES), "male", "female", "total_audience", "id"]
    assert header == columns
    expected = ["", "30.5", "20", "", "", "", "", "", "25", "", "", "", "", "4.5", "50.5", "29.5", "5000", channel]
    assert rows == [expected]
    lines = Path(result["channel_demographic_json"]).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {c: (None if v == "" else (v if c == "id" else float(v))) for c, v in zip(columns, expected, strict=True)}
    ]

    geography, _, _ = await run_flow("fetch_channel_audience_geography_csv", {"channel_ids": [channel]})
    path = geography["channel_audience_geography_csv"]
    assert path.endswith(
        f"Data_request/fetch_channel_audience_geography_report_generation/{today_path()}/"
        f"beat_scrape_{await request_id_of(pool, geography)}_channel_geography.csv"
    )
    header, rows, _ = read(path)
    assert header == ["channel_id", "country", "percentage"]
    assert rows == [[channel, "IN", "60.00"], [channel, "US", "30.00"], [channel, "GB", "10.00"]]


def test_each_export_outlasts_its_children():
    children = {
        "fetch_channels_csv": ["refresh_yt_profiles"],
        "fetch_channel_videos_csv": ["refresh_yt_posts_by_channel_id"],
        "fetch_playlist_videos_csv": ["refresh_yt_posts"],
        "fetch_keyword_videos_csv": ["refresh_yt_posts_by_search"],
        "fetch_video_details_csv": ["refresh_yt_posts"],
        "fetch_ad_vs_organic_csv": ["refresh_yt_posts", "refresh_yt_profiles"],
    }
    settings = load_settings()
    for export, flows in children.items():
        waits = sum(settings.timeout_of(FLOWS[flow]) for flow in flows)
        assert settings.timeout_of(FLOWS[export]) >= waits + REPORT_MARGIN, export
    assert settings.timeout_of(FLOWS["fetch_keyword_videos_csv"]) > 3600
