"""Every YouTube flow end to end: the API, the broker, the worker, the sandbox's YouTube, the events, Postgres."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from agents.flows.context import FlowContext, FlowTools
from agents.flows.youtube import refresh_yt_posts_by_search
from core.settings import Settings
from providers.clients import build_clients
from providers.crawler import Crawler
from providers.credential_cache import CredentialCache
from providers.credentials import CredentialPolicy, CredentialStore
from providers.http import ProviderHttp
from providers.sandbox.seeds import sandbox_base_urls
from providers.sandbox.youtube import (
    CITY_REPORT_DOWN_CHANNEL_ID,
    DEMO_CHANNEL_ID,
    DEMO_UPLOADS_PLAYLIST_ID,
    FOUR_MINUTE_VIDEO_ID,
    HIDDEN_SUBSCRIBERS_CHANNEL_ID,
    LIKES_HIDDEN_VIDEO_ID,
    LONG_VIDEO_ID,
    LONGER_SHORT_VIDEO_ID,
    MISSING_CHANNEL_ID,
    MISSING_VIDEO_ID,
    SHORT_VIDEO_ID,
    SUBSCRIPTIONS_HIDDEN_CHANNEL_ID,
    WIDE_VIDEO_ID,
    YouTubeWorld,
    channel_id_for,
)
from providers.sandbox.youtube_analytics import refresh_token_for
from providers.youtube.youtube_web import YouTubeWebClient
from tests.support import unique, wait_terminal
from topics import names
from topics.models import Platform, ScrapeRequest, utcnow
from topics.params import YtSearchParams

POST, PROFILE, ACTIVITY = names.POST_LOG, names.PROFILE_LOG, names.POST_ACTIVITY_LOG
YT_ACTIVITY, YT_RELATIONSHIP = names.YT_ACTIVITY_LOG, names.YT_PROFILE_RELATIONSHIP_LOG
WORLD = YouTubeWorld()


def _day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


def _traces(events, stack, request_id: str, path_end: str) -> list[dict]:
    return [
        value
        for topic, value in events.by_request.get(request_id, [])
        if topic == stack.topic(names.TRACE_LOG) and value["path"].endswith(path_end)
    ]


async def _stored(pool, request_id: str, timeout: float = 30.0) -> None:
    """Wait until the sink has written every event the request's COMPLETE announced."""
    deadline = time.monotonic() + timeout
    while not await pool.fetchval("SELECT stored FROM scrape_request_log WHERE id = $1", request_id):
        assert time.monotonic() < deadline, f"request {request_id} was not stored in {timeout} s"
        await asyncio.sleep(0.2)


async def test_profiles_in_batches_of_forty(run_flow, stack, pool, events):
    crowd = [channel_id_for(n) for n in range(7000, 7043)]
    ids = [DEMO_CHANNEL_ID, HIDDEN_SUBSCRIBERS_CHANNEL_ID, *crowd, MISSING_CHANNEL_ID]
    result, profiles, source = await run_flow("refresh_yt_profiles", {"channel_ids": ids}, topic=PROFILE, at_least=45)
    assert source == "ytapitoken"
    assert result["profiles"] == 45 and result["missing"] == [MISSING_CHANNEL_ID]
    # 46 ids: one call of 40 and one of 6.
    assert len(_traces(events, stack, profiles[0]["request_id"], "/youtube/v3/channels")) == 2

    by_id = {p["profile_id"]: p for p in profiles}
    demo, world_demo = by_id[DEMO_CHANNEL_ID], WORLD.channel(DEMO_CHANNEL_ID)
    assert demo["source"] == "ytapi" and demo["platform"] == "YOUTUBE"
    assert demo["metrics"]["subscriber_count"] == world_demo.subscriber_count  # a string in the API's answer
    assert demo["metrics"]["video_count"] == world_demo.video_count
    assert demo["dimensions"]["uploads_playlist_id"] == DEMO_UPLOADS_PLAYLIST_ID
    hidden = by_id[HIDDEN_SUBSCRIBERS_CHANNEL_ID]
    assert hidden["metrics"]["hidden_subscriber_count"] == 1 and hidden["metrics"]["subscriber_count"] is None

    row = await pool.fetchrow(
        "SELECT subscribers, uploads, title, uploads_playlist_id FROM youtube_account WHERE channel_id = $1",
        DEMO_CHANNEL_ID,
    )
    assert (row["subscribers"], row["uploads"], row["title"], row["uploads_playlist_id"]) == (
        world_demo.subscriber_count,
        world_demo.video_count,
        world_demo.title,
        DEMO_UPLOADS_PLAYLIST_ID,
    )
    hidden_row = await pool.fetchrow(
        "SELECT subscribers, is_subscriber_count_hidden FROM youtube_account WHERE channel_id = $1",
        HIDDEN_SUBSCRIBERS_CHANNEL_ID,
    )
    assert hidden_row["is_subscriber_count_hidden"] is True and hidden_row["subscribers"] is None


