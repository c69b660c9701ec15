"""The legacy profile routes against the running stack: shapes key by key (legacy §5), freshness, limits, errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx
import pytest

from providers.sandbox.youtube import YouTubeWorld, channel_id_for
from tests.support import unique, wait_terminal

# Legacy §5, byhandle's ``profile`` (Instagram) and YouTube's.
IG_KEYS = {
    "platform",
    "handle",
    "fbid",
    "profile_pic_url",
    "profile_id",
    "biography",
    "following",
    "followers",
    "full_name",
    "is_private",
    "updated_at",
    "post_metrics",
    "recent_posts",
    "profile_type",
    "media_count",
}
YT_KEYS = {"platform", "channel_id", "title", "subscribers", "uploads", "views", "thumbnail"}
POST_METRICS_GROUPS = {"static", "reels", "story", "all"}


async def get(stack, path: str, **params: str) -> dict:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        answer = await client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def refreshes(pool: asyncpg.Pool, flow: str, key: str, value: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, priority FROM scrape_request_log WHERE flow = $1 AND params->>$2 = $3", flow, key, value
    )


async def age(pool: asyncpg.Pool, table: str, column: str, value: str, days: float) -> None:
    await pool.execute(
        f"UPDATE {table} SET updated_at = now() - $2::interval WHERE {column} = $1", value, timedelta(days=days)
    )


def error(answer: dict, code: int) -> str:
    assert answer.keys() <= {"status", "scrape_id"}, answer
    assert answer["status"]["type"] == "ERROR" and answer["status"]["code"] == code, answer
    return answer["status"]["message"]


async def test_byhandle_refreshes_a_missing_profile_then_answers_from_postgres(stack, pool):
    handle = unique("ph")
    answer = await get(stack, f"/profiles/instagram/byhandle/{handle}")
    assert answer.keys() == {"status", "profile"}
    assert answer["status"] == {"type": "SUCCESS", "message": "Profile found"}
    profile = answer["profile"]
    assert profile.keys() == IG_KEYS
    assert profile["platform"] == "instagram" and profile["handle"] == handle
    assert profile["profile_type"] in {"personal", "business_or_creator"}
    assert profile["recent_posts"] is None and profile["post_metrics"] is None  # only with full_refresh
    row = await pool.fetchrow("SELECT * FROM instagram_account WHERE handle = $1", handle)
    assert profile["profile_id"] == row["profile_id"] and profile["followers"] == row["followers"]
    assert profile["profile_type"] == ("business_or_creator" if row["is_business_or_creator"] else "personal")
    # On the flow's priority lane: on-demand work.
    assert [r["priority"] for r in await refreshes(pool, "refresh_profile_basic", "handle", handle)] == [10]

    # Fresh: answered from Postgres, nothing submitted; the alias answers the same.
    again = await get(stack, f"/social-profile-service/instagram/byhandle/{handle}")
    assert again == answer
    # The flags are untyped strings: empty is false, any other text (even "false") is true.
    await get(stack, f"/profiles/instagram/byhandle/{handle}", force_refresh="")
    assert len(await refreshes(pool, "refresh_profile_basic", "handle", handle)) == 1
    await get(stack, f"/profiles/instagram/byhandle/{handle}", force_refresh="false")
    assert len(await refreshes(pool, "refresh_profile_basic", "handle", handle)) == 2
    # Older than a day: refreshed.
    await age(pool, "instagram_account", "handle", handle, 1.1)
    await get(stack, f"/profiles/instagram/byhandle/{handle}")
    assert len(await refreshes(pool, "refresh_profile_basic", "handle", handle)) == 3


async def test_full_refresh_adds_recent_posts_and_post_metrics(stack, pool):
    handle = unique("pf")
    profile = (await get(stack, f"/profiles/instagram/byhandle/{handle}", full_refresh="1"))["profile"]
    assert profile.keys() == IG_KEYS
    assert await refreshes(pool, "refresh_profile_by_handle", "handle", handle)
    assert await refreshes(pool, "refresh_profile_basic", "handle", handle) == []
    assert profile["post_metrics"].keys() >= POST_METRICS_GROUPS
    stored = await pool.fetchval(
        "SELECT count(*) FROM instagram_post WHERE profile_id = $1 AND post_type <> 'story'", profile["profile_id"]
    )
    assert stored > 0 and 0 < len(profile["recent_posts"]) <= 24
    reels = [p for p in profile["recent_posts"] if p["post_type"] == "reels"]
    assert len(reels) <= 12 and len(profile["recent_posts"]) - len(reels) <= 12
    assert profile["recent_posts"][0].keys() >= {"shortcode", "post_id", "post_type", "post_url", "metrics"}


async def test_full_refresh_of_one_handle_twice_at_once_is_refused_at_once(stack, pool):
    handle = unique("pl")
    path = f"/profiles/instagram/byhandle/{handle}"
    answers = await asyncio.gather(
        get(stack, path, full_refresh="1", force_refresh="1"), get(stack, path, full_refresh="1", force_refresh="1")
    )
    refused = [a for a in answers if a["status"]["type"] == "ERROR"]
    assert len(refused) == 1, answers
    assert error(refused[0], 2) == "Concurrency Limit Exceeded"
    assert len(await refreshes(pool, "refresh_profile_by_handle", "handle", handle)) == 1
    # Without full_refresh the legacy applied no limit.
    plain = await asyncio.gather(get(stack, path, force_refresh="1"), get(stack, path, force_refresh="1"))
    assert [a["status"]["type"] for a in plain] == ["SUCCESS", "SUCCESS"]


async def test_byprofileid_is_nested_and_fresh_for_seven_days(stack, pool):
    handle = unique("pp")
    profile_id = (await get(stack, f"/profiles/instagram/byhandle/{handle}"))["profile"]["profile_id"]
    answer = await get(stack, f"/profiles/instagram/byprofileid/{profile_id}")
    assert answer.keys() == {"status", "profile"} and answer["status"]["type"] == "SUCCESS"
    nested = answer["profile"]
    assert nested.keys() == {"platform", "handle", "profile"}
    assert nested["platform"] == "instagram" and nested["handle"] == handle
    assert nested["profile"].keys() == IG_KEYS and nested["profile"]["profile_id"] == profile_id
    await age(pool, "instagram_account", "profile_id", profile_id, 3)
    await get(stack, f"/profiles/instagram/byprofileid/{profile_id}")
    assert await refreshes(pool, "refresh_profile_by_profile_id", "profile_id", profile_id) == []
    await age(pool, "instagram_account", "profile_id", profile_id, 8)
    await get(stack, f"/profiles/instagram/byprofileid/{profile_id}")
    assert len(await refreshes(pool, "refresh_profile_by_profile_id", "profile_id", profile_id)) == 1
    assert "only" not in error(await get(stack, f"/profiles/youtube/byprofileid/{profile_id}"), 400)


async def test_byid_instagram_refreshes_after_a_day(stack, pool):
    handle = unique("pi")
    profile_id = (await get(stack, f"/profiles/instagram/byhandle/{handle}"))["profile"]["profile_id"]
    answer = await get(stack, f"/profiles/instagram/byid/{profile_id}")
    assert answer["profile"].keys() == IG_KEYS and answer["profile"]["handle"] == handle
    assert await refreshes(pool, "refresh_profile_by_profile_id", "profile_id", profile_id) == []
    await age(pool, "instagram_account", "profile_id", profile_id, 1.1)
    await get(stack, f"/profiles/instagram/byid/{profile_id}", third_party_fallback="true")
    assert len(await refreshes(pool, "refresh_profile_by_profile_id", "profile_id", profile_id)) == 1


@pytest.mark.parametrize("route", ["byhandle", "byid"])
async def test_youtube_by_channel_id(stack, pool, route):
    channel_id = channel_id_for(7 if route == "byhandle" else 8)
    await pool.execute("DELETE FROM youtube_account WHERE channel_id = $1", channel_id)
    answer = await get(stack, f"/profiles/youtube/{route}/{channel_id}")
    assert answer.keys() == {"status", "profile"} and answer["status"]["type"] == "SUCCESS"
    assert answer["profile"].keys() == YT_KEYS and answer["profile"]["platform"] == "youtube"
    row = await pool.fetchrow("SELECT title, subscribers FROM youtube_account WHERE channel_id = $1", channel_id)
    assert (answer["profile"]["title"], answer["profile"]["subscribers"]) == tuple(row)
    assert len(await pool.fetch("SELECT 1 FROM scrape_request_log WHERE params->'channel_ids' ? $1", channel_id)) >= 1


async def test_every_error_code(stack):
    missing = unique("missing")
    assert error(await get(stack, f"/profiles/instagram/byhandle/{missing}"), 404) == f"Profile not found - {missing}"
    assert error(await get(stack, "/profiles/instagram/byid/0"), 404) == "Profile not found - 0"
    nope = "UC" + "x" * 22
    assert error(await get(stack, f"/profiles/youtube/byid/{nope}"), 404) == f"Profile not found - {nope}"
    error(await get(stack, "/profiles/shopify/byhandle/store"), 400)
    # The platform's values are lower case, as the legacy's StrEnum: anything else is refused in the envelope.
    assert "platform" in error(await get(stack, "/profiles/INSTAGRAM/byhandle/nasa"), 422)
    assert "handle" in error(await get(stack, f"/profiles/instagram/byhandle/{'h' * 2000}"), 422)
    assert "id" in error(await get(stack, f"/profiles/instagram/byid/{'1' * 2000}"), 422)


async def test_youtube_channel_by_handle(stack):
    channel = YouTubeWorld()._channel(7)
    assert channel.custom_url
    for asked in (channel.custom_url, channel.custom_url[1:]):  # the "@" is added when missing
        answer = await get(stack, f"/youtube/channel/byhandle/{asked}")
        assert answer == {
            "status": {"type": "SUCCESS", "message": "Channel found"},
            "response": {"handle": channel.custom_url, "channel_id": channel.channel_id},
        }
    assert "@nobody_has_this" in error(await get(stack, "/youtube/channel/byhandle/nobody_has_this"), 400)


async def test_list_scrape_data_newest_first(stack, pool):
    account = unique("acct")
    ids = []
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        for n in range(3):
            body = {"flow": "refresh_profile_basic", "params": {"handle": unique(f"ls{n}")}}
            answer = await client.post("/scrape_request_log/flow/x", json=body, headers={"x-bb-account-id": account})
            ids.append(answer.json()["scrape_id"])
    await wait_terminal(pool, ids, timeout=60)
    listing = await get(stack, f"/list_scrape_data/{account}", size="2")
    assert listing.keys() == {"account_id", "scrape_list"} and listing["account_id"] == account  # no envelope
    assert [entry["scrape_id"] for entry in listing["scrape_list"]] == ids[::-1][:2]
    entry = listing["scrape_list"][0]
    assert entry.keys() == {
        "scrape_id",
        "account_id",
        "data",
        "status",
        "params",
        "created_at",
        "flow",
        "scraped_at",
        "platform",
    }
    assert entry["platform"] == "instagram" and entry["status"] == "COMPLETE" and entry["account_id"] == account
    assert len((await get(stack, f"/list_scrape_data/{account}"))["scrape_list"]) == 3  # size defaults to 10
    assert (await get(stack, f"/list_scrape_data/{unique('nobody')}"))["scrape_list"] == []
    assert "size" in error(await get(stack, f"/list_scrape_data/{account}", size="0"), 422)


async def test_flow_update_pending_redrives_a_failed_request(stack, pool):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        body = {"flow": "refresh_profile_basic", "params": {"handle": unique("missing")}}
        scrape_id = (await client.post("/scrape_request_log/flow/x", json=body)).json()["scrape_id"]
        assert await wait_terminal(pool, [scrape_id], timeout=60) == {scrape_id: "FAILED"}
        update = {"flow": "refresh_profile_basic", "platform": "INSTAGRAM", "params": {}, "retry_count": 1}
        answer = await client.post(f"/scrape_request_log/flow/update/{scrape_id}", json={**update, "status": "PENDING"})
        assert answer.status_code == 200 and answer.json() is None
        assert await pool.fetchval("SELECT redrives FROM scrape_request_log WHERE id = $1", scrape_id) == 1
        for _ in range(240):
            row = await pool.fetchrow("SELECT status, attempt FROM scrape_request_log WHERE id = $1", scrape_id)
            if tuple(row) == ("FAILED", 2):
                break
            await asyncio.sleep(0.25)
        assert tuple(row) == ("FAILED", 2)  # the next attempt ran (and the handle is still missing)
        # A COMPLETE request can be neither re-driven nor failed.
        body = {"flow": "refresh_profile_basic", "params": {"handle": unique("done")}}
        done = (await client.post("/scrape_request_log/flow/x", json=body)).json()["scrape_id"]
        assert await wait_terminal(pool, [done], timeout=60) == {done: "COMPLETE"}
        for status in ("PENDING", "FAILED"):
            refused = await client.post(f"/scrape_request_log/flow/update/{done}", json={**update, "status": status})
            assert refused.json()["status"]["code"] == 409
        unknown = await client.post("/scrape_request_log/flow/update/nope", json={**update, "status": "FAILED"})
        assert unknown.json()["status"]["code"] == 404
        other = await client.post(f"/scrape_request_log/flow/update/{scrape_id}", json={**update, "status": "COMPLETE"})
        assert other.json()["status"]["code"] == 422
