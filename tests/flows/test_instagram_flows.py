"""Every Instagram flow end to end: the API, the broker, the worker, the sandbox, the events it produces."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import pytest_asyncio

from providers.credentials import CredentialStore
from providers.http import Credential, ProviderHttp
from providers.instagram import arraybobo, graphapi
from providers.sandbox.seeds import SANDBOX_CREDENTIALS, sandbox_base_urls
from tests.support import unique, wait_terminal
from topics import names

POST, PROFILE = names.POST_LOG, names.PROFILE_LOG
ACTIVITY, RELATIONSHIP = names.POST_ACTIVITY_LOG, names.PROFILE_RELATIONSHIP_LOG


async def _profile(run_flow, handle: str) -> dict:
    _, [profile], _ = await run_flow("refresh_profile_basic", {"handle": handle}, topic=PROFILE)
    return profile


@pytest_asyncio.fixture
async def sandbox_client(sandbox):
    """Straight to the sandbox, to find entities with the data a test needs."""
    http = ProviderHttp(base_urls=sandbox_base_urls(sandbox.url), timeout=10)
    yield http
    await http.aclose()


def _credential(source: str) -> Credential:
    return Credential(id="0", source=source, secrets=SANDBOX_CREDENTIALS[source])


async def test_refresh_profile_by_profile_id_collects_posts_and_reels(run_flow):
    profile = await _profile(run_flow, unique("byid"))
    result, posts, _ = await run_flow(
        "refresh_profile_by_profile_id", {"profile_id": profile["profile_id"]}, topic=POST, at_least=1
    )
    assert result["profile_id"] == profile["profile_id"]
    assert result["posts"] == len(posts) > 0
    assert all(p["kind"] == "post" and "keywords" in p["dimensions"] for p in posts)


async def test_refresh_profile_custom_stops_past_max_posts(run_flow):
    handle = unique("custom")
    profile = await _profile(run_flow, handle)
    result, posts, _ = await run_flow(
        "refresh_profile_custom", {"handle": handle, "max_posts": 5}, topic=POST, at_least=6
    )
    media = profile["metrics"]["media_count"]
    assert len(posts) == result["posts"] >= min(6, media)


async def test_tagged_posts(run_flow):
    profile = await _profile(run_flow, unique("tagged"))
    _result, posts, source = await run_flow(
        "refresh_tagged_posts_by_profile_id", {"profile_id": profile["profile_id"], "max_posts": 3}
    )
    assert source == "rapidapi-arraybobo"
    assert all(p["dimensions"]["tagged_user_ids"] == profile["profile_id"] for p in posts)


async def test_hashtag_posts(run_flow):
    result, posts, source = await run_flow(
        "fetch_hashtag_posts", {"hashtag": "travel", "max_posts": 20}, topic=POST, at_least=20
    )
    assert source in {"rapidapi-jotucker", "lama"} and result["posts"] == len(posts) >= 20


async def test_followers_and_following(run_flow):
    profile = await _profile(run_flow, unique("social"))
    pid = profile["profile_id"]
    _, followers, source = await run_flow("fetch_profile_followers", {"profile_id": pid}, topic=RELATIONSHIP)
    assert source in {"rocketapi", "rapidapi-jotucker"}
    assert 0 < len(followers) <= 2000
    assert all(f["target_profile_id"] == pid and f["relationship_type"] == "FOLLOWS" for f in followers)
    _, following, _ = await run_flow("fetch_profile_following", {"profile_id": pid}, topic=RELATIONSHIP)
    assert 0 < len(following) <= 200 and all(f["source_profile_id"] == pid for f in following)


async def _activities_and_pages(stack, events, found: list[dict], count: int) -> tuple[list[dict], list[dict]]:
    """A likes or comments request's single activities and its page events."""
    everything = await events.events(found[0]["request_id"], stack.topic(ACTIVITY), at_least=count)
    return [e for e in everything if e["kind"] == "activity"], [e for e in everything if e["kind"] == "activity_page"]


async def test_likes_and_comments(run_flow, stack, events):
    profile = await _profile(run_flow, unique("active"))
    _, posts, _ = await run_flow("refresh_profile_by_profile_id", {"profile_id": profile["profile_id"]}, topic=POST)
    busiest = max(posts, key=lambda p: p["metrics"].get("comments") or 0)
    shortcode = busiest["shortcode"]
    result, found, _ = await run_flow("fetch_post_likes", {"shortcode": shortcode, "max_likes": 30}, topic=ACTIVITY)
    likes, pages = await _activities_and_pages(stack, events, found, result["likes"] + result["pages"])
    assert {a["activity_type"] for a in likes} == {"LIKE"} and len(likes) == result["likes"] <= 30
    # Each page read is one page event too (legacy post_activity_log_bulk), with the page's likes.
    # (Single likes are keyed by their actor, so they arrive spread over partitions: compared as sets.)
    assert sorted(a["actor_profile_id"] for p in pages for a in p["activities"]) == sorted(
        a["actor_profile_id"] for a in likes
    )
    result, found, _ = await run_flow(
        "fetch_post_comments", {"shortcode": shortcode, "max_comments": 20}, topic=ACTIVITY
    )
    comments, pages = await _activities_and_pages(stack, events, found, result["comments"] + result["pages"])
    assert len(comments) == result["comments"] <= 20 and len(pages) == result["pages"] >= 1
    assert all(c["activity_type"] == "COMMENT" and c["shortcode"] == shortcode for c in comments)
    # YAKE keywords are computed in the flow, in the legacy format.
    assert all(c["dimensions"]["keywords"] == "" or c["dimensions"]["keywords"].startswith("[") for c in comments)