async def test_posts_then_type_probe_never_overwrite_with_nulls(run_flow, pool):
    ids = [SHORT_VIDEO_ID, LONG_VIDEO_ID, LIKES_HIDDEN_VIDEO_ID, MISSING_VIDEO_ID]
    result, posts, _ = await run_flow(
        "refresh_yt_posts",
        {"post_ids": ids, "playlist_id": "PLbeat-test", "category": "Comedy", "topic": "sketch"},
        topic=POST,
        at_least=3,
    )
    assert result["posts"] == 3 and result["missing"] == [MISSING_VIDEO_ID]
    long_post = next(p for p in posts if p["shortcode"] == LONG_VIDEO_ID)
    assert long_post["dimensions"]["duration"] == "PT1H2M3S" and long_post["dimensions"]["post_type"] == "video"
    assert long_post["dimensions"]["keywords"].startswith("[")
    assert long_post["profile_id"] == DEMO_CHANNEL_ID

    rows = {
        r["shortcode"]: r
        for r in await pool.fetch(
            "SELECT shortcode, likes, views, duration, post_type, playlist_id, category FROM youtube_post "
            "WHERE shortcode = ANY($1)",
            ids,
        )
    }
    assert set(rows) == {SHORT_VIDEO_ID, LONG_VIDEO_ID, LIKES_HIDDEN_VIDEO_ID}
    assert rows[LIKES_HIDDEN_VIDEO_ID]["likes"] is None and rows[LIKES_HIDDEN_VIDEO_ID]["views"] is not None
    assert rows[LONG_VIDEO_ID]["likes"] == WORLD.video(LONG_VIDEO_ID).like_count
    assert rows[LONG_VIDEO_ID]["playlist_id"] == "PLbeat-test" and rows[LONG_VIDEO_ID]["category"] == "Comedy"
    # 45 s: the Data API alone cannot tell a short, so the refresh asked the shorts probe; the others are
    # over three minutes and were not probed.
    assert result["probed"] == 1 and result["probe_failed"] == 0
    assert rows[SHORT_VIDEO_ID]["post_type"] == "short" and rows[LIKES_HIDDEN_VIDEO_ID]["post_type"] == "video"

    # A later refresh without the playlist keeps it (the legacy engine wrote the null over it).
    await run_flow("refresh_yt_posts", {"post_ids": [LONG_VIDEO_ID]}, topic=POST)
    assert (
        await pool.fetchval("SELECT playlist_id FROM youtube_post WHERE shortcode = $1", LONG_VIDEO_ID) == "PLbeat-test"
    )

    short, [probe], source = await run_flow("refresh_yt_post_type", {"post_id": SHORT_VIDEO_ID}, topic=POST)
    assert short["post_type"] == "short" and source == "youtube-web"
    assert probe["dimensions"] == {"post_type": "short"}
    video, _, _ = await run_flow("refresh_yt_post_type", {"post_id": LONG_VIDEO_ID}, topic=POST)
    assert video["post_type"] == "video"
    stored = {
        r["shortcode"]: r
        for r in await pool.fetch(
            "SELECT shortcode, post_type, title, likes FROM youtube_post WHERE shortcode = ANY($1)",
            [SHORT_VIDEO_ID, LONG_VIDEO_ID],
        )
    }
    assert stored[SHORT_VIDEO_ID]["post_type"] == "short" and stored[LONG_VIDEO_ID]["post_type"] == "video"
    # The probe's event carries the type only; the rest of the row stays as the Data API left it.
    assert stored[SHORT_VIDEO_ID]["title"] == WORLD.video(SHORT_VIDEO_ID).title
    assert stored[SHORT_VIDEO_ID]["likes"] == WORLD.video(SHORT_VIDEO_ID).like_count


