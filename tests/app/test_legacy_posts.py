"""The legacy post, recent-post, insights and token routes against the running stack and the sandbox.

A facade of its own (``api``, in this process) runs beside the session stack's worker and sink, with a CDN base URL so
that stored thumbnails are answered from the CDN. Shapes are compared with legacy §5 key by key.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import httpx
import pytest
import pytest_asyncio

from app.api import create_api
from core.settings import load_settings
from providers.credentials import CredentialStore
from providers.http import Credential, ProviderHttp
from providers.instagram import arraybobo, graphapi
from providers.sandbox.instagram import InstagramWorld
from providers.sandbox.seeds import SANDBOX_CREDENTIALS, sandbox_base_urls
from tests.support import unique

CDN = "https://cdn.beat.example"

# Legacy §5, key by key.
POST_KEYS = {
    "platform",
    "handle",
    "data_provider",
    "shortcode",
    "post_id",
    "post_type",
    "content_type",
    "thumbnail",
    "display_url",
    "story_links",
    "story_hashtags",
    "publish_time",
    "updated_at",
    "metrics",
}
POST_METRIC_KEYS = {"reach", "views", "likes", "play_count", "comments"}
RECENT_POST_KEYS = {
    "shortcode",
    "post_id",
    "post_type",
    "post_url",
    "publish_time",
    "updated_at",
    "metrics",
    "dimensions",
}
RECENT_METRIC_KEYS = {"reach", "views", "likes", "comments", "play_count", "engagement_rate"}
RECENT_DIMENSION_KEYS = {"caption", "comments", "thumbnail_url", "display_url"}
POST_METRICS_KEYS = {"static", "reels", "story", "all"}


@asynccontextmanager
async def _facade(stack, **settings: str) -> AsyncIterator[httpx.AsyncClient]:
    """The facade in this process, on the stack's broker, Postgres and sandbox, with ``settings`` on top (a
    child process would take many seconds to start on a loaded machine)."""
    beat_vars = {key: value for key, value in stack.env.items() if key.startswith("BEAT_")}
    with patch.dict(os.environ, beat_vars):
        app = create_api(load_settings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://facade", timeout=90) as client:
            yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(stack) -> AsyncIterator[httpx.AsyncClient]:
    async with _facade(stack, cdn_base_url=CDN, api_refresh_timeout="60") as client:
        yield client


@pytest_asyncio.fixture
async def sandbox_client(sandbox) -> AsyncIterator[ProviderHttp]:
    http = ProviderHttp(base_urls=sandbox_base_urls(sandbox.url), timeout=10)
    yield http
    await http.aclose()


def _credential(source: str) -> Credential:
    return Credential(id="0", source=source, secrets=SANDBOX_CREDENTIALS[source])


def _ok(body: dict, message: str) -> None:
    assert body["status"] == {"type": "SUCCESS", "message": message}, body


def _error(body: dict, code: int) -> str:
    assert set(body) <= {"status", "scrape_id"} and body["status"]["type"] == "ERROR", body
    assert body["status"]["code"] == code, body
    return body["status"]["message"]


async def _business_account(sandbox_client: ProviderHttp, prefix: str) -> tuple[str, str, list]:
    """A handle Graph can see, its Graph user id (fbid) and the media business discovery lists."""
    client = graphapi.GraphApiClient(sandbox_client)
    for _ in range(40):
        handle = unique(prefix)
        try:
            found = await client.profile_by_handle(handle, credential=_credential("graphapi"))
        except Exception:  # noqa: BLE001, S112 - a personal account: Graph cannot see it, try another
            continue
        if found.embedded_posts:
            return handle, str(found.dimensions["fbid"]), found.embedded_posts
    pytest.fail("no business account with media among 40 sandbox handles")


async def _until(check, what: str, timeout: float = 10.0):
    for _ in range(int(timeout / 0.1)):
        if value := await check():
            return value
        await asyncio.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout} s")


# byshortcode


async def test_byshortcode_refreshes_through_graph(api, pool, sandbox_client):
    handle, fbid, media = await _business_account(sandbox_client, "bysc")
    await CredentialStore(pool).add("graphapi", {"token": f"tok-{handle}", "user_id": fbid}, handle=handle)
    shortcode = media[0].shortcode

    response = await api.get(f"/posts/instagram/byshortcode/{shortcode}", params={"handle": handle})

    assert response.status_code == 200
    body = response.json()
    _ok(body, "Post Retrieved")
    post = body["post"]
    assert set(post) == POST_KEYS and set(post["metrics"]) == POST_METRIC_KEYS
    assert post["platform"] == "instagram" and post["data_provider"] == "GRAPHAPI"
    assert post["shortcode"] == shortcode and post["handle"] == handle
    assert post["post_id"] and "_" not in post["post_id"]
    # Graph insights were stored: reach is Graph's number, not an estimate.
    assert post["metrics"]["reach"] is not None


async def test_byshortcode_without_graph_fails_or_falls_back_to_third_parties(api, pool, run_flow):
    handle = unique("fallback")
    await run_flow("refresh_profile_custom", {"handle": handle, "max_posts": 2})
    shortcode = await pool.fetchval(
        "SELECT shortcode FROM instagram_post WHERE handle = $1 AND post_type <> 'story' LIMIT 1", handle
    )
    assert shortcode, "the profile refresh stored no post"
    path = f"/posts/instagram/byshortcode/{shortcode}"

    # No Graph credential for the handle: the Graph refresh fails, and without the fallback so does the route.
    refused = (await api.get(path, params={"handle": handle})).json()
    assert "graphapi" in _error(refused, 500)

    found = (await api.get(path, params={"handle": handle, "third_party_fallback": "true"})).json()
    _ok(found, "Post Retrieved")
    assert set(found["post"]) == POST_KEYS
    source = await pool.fetchval("SELECT source FROM instagram_post WHERE shortcode = $1", shortcode)
    assert found["post"]["data_provider"] == ("LAMA" if source == "lama" else source.upper()) != "GRAPHAPI"
    assert found["post"]["handle"] == handle

    # The post must belong to the handle asked about.
    other = (await api.get(path, params={"handle": unique("someone_else"), "third_party_fallback": "true"})).json()
    assert "does not belong" in _error(other, 400)


async def test_byshortcode_refusals(api):
    missing_handle = (await api.get("/posts/instagram/byshortcode/ABC")).json()
    assert "handle" in _error(missing_handle, 422)
    nul = (await api.get("/posts/instagram/byshortcode/ABC", params={"handle": "a\x00b"})).json()
    assert "NUL" in _error(nul, 422)
    unknown_platform = (await api.get("/posts/tiktok/byshortcode/ABC", params={"handle": "x"})).json()
    _error(unknown_platform, 422)
    youtube = (await api.get("/posts/youtube/byshortcode/ABC", params={"handle": "x"})).json()
    assert "not supported" in _error(youtube, 400)


# by post type


async def test_post_by_type_refreshes_the_post(api, pool, run_flow):
    handle = unique("bytype")
    await run_flow("refresh_profile_custom", {"handle": handle, "max_posts": 2})
    row = await pool.fetchrow(
        "SELECT shortcode, profile_id FROM instagram_post WHERE handle = $1 AND post_type <> 'story' LIMIT 1", handle
    )
    before = await pool.fetchval("SELECT updated_at FROM instagram_post WHERE shortcode = $1", row["shortcode"])

    body = (
        await api.get(f"/posts/instagram/image/{row['shortcode']}", params={"profile_id": row["profile_id"]})
    ).json()

    _ok(body, "Post Retrieved")
    assert set(body["post"]) == POST_KEYS and body["post"]["shortcode"] == row["shortcode"]
    assert datetime.fromisoformat(body["post"]["updated_at"]) > before
    missing = (await api.get(f"/posts/instagram/image/{row['shortcode']}")).json()
    assert "profile_id" in _error(missing, 422)


async def test_story_by_type_refreshes_the_profiles_stories(api, sandbox_client):
    client = arraybobo.ArrayBoboClient(sandbox_client)
    world = InstagramWorld()
    for i in range(40):
        profile_id = world.profile_id_for(f"storyteller_{uuid.uuid4().hex[:6]}_{i}")
        live = await client.stories(profile_id, credential=_credential(arraybobo.SOURCE))
        if live:
            break
    else:
        pytest.fail("no sandbox account with live stories among 40")

    body = (await api.get(f"/posts/instagram/story/{live[0].shortcode}", params={"profile_id": profile_id})).json()

    _ok(body, "Stories Retrieved")
    assert set(body["post"]) == POST_KEYS and body["post"]["post_type"] == "story"
    gone = (await api.get("/posts/instagram/story/3300000000000000009", params={"profile_id": profile_id})).json()
    assert "Story not found" in _error(gone, 404)


# recent posts


async def _seed_posts(pool, profile_id: str, followers: int) -> list[str]:
    await pool.execute(
        "INSERT INTO instagram_account (profile_id, handle, followers) VALUES ($1, $2, $3)",
        profile_id,
        f"h_{profile_id}",
        followers,
    )
    now = datetime.now(UTC)
    shortcodes = []
    for n in range(14):
        post_type = ("reels", "image", "carousel")[n % 3]
        shortcode = f"{profile_id}_{n}"
        await pool.execute(
            "INSERT INTO instagram_post (shortcode, profile_id, post_id, post_type, caption, thumbnail_url, "
            "display_url, likes, comments, plays, publish_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            shortcode,
            profile_id,
            f"9{n}",
            post_type,
            f"caption {n}",
            f"https://scontent.cdninstagram.com/{shortcode}.jpg",
            f"https://scontent.cdninstagram.com/{shortcode}_d.jpg",
            100 + n,
            5,
            4000 + n if post_type == "reels" else None,
            now - timedelta(hours=n),
        )
        shortcodes.append(shortcode)
    await pool.execute(
        "INSERT INTO instagram_post (shortcode, profile_id, post_type, thumbnail_url, publish_time) "
        "VALUES ($1, $2, 'story', 'https://scontent.cdninstagram.com/s.jpg', $3)",
        f"{profile_id}_story",
        profile_id,
        now + timedelta(hours=1),
    )
    await pool.execute(
        "INSERT INTO asset_log (entity_id, entity_type, platform, asset_type, asset_url) "
        "VALUES ($1, 'POST', 'INSTAGRAM', 'IMAGE', $2)",
        shortcodes[1],
        f"assets/posts/instagram/{shortcodes[1]}.jpg",
    )
    return shortcodes


async def test_recent_posts_shape_and_cdn_thumbnails(api, pool):
    profile_id = str(uuid.uuid4().int)[:12]
    shortcodes = await _seed_posts(pool, profile_id, followers=5000)

    body = (await api.get(f"/recent/posts/instagram/byprofileid/{profile_id}")).json()

    _ok(body, "Recent Posts Retrieved")
    data = body["data"]
    assert set(data) == {"platform", "profile_id", "recent_posts"}
    assert data["platform"] == "instagram" and data["profile_id"] == profile_id
    posts = data["recent_posts"]
    assert [p["shortcode"] for p in posts] == shortcodes[:12]
    for post in posts:
        assert set(post) == RECENT_POST_KEYS
        assert set(post["metrics"]) == RECENT_METRIC_KEYS and set(post["dimensions"]) == RECENT_DIMENSION_KEYS
    reel, image, carousel = posts[:3]
    assert reel["post_url"] == f"https://www.instagram.com/reel/{reel['shortcode']}"
    assert image["post_url"] == f"https://www.instagram.com/p/{image['shortcode']}"
    assert carousel["post_url"] == f"https://www.instagram.com/p/{carousel['shortcode']}"
    assert reel["metrics"]["engagement_rate"] == round((100 + 5) / 5000 * 100, 2)
    assert reel["metrics"]["reach"] > 0 and reel["metrics"]["play_count"] == 4000
    assert image["dimensions"]["thumbnail_url"] == f"{CDN}/assets/posts/instagram/{shortcodes[1]}.jpg"
    assert carousel["dimensions"]["thumbnail_url"] == f"https://scontent.cdninstagram.com/{shortcodes[2]}.jpg"

    reels = (await api.get(f"/recent/posts/instagram/byprofileid/{profile_id}", params={"post_types": "reels"})).json()
    assert {p["post_type"] for p in reels["data"]["recent_posts"]} == {"reels"}


async def test_recent_posts_refusals(api):
    nothing = (await api.get(f"/recent/posts/instagram/byprofileid/{uuid.uuid4().hex}")).json()
    assert "No posts" in _error(nothing, 500)
    youtube = (await api.get("/recent/posts/youtube/byprofileid/1")).json()
    _error(youtube, 400)


# tokens


@pytest.mark.parametrize(
    ("token", "code", "message"),
    [
        ("sandbox-good-token", 200, "Token is valid"),
        ("noscope-token", 190, "Token is invalid"),
        ("expired-token", 190, "Token is invalid"),
        ("dataexpired-token", 500, "Data access expired"),
    ],
)
async def test_token_validate_codes(api, token, code, message):
    params = {"access_token": token, "social_user_id": "17841400000000001", "handle": "x", "type": "graphapi"}
    body = (await api.get("/token/validate", params=params)).json()
    if code == 200:
        assert body == {"status": {"type": "SUCCESS", "message": message}, "code": 200}
    else:
        assert _error(body, code) == message


async def test_token_validate_refusals(api):
    assert "access_token" in _error((await api.get("/token/validate")).json(), 422)
    other = (await api.get("/token/validate", params={"access_token": "t", "type": "ytapi"})).json()
    assert "not supported" in _error(other, 400)


async def test_post_tokens_stores_a_checked_credential(api, pool, sandbox_client):
    handle, fbid, _ = await _business_account(sandbox_client, "tokens")
    offered = {"handle": handle, "token": f"tok-{handle}", "user_id": fbid}
    body = (await api.post("/tokens", json=offered)).json()
    assert body == {"status": {"type": "SUCCESS", "message": "Inserted Successfully"}}
    row = await pool.fetchrow("SELECT source, credentials, enabled FROM credential WHERE handle = $1", handle)
    assert row["source"] == "graphapi" and row["enabled"]
    assert json.loads(row["credentials"]) == {"token": f"tok-{handle}", "user_id": fbid}

    # Graph refuses the token, or it is another account's: nothing is stored.
    other, other_fbid, _ = await _business_account(sandbox_client, "tokens_other")
    expired = {"handle": other, "token": f"expired-{other}", "user_id": other_fbid}
    assert _error((await api.post("/tokens", json=expired)).json(), 190) == "Token is invalid"
    not_theirs = {"handle": other, "token": f"tok-{other}", "user_id": fbid}
    assert "not" in _error((await api.post("/tokens", json=not_theirs)).json(), 400)
    assert not await pool.fetchval("SELECT count(*) FROM credential WHERE handle = $1", other)

    lama = {"source": "lama", "credentials": {"x-access-key": f"key-{handle}"}}
    _ok((await api.post("/tokens", json=lama)).json(), "Inserted Successfully")
    assert await pool.fetchval(
        "SELECT count(*) FROM credential WHERE credentials->>'x-access-key' = $1", f"key-{handle}"
    )

    assert "Unknown source" in _error((await api.post("/tokens", json={"source": "nope", "token": "t"})).json(), 400)
    assert "handle" in _error((await api.post("/tokens", json={"token": "t", "user_id": "1"})).json(), 400)
    assert "NUL" in _error((await api.post("/tokens", json={"handle": "a\u0000b", "token": "t"})).json(), 422)


# insights and the token lifecycle


async def test_expired_credential_fresh_token_then_insights_complete(api, pool, sandbox_client, run_flow):
    handle, fbid, _ = await _business_account(sandbox_client, "lifecycle")
    await run_flow("refresh_profile_basic", {"handle": handle})
    await CredentialStore(pool).add("graphapi", {"token": f"expired-{handle}", "user_id": fbid}, handle=handle)

    # Graph refuses the stored token: the request fails and the credential is taken out of rotation.
    refused = (await api.get(f"/profiles/INSTAGRAM/byhandle/{handle}/audienceinsights")).json()
    _error(refused, 500)

    async def expired():
        return await pool.fetchval(
            "SELECT data_access_expired FROM credential WHERE source = 'graphapi' AND handle = $1", handle
        )

    await _until(expired, "the refused credential being marked expired")

    # A fresh token with the request renews the credential; the workers use it at once.
    fresh = {"token": f"fresh-{handle}", "user_id": fbid}
    body = (await api.get(f"/profiles/INSTAGRAM/byhandle/{handle}/audienceinsights", params=fresh)).json()
    _ok(body, "Audience Insights Retrieved")
    assert set(body["profile"]) == {"handle", "audience_data"}
    assert set(body["profile"]["audience_data"]) == {"city", "gender_age"}
    assert body["profile"]["audience_data"]["city"] and body["profile"]["audience_data"]["gender_age"]
    row = await pool.fetchrow(
        "SELECT credentials, enabled, data_access_expired FROM credential WHERE source = 'graphapi' AND handle = $1",
        handle,
    )
    assert json.loads(row["credentials"])["token"] == f"fresh-{handle}"
    assert row["enabled"] and not row["data_access_expired"]

    # The next insights request completes.
    insights = (await api.get(f"/profiles/INSTAGRAM/byhandle/{handle}/insights", params=fresh)).json()
    _ok(insights, "Profile Insights Retrieved")
    profile = insights["profile"]
    assert set(profile) == {"handle", "followers", "following", "media_count", "post_metrics"}
    assert profile["handle"] == handle and profile["followers"] > 0
    assert set(profile["post_metrics"]) >= POST_METRICS_KEYS
    again = (await api.get(f"/profiles/INSTAGRAM/byhandle/{handle}/audienceinsights")).json()
    _ok(again, "Audience Insights Retrieved")


async def test_insights_of_a_missing_profile(api):
    body = (await api.get(f"/profiles/INSTAGRAM/byhandle/missing_{uuid.uuid4().hex[:8]}/insights")).json()
    assert "Profile not found" in _error(body, 404)


async def test_a_refresh_still_running_answers_its_scrape_id(stack, pool):
    async with _facade(stack, api_refresh_timeout="0.001") as client:
        body = (await client.get(f"/posts/instagram/image/{unique('sc')}", params={"profile_id": "1"})).json()
    assert "still running" in _error(body, 504)
    assert await pool.fetchval("SELECT flow FROM scrape_request_log WHERE id = $1", body["scrape_id"]) == (
        "refresh_post_by_shortcode"
    )
