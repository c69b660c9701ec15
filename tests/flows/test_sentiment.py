"""Sentiment over Kafka (legacy §11.4): the comments flows emit page events, the worker's sentiment feed turns
each page of comments into a ``sentiment_extraction`` request, RAY (the sandbox) judges every comment, and the
sink writes one ``sentiment_log`` row per comment."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agents.flows.context import FlowContext, FlowTools
from agents.flows.pages import MAX_PAGE_ACTIVITIES, emit_pages
from agents.flows.sentiment import SKIPPED, sentiment_extraction
from agents.sentiment_feed import FLOW, sentiment_request
from providers.sandbox import ray as sandbox_ray
from providers.sandbox.youtube import DEMO_CHANNEL_ID, YouTubeWorld
from tests.support import unique, wait_terminal
from topics import names
from topics.models import Activity, Platform, ScrapeRequest, deterministic_id
from topics.params import SentimentParams
from topics.sentiment import ActivityPageLog

ACTIVITY = names.POST_ACTIVITY_LOG
WORLD = YouTubeWorld()


def _comment(n: int, text: str | None = "so good", shortcode: str = "C1") -> Activity:
    return Activity(
        platform=Platform.INSTAGRAM,
        source="rapidapi-jotucker",
        activity_type="COMMENT",
        shortcode=shortcode,
        actor_profile_id=str(n),
        dimensions={"comment_id": f"c{n}", "text": text},
    )


def _context(flow: str = "fetch_post_comments", tools: FlowTools | None = None) -> FlowContext:
    request = ScrapeRequest(id="pinned-request", flow=flow, params={"shortcode": "C1"})
    return FlowContext(request=request, crawler=None, tools=tools)  # type: ignore[arg-type]  # no provider call


def _pages(ctx: FlowContext) -> list[ActivityPageLog]:
    return [event for _, _, event in ctx.events if isinstance(event, ActivityPageLog)]


def test_each_provider_page_becomes_one_page_event_in_pieces_of_a_bounded_size():
    ctx = _context()
    comments = [_comment(n) for n in range(MAX_PAGE_ACTIVITIES + 30)]
    assert emit_pages(ctx, comments, [20, MAX_PAGE_ACTIVITIES + 10]) == 3
    pages = _pages(ctx)
    assert [len(page.activities) for page in pages] == [20, MAX_PAGE_ACTIVITIES, 10]
    assert [a.dimensions["comment_id"] for page in pages for a in page.activities] == [f"c{n}" for n in range(130)]
    assert all(page.kind == "activity_page" and page.actor_profile_id is None for page in pages)
    assert {topic for topic, _, _ in ctx.events} == {ACTIVITY}
    assert len({page.event_id for page in pages}) == 3


def test_a_page_of_comments_becomes_one_request_with_an_id_of_its_own_and_a_page_of_likes_none():
    ctx = _context()
    emit_pages(ctx, [_comment(1, "love it"), _comment(2, None), _comment(3, "   "), _comment(4, "meh")], [4])
    [page] = _pages(ctx)
    request = sentiment_request(page.to_bytes())
    assert request is not None and request.flow == FLOW
    assert request.id == deterministic_id(FLOW, page.event_id) == sentiment_request(page.to_bytes()).id  # type: ignore[union-attr]
    params = SentimentParams.model_validate(request.params)
    # Comments without text give the model nothing to judge (legacy: the text and comment_id dimensions).
    assert [(c.id, c.text) for c in params.comments] == [("c1", "love it"), ("c4", "meh")]
    assert params.platform == "INSTAGRAM" and params.shortcode == "C1" and params.page_event_id == page.event_id

    likes = _context("fetch_post_likes")
    like = Activity(platform=Platform.INSTAGRAM, source="x", activity_type="LIKE", shortcode="C1", actor_profile_id="9")
    emit_pages(likes, [like], [1])
    assert sentiment_request(_pages(likes)[0].to_bytes()) is None
    # A single activity, and bytes that are no event at all, are passed over.
    single = _context()
    single.emit(_comment(5))
    assert sentiment_request(single.events[0][2].to_bytes()) is None
    assert sentiment_request(b'{"kind": "activity_page"') is None


async def test_without_a_ray_url_the_flow_completes_skipped():
    ctx = _context(FLOW, tools=FlowTools())
    params = SentimentParams(platform="YOUTUBE", shortcode="v1", comments=[{"text": "nice", "id": "c1"}])
    result = await sentiment_extraction(ctx, params)
    assert result["sentiment"] == SKIPPED == "skipped: BEAT_RAY_URL is not set"
    assert result["sentiments"] == 0 and ctx.events == []


async def _sentiment_rows(pool, comment_ids: list[str], timeout: float = 60.0) -> dict[str, tuple]:
    deadline = time.monotonic() + timeout
    while True:
        rows = await pool.fetch(
            "SELECT comment_id, platform, platform_post_id, comment, sentiment, score, source FROM sentiment_log "
            "WHERE comment_id = ANY($1)",
            comment_ids,
        )
        if len(rows) == len(comment_ids) or time.monotonic() > deadline:
            return {row["comment_id"]: tuple(row) for row in rows}
        await asyncio.sleep(0.3)


@pytest.mark.parametrize("platform", ["YOUTUBE", "INSTAGRAM"])
async def test_comments_end_to_end_through_kafka_into_sentiment_log(run_flow, stack, pool, events, platform):
    if platform == "YOUTUBE":
        video = next(v for v in WORLD.uploads(DEMO_CHANNEL_ID) if (v.comment_count or 0) >= 45)
        flow, shortcode = "fetch_yt_post_comments", video.video_id
    else:
        _, [profile], _ = await run_flow(
            "refresh_profile_basic", {"handle": unique("sentiment")}, topic=names.PROFILE_LOG
        )
        _, posts, _ = await run_flow(
            "refresh_profile_by_profile_id", {"profile_id": profile["profile_id"]}, topic=names.POST_LOG
        )
        flow, shortcode = (
            "fetch_post_comments",
            max(posts, key=lambda p: p["metrics"].get("comments") or 0)["shortcode"],
        )
    result, _, _ = await run_flow(flow, {"shortcode": shortcode, "max_comments": 40}, topic=ACTIVITY)
    assert result["pages"] >= 1
    everything: list[dict] = []
    # The page events follow the single activities of the same request.
    for _ in range(100):
        everything = [
            e
            for found in events.by_request.values()
            for topic, e in found
            if topic == stack.topic(ACTIVITY) and e.get("shortcode") == shortcode and e["kind"] == "activity_page"
        ]
        if len(everything) >= result["pages"]:
            break
        await asyncio.sleep(0.2)
    request_id = everything[-1]["request_id"]
    pages = [p for p in everything if p["request_id"] == request_id]
    assert len(pages) == result["pages"]
    comments = [a for page in pages for a in page["activities"]]
    assert len(comments) == result["comments"] and all(a["activity_type"] == "COMMENT" for a in comments)
    judged = {a["dimensions"]["comment_id"]: a["dimensions"]["text"] for a in comments if a["dimensions"].get("text")}
    assert judged

    # One sentiment request per page of comments, each COMPLETE, then one row per comment.
    ids = [deterministic_id(FLOW, page["event_id"]) for page in pages]
    statuses = await wait_terminal(pool, ids, timeout=90)
    assert set(statuses.values()) == {"COMPLETE"}, statuses
    rows = await _sentiment_rows(pool, list(judged))
    assert set(rows) == set(judged)
    for comment_id, text in judged.items():
        expected = sandbox_ray.sentiment(text)
        assert rows[comment_id][1:] == (platform, shortcode, text, expected["sentiment"], expected["score"], "beat")
    results = await pool.fetch("SELECT result, source FROM scrape_request_log WHERE id = ANY($1)", ids)
    assert {row["source"] for row in results} == {"ray"}


def test_a_page_from_a_producer_one_version_ahead_is_still_read():
    ctx = _context()
    emit_pages(ctx, [_comment(1, "love it")], [1])
    record = json.loads(_pages(ctx)[0].to_bytes())
    record["added_in_a_later_version"] = 1
    record["activities"][0]["added_in_a_later_version"] = {"any": "shape"}
    request = sentiment_request(json.dumps(record).encode())
    assert request is not None and request.params["comments"] == [{"text": "love it", "id": "c1"}]