async def test_profile_insights_with_the_channel_s_oauth_credential(run_flow, pool):
    result, [insights], source = await run_flow(
        "refresh_yt_profile_insights", {"channel_id": DEMO_CHANNEL_ID}, topic=PROFILE
    )
    assert source == "ytapi" and insights["kind"] == "profile_insights"
    row = await pool.fetchrow(
        "SELECT city, country, gender_age FROM youtube_profile_insights WHERE channel_id = $1", DEMO_CHANNEL_ID
    )
    audience = WORLD.audience(WORLD.channel(DEMO_CHANNEL_ID))
    assert row is not None
    country = json.loads(row["country"])
    assert country == dict(audience.countries)
    assert set(json.loads(row["gender_age"])) <= {"female", "male", "uncategorized"}
    assert len(json.loads(row["city"])) == len(audience.cities)
    assert result["reports"] == ["city", "country", "gender_age"] and result["failed_reports"] == {}


async def test_insights_keep_the_reports_that_arrived(run_flow, pool):
    """The channel's city report backend is down: country and age × gender still reach the event and the row,
    and the request completes naming the report that failed and why."""
    await CredentialStore(pool).add(
        "ytapi",
        {
            "refresh_token": refresh_token_for(CITY_REPORT_DOWN_CHANNEL_ID),
            "channel_id": CITY_REPORT_DOWN_CHANNEL_ID,
            "client_id": "sandbox-client.apps.googleusercontent.com",
            "client_secret": "sandbox-client-secret",
        },
        handle=CITY_REPORT_DOWN_CHANNEL_ID,
    )
    result, [insights], source = await run_flow(
        "refresh_yt_profile_insights", {"channel_id": CITY_REPORT_DOWN_CHANNEL_ID}, topic=PROFILE
    )
    assert source == "ytapi"
    assert result["reports"] == ["country", "gender_age"]
    assert result["failed_reports"] == {"city": "ProviderUnavailable: GET /v2/reports answered 503"}
    assert set(insights["dimensions"]) == {"country", "gender_age"}
    await _stored(pool, insights["request_id"])
    row = await pool.fetchrow(
        "SELECT city, country, gender_age FROM youtube_profile_insights WHERE channel_id = $1",
        CITY_REPORT_DOWN_CHANNEL_ID,
    )
    audience = WORLD.audience(WORLD.channel(CITY_REPORT_DOWN_CHANNEL_ID))
    assert row["city"] is None and json.loads(row["country"]) == dict(audience.countries)
    female = {group: pct for gender, group, pct in audience.gender_age if gender == "female"}
    assert json.loads(row["gender_age"])["female"] == female


async def test_shorts_up_to_three_minutes_are_probed(run_flow, stack, pool, events):
    """A 2:30 Short is labelled a short because the probe answered 200; a 2:30 wide video is probed and is a
    video (303); a 4-minute upload is a video by its length and gets no probe."""
    ids = [LONGER_SHORT_VIDEO_ID, WIDE_VIDEO_ID, FOUR_MINUTE_VIDEO_ID]
    result, posts, _ = await run_flow("refresh_yt_posts", {"post_ids": ids}, topic=POST, at_least=3)
    assert (result["posts"], result["probed"], result["probe_failed"]) == (3, 2, 0)
    by_id = {p["shortcode"]: p for p in posts}
    assert [by_id[i]["dimensions"]["duration"] for i in ids] == ["PT2M30S", "PT2M30S", "PT4M"]
    assert [by_id[i]["dimensions"]["post_type"] for i in ids] == ["short", "video", "video"]
    request_id = posts[0]["request_id"]
    probes = [
        t
        for t in await events.events(request_id, stack.topic(names.TRACE_LOG), at_least=3)
        if t["source"] == "youtube-web"
    ]
    assert sorted((t["path"], t["status"]) for t in probes) == sorted(
        [(f"/youtube-web/shorts/{LONGER_SHORT_VIDEO_ID}", 200), (f"/youtube-web/shorts/{WIDE_VIDEO_ID}", 303)]
    )
    await _stored(pool, request_id)
    stored = dict(await pool.fetch("SELECT shortcode, post_type FROM youtube_post WHERE shortcode = ANY($1)", ids))
    assert stored == {LONGER_SHORT_VIDEO_ID: "short", WIDE_VIDEO_ID: "video", FOUR_MINUTE_VIDEO_ID: "video"}