async def test_story_posts_by_profile_id_keeps_expired_ids(run_flow, sandbox_client):
    client = arraybobo.ArrayBoboClient(sandbox_client)
    for i in range(40):
        profile = await _profile(run_flow, f"storyteller_{uuid.uuid4().hex[:6]}_{i}")
        live = await client.stories(profile["profile_id"], credential=_credential(arraybobo.SOURCE))
        if live:
            break
    else:
        pytest.fail("no sandbox account with live stories among 40")
    params = {
        "profile_id": profile["profile_id"],
        "handle": profile["handle"],
        "story_ids": [live[0].shortcode, "3300000000000000001"],
        "profile_follower": 1200,
        "profile_er": 2.5,
        "profile_static_er": 1.5,
        "profile_reels_er": 3.5,
    }
    result, stories, _ = await run_flow("refresh_story_posts_by_profile_id", params, topic=POST, at_least=len(live) + 1)
    assert result == {
        "events": {"post_log": len(live) + 1},
        "stories": len(live),
        "expired": 1,
        "announced": len(live) + 1,
    }
    placeholder = next(s for s in stories if s["shortcode"] == "3300000000000000001")
    assert placeholder["dimensions"]["post_type"] == "story" and placeholder["metrics"]["profile_er"] == 2.5
    assert all(s["kind"] == "story" and s["metrics"]["profile_follower"] == 1200 for s in stories)


async def _graph_account(sandbox_client, run_flow, pool) -> dict:
    """A business or creator account (Graph sees it), with its own Graph credential, refreshed once."""
    client = graphapi.GraphApiClient(sandbox_client)
    for _ in range(40):
        handle = unique("biz")
        try:
            found = await client.profile_by_handle(handle, credential=_credential("graphapi"))
        except Exception:  # noqa: BLE001, S112 - a personal account: Graph cannot see it, try another
            continue
        # The account's own token: its stories are read on its own node.
        await CredentialStore(pool).add(
            "graphapi", {"token": f"tok-{handle}", "user_id": found.dimensions["fbid"]}, handle=handle
        )
        _, [profile], source = await run_flow("refresh_profile_basic", {"handle": handle}, topic=PROFILE)
        assert source == "graphapi"
        return profile
    pytest.fail("no business account among 40 sandbox handles")


async def test_post_and_profile_insights(run_flow, sandbox_client, pool):
    profile = await _graph_account(sandbox_client, run_flow, pool)
    handle = profile["handle"]
    _, media, _ = await run_flow("refresh_stories_posts", {"handle": handle}, topic=POST)
    post = next(p for p in media if p["kind"] == "post")
    params = {
        "shortcode": post["shortcode"],
        "handle": handle,
        "post_id": post["dimensions"]["post_id"],
        "post_type": post["dimensions"]["post_type"],
    }
    _, [insights], source = await run_flow("refresh_post_insights", params, topic=POST)
    assert source == "graphapi" and insights["kind"] == "post_insights"
    assert insights["shortcode"] == post["shortcode"] and insights["metrics"]["reach"] is not None

    await _stored(pool, handle)
    _, [audience], _ = await run_flow("refresh_profile_insights", {"handle": handle}, topic=PROFILE)
    dims = audience["dimensions"]
    assert audience["kind"] == "profile_insights" and audience["profile_id"] == profile["profile_id"]

    def total(name: str) -> int:
        return sum(dims[name].values())

    # The sandbox makes engaged < reached < followers: reached and engaged are not swapped.
    assert total("engaged_audience_country") < total("reached_audience_country") < total("audience_country")


async def _stored(pool, handle: str) -> None:
    """Wait for the sink to write the account (its COMPLETE status may land a batch earlier)."""
    for _ in range(100):
        if await pool.fetchval("SELECT 1 FROM instagram_account WHERE handle = $1", handle):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"instagram_account for {handle} never written")


async def test_profile_insights_need_a_stored_profile(stack, pool):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post(
            "/requests", json={"flow": "refresh_profile_insights", "params": {"handle": unique("never_seen")}}
        )
    request_id = response.json()["id"]
    assert (await wait_terminal(pool, [request_id], timeout=60)) == {request_id: "FAILED"}
    error = await pool.fetchval("SELECT error_message FROM scrape_request_log WHERE id = $1", request_id)
    assert "refresh the profile first" in error


async def test_stories_and_story_insights(run_flow, sandbox_client, pool):
    client = graphapi.GraphApiClient(sandbox_client)
    for _ in range(40):
        profile = await _graph_account(sandbox_client, run_flow, pool)
        own = Credential(
            id="0",
            source="graphapi",
            handle=profile["handle"],
            secrets={"token": "tok", "user_id": profile["dimensions"]["fbid"]},
        )
        stories, _ = await client.stories_and_media(profile["handle"], credential=own)
        if stories:
            break
    else:
        pytest.fail("no business account with stories among 40")
    handle = profile["handle"]
    result, posts, _ = await run_flow("refresh_stories_posts", {"handle": handle}, topic=POST, at_least=len(stories))
    story = next(p for p in posts if p["kind"] == "story")
    assert result["stories"] == len(stories) and story["dimensions"]["post_type"] == "story"
    assert story["dimensions"]["profile_id"] == story["profile_id"]
    params = {
        "story_id": story["dimensions"]["post_id"],
        "shortcode": story["shortcode"],
        "profile_id": profile["profile_id"],
        "handle": handle,
    }
    _, [insights], _ = await run_flow("refresh_story_insights", params, topic=POST)
    assert insights["kind"] == "post_insights" and insights["shortcode"] == story["shortcode"]
    assert "tap_forward" in insights["metrics"]