async def _failed(stack, pool, flow: str, params: dict) -> tuple[str, str]:
    """Submit one request that must end FAILED; its error type and message."""
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post("/requests", json={"flow": flow, "params": params})
    request_id = response.json()["id"]
    assert (await wait_terminal(pool, [request_id], timeout=60)) == {request_id: "FAILED"}
    row = await pool.fetchrow("SELECT error_type, error_message FROM scrape_request_log WHERE id = $1", request_id)
    return row["error_type"], row["error_message"]


async def test_a_channel_without_an_oauth_credential_fails_clearly(stack, pool):
    _, error = await _failed(stack, pool, "refresh_yt_profile_insights", {"channel_id": HIDDEN_SUBSCRIBERS_CHANNEL_ID})
    assert "ytapi: no enabled credential for " + HIDDEN_SUBSCRIBERS_CHANNEL_ID in error


async def test_uploads_playlist_capped_and_complete(run_flow, pool):
    capped, _, _ = await run_flow(
        "refresh_yt_posts_by_playlist_id", {"channel_id": DEMO_CHANNEL_ID, "max_posts": 5}, topic=POST, at_least=5
    )
    assert capped["posts"] == 5 and capped["playlist_id"] == DEMO_UPLOADS_PLAYLIST_ID
    newest = [v.video_id for v in WORLD.uploads(DEMO_CHANNEL_ID, 0, 5)]
    rows = await pool.fetch(
        "SELECT shortcode FROM youtube_post WHERE shortcode = ANY($1) AND playlist_id = $2",
        newest,
        DEMO_UPLOADS_PLAYLIST_ID,
    )
    assert len(rows) == 5

    # No max_posts: every page of the playlist.
    everything, _, _ = await run_flow("refresh_yt_posts_by_playlist_id", {"channel_id": DEMO_CHANNEL_ID})
    assert everything["listed"] == WORLD.channel(DEMO_CHANNEL_ID).video_count > 50
    assert everything["posts"] == everything["listed"] and everything["stopped"] is None


async def test_channel_posts_by_date_window_and_by_count(run_flow):
    today = utcnow().date()
    start, end = today - timedelta(days=120), today
    window, _, _ = await run_flow(
        "refresh_yt_posts_by_channel_id",
        {"channel_id": DEMO_CHANNEL_ID, "filter": {"start_date": start.isoformat(), "end_date": end.isoformat()}},
    )
    expected = [v for v in WORLD.uploads(DEMO_CHANNEL_ID) if start <= _day(v.published_at) <= end]
    assert window["listed"] == len(expected) > 0

    counted, posts, _ = await run_flow(
        "refresh_yt_posts_by_channel_id", {"channel_id": DEMO_CHANNEL_ID, "max_posts": 3}, topic=POST, at_least=3
    )
    assert counted["listed"] == 3
    assert {p["shortcode"] for p in posts} == {v.video_id for v in WORLD.uploads(DEMO_CHANNEL_ID, 0, 3)}


async def test_genre_posts_carry_the_category(run_flow, pool):
    result, posts, _ = await run_flow(
        "refresh_yt_posts_by_genre", {"category": "cricket", "language": "hi"}, topic=POST
    )
    assert 0 < result["listed"] <= 100 and result["posts"] == result["listed"]
    assert all(p["dimensions"]["category"] == "cricket" for p in posts)


async def test_keyword_search_with_categorisation(run_flow, stack, pool, events):
    today = utcnow().date()
    params = {
        "job_id": "job-1",
        "keywords": ["street food", "exam strategy"],
        "start_date": (today - timedelta(days=20)).isoformat(),
        "end_date": today.isoformat(),
    }
    result, posts, _ = await run_flow("refresh_yt_posts_by_search", params, topic=POST, at_least=2)
    assert result["windows"] == 3  # 21 days in weekly windows
    found = result["keywords"]["street food"]
    assert found["found"] > 0 and found["posts"] == found["found"] and found["profiles"] > 0
    assert found["errors"] == []
    request_id = posts[0]["request_id"]
    everything = await events.events(request_id, stack.topic(POST), at_least=found["found"] * 2)
    categorized = [p for p in everything if p["source"] == "categorization"]
    assert result["categorization"] == "done" and len(categorized) == result["categorized"] > 0
    assert {"label", "score"} <= set(categorized[0]["dimensions"]["categorization"])
    topics = {p["dimensions"].get("topic") for p in everything if p["source"] == "ytapi"}
    assert {"street food", "exam strategy"} <= topics
    channels = {p["profile_id"] for p in await events.events(request_id, stack.topic(PROFILE), at_least=1)}
    assert channels and all(c.startswith("UC") for c in channels)


async def _comments_and_pages(stack, events, found: list[dict], result: dict) -> tuple[list[dict], list[dict]]:
    """A comments request's single comments and its page events (legacy post_activity_log_bulk)."""
    everything = await events.events(
        found[0]["request_id"], stack.topic(ACTIVITY), at_least=result["comments"] + result["pages"]
    )
    return [e for e in everything if e["kind"] == "activity"], [e for e in everything if e["kind"] == "activity_page"]


async def test_comments_capped_with_keywords(run_flow, pool, stack, events):
    video = next(v for v in WORLD.uploads(DEMO_CHANNEL_ID) if (v.comment_count or 0) >= 120)
    result, found, _source = await run_flow(
        "fetch_yt_post_comments", {"shortcode": video.video_id, "max_comments": 60}, topic=ACTIVITY, at_least=60
    )
    comments, pages = await _comments_and_pages(stack, events, found, result)
    assert result["comments"] == 60 and len(comments) == 60 and result["cursor"]
    assert sum(len(p["activities"]) for p in pages) == 60 and len(pages) == result["pages"]
    assert all(c["activity_type"] == "COMMENT" and c["platform"] == "YOUTUBE" for c in comments)
    assert all("keywords" in c["dimensions"] for c in comments)
    stored = await pool.fetchval("SELECT count(*) FROM post_activity_log WHERE platform_post_id = $1", video.video_id)
    assert stored == 60


async def test_a_comment_without_an_author_channel_is_kept(run_flow, pool, stack, events):
    """The API gives authorChannelId "if any": such a comment reaches the event (actor null, text kept, so
    sentiment sees it) and the row ("" stands for the missing actor in the table's key)."""
    count = 20
    video = next(
        v
        for v in WORLD.uploads(DEMO_CHANNEL_ID)
        if (v.comment_count or 0) >= count and any(c.author is None for c in WORLD.comments(v)[:count])
    )
    expected = WORLD.comments(video)[:count]
    anonymous = [c for c in expected if c.author is None]
    result, found, _ = await run_flow(
        "fetch_yt_post_comments", {"shortcode": video.video_id, "max_comments": count}, topic=ACTIVITY, at_least=count
    )
    comments, _pages = await _comments_and_pages(stack, events, found, result)
    assert result["comments"] == count
    assert {c["dimensions"]["comment_id"] for c in comments} == {c.comment_id for c in expected}
    kept = {c["dimensions"]["comment_id"]: c for c in comments if c["actor_profile_id"] is None}
    assert set(kept) == {c.comment_id for c in anonymous}
    assert all(kept[c.comment_id]["dimensions"]["text"] == c.text for c in anonymous)
    await _stored(pool, comments[0]["request_id"])
    rows = await pool.fetch(
        "SELECT comment_id, actor_profile_id, dimensions FROM post_activity_log "
        "WHERE platform_post_id = $1 AND comment_id = ANY($2)",
        video.video_id,
        [c.comment_id for c in expected],
    )
    assert len(rows) == count
    actors = {r["comment_id"]: r["actor_profile_id"] for r in rows}
    assert {i for i, actor in actors.items() if actor == ""} == {c.comment_id for c in anonymous}
    texts = {r["comment_id"]: json.loads(r["dimensions"])["text"] for r in rows}
    assert all(texts[c.comment_id] == c.text for c in anonymous)


async def test_activities_and_subscriptions_are_events_only(run_flow, stack, pool):
    activities, found, _ = await run_flow("refresh_yt_activities", {"channel_id": DEMO_CHANNEL_ID}, topic=YT_ACTIVITY)
    assert activities["activities"] == len(found) > 0
    assert {a["activity_type"] for a in found} <= {"upload", "subscription", "playlistItem"}
    assert all(a["actor_channel_id"] == DEMO_CHANNEL_ID for a in found)

    subscriber = next(
        c
        for c in (WORLD.channel(channel_id_for(n)) for n in range(5000, 5100))
        if not c.subscriptions_hidden and len(WORLD.subscriptions(c)) > 60
    )
    expected = WORLD.subscriptions(subscriber)
    relationships, found, _ = await run_flow(
        "refresh_yt_profile_relationship",
        {"channel_id": subscriber.channel_id},
        topic=YT_RELATIONSHIP,
        at_least=len(expected),
    )
    assert relationships["subscriptions"] == len(expected)
    assert {r["target_channel_id"] for r in found} == {s.target.channel_id for s in expected}
    assert {r["relationship_type"] for r in found} == {"subscription"}


async def test_hidden_subscriptions_fail_with_their_own_reason(stack, pool):
    error_type, _ = await _failed(
        stack, pool, "refresh_yt_profile_relationship", {"channel_id": SUBSCRIPTIONS_HIDDEN_CHANNEL_ID}
    )
    assert error_type == "SubscriptionForbidden"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"job_id": "j", "keywords": ["x"], "start_date": "2026-02-01", "end_date": "2026-01-01"}, "before start_date"),
        ({"category": "cricket", "language": "hi"}, "job_id"),  # the legacy genre DAG's mismatched params
    ],
)
async def test_bad_search_params_are_dead_lettered(stack, pool, params, reason):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post("/requests", json={"flow": "refresh_yt_posts_by_search", "params": params})
    assert response.status_code == 422 and reason in response.text


async def test_search_without_ray_completes_and_says_so(sandbox, pool, database_url):
    """The flow function itself, in process, with the real crawler against the sandbox and no RAY configured."""
    http = ProviderHttp(base_urls=sandbox_base_urls(sandbox.url), timeout=10)
    cache = await CredentialCache.open(pool, database_url, refresh_interval=30.0, max_age=300.0)
    try:
        crawler = Crawler(cache, CredentialPolicy(cache, {}, 900.0), build_clients(http, Settings()))
        today = utcnow().date()
        params = YtSearchParams(
            job_id="no-ray", keywords=["road trip"], start_date=today - timedelta(days=6), end_date=today
        )
        request = ScrapeRequest(
            id=unique("no-ray"),
            flow="refresh_yt_posts_by_search",
            platform=Platform.YOUTUBE,
            params=params.model_dump(mode="json"),
        )
        ctx = FlowContext(
            request=request, crawler=crawler, wait_scale=0, tools=FlowTools(youtube_web=YouTubeWebClient(http))
        )
        result = await refresh_yt_posts_by_search(ctx, params)
    finally:
        await cache.aclose()
        await http.aclose()
    assert result["categorization"] == "skipped: BEAT_RAY_URL is not set" and result["categorized"] == 0
    assert result["keywords"]["road trip"]["found"] > 0
    assert not [event for _, _, event in ctx.events if event.source == "categorization"]
