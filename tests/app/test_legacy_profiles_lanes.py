"""Facades of their own: a handle resolved from its channel page when the Data API fails, the bound on waiting for
a refresh, a caller's FAILED, limits shared through Redis, and a refresh answered within its bound behind a
saturated bulk backlog (priority lanes)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import redis.asyncio as aioredis

from app.embedded import free_port
from providers.sandbox import SandboxConfig
from providers.sandbox.youtube import YouTubeWorld
from tests.conftest import isolated
from tests.support import REDIS_URL, SandboxKnobs, unique, wait_terminal
from tests.support import produce_requests as produce_raw
from topics import names

FLOW = "refresh_profile_basic"


@asynccontextmanager
async def started(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the facade at ``api_url``, once it answers."""
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        for _ in range(300):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the facade did not start")
        yield client


async def test_a_facade_without_a_worker(broker, database_url, session_dir, pool):
    port = free_port()
    async with isolated(
        broker,
        database_url,
        session_dir,
        # The Data API's channels answer 500 here: a handle is resolved from its channel page.
        SandboxConfig(fail_paths={"/ytapitoken/youtube/v3/channels": 500}),
        "pnowk",
        api_port=str(port),
        api_refresh_timeout="1.5",
        redis_url=REDIS_URL,
        api_refresh_each_limit="1/30s",
    ) as (_, spawn, sandbox):
        spawn("api")
        async with started(f"http://127.0.0.1:{port}") as client:
            channel = YouTubeWorld()._channel(9)
            assert channel.custom_url
            found = (await client.get(f"/youtube/channel/byhandle/{channel.custom_url}")).json()
            assert found["response"] == {"handle": channel.custom_url, "channel_id": channel.channel_id}, found
            asked = " ".join(SandboxKnobs(sandbox.url).stats()["paths"])
            assert "/youtube/v3/channels" in asked and f"/youtube-web/{channel.custom_url}" in asked, asked

            handle = unique("pt")
            began = time.monotonic()
            answer = (await client.get(f"/profiles/instagram/byhandle/{handle}", params={"full_refresh": "y"})).json()
            assert time.monotonic() - began < 15
            assert answer.keys() == {"status", "scrape_id"} and answer["status"]["code"] == 504, answer
            scrape_id = answer["scrape_id"]
            assert answer["status"]["type"] == "ERROR" and scrape_id in answer["status"]["message"]

            # The per-handle limit is in Redis: 1 in 30 s, so the next full refresh is refused at once.
            began = time.monotonic()
            again = (await client.get(f"/profiles/instagram/byhandle/{handle}", params={"full_refresh": "y"})).json()
            assert again == {"status": {"type": "ERROR", "message": "Concurrency Limit Exceeded", "code": 2}}
            assert time.monotonic() - began < 1.0
            assert await _redis_has(f"beat_server_refresh_profile_insta_per_handle_{handle}")

            # Nobody works it: the caller ends it FAILED, as the legacy's callers did.
            body = {"flow": FLOW, "platform": "INSTAGRAM", "params": {"handle": handle}, "status": "FAILED"}
            failed = await client.post(f"/scrape_request_log/flow/update/{scrape_id}", json=body)
            assert failed.status_code == 200 and failed.json() is None
            assert await wait_terminal(pool, [scrape_id], timeout=30) == {scrape_id: "FAILED"}
            error_type = await pool.fetchval("SELECT error_type FROM scrape_request_log WHERE id = $1", scrape_id)
            assert error_type == "FailedByCaller"


async def _redis_has(key: str) -> bool:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return bool(await client.exists(key))
    finally:
        await client.aclose()


async def test_a_refresh_answers_within_its_bound_behind_a_bulk_backlog(broker, database_url, session_dir, pool):
    concurrency, latency, bound = 2, 0.3, 20.0
    port = free_port()
    async with isolated(
        broker,
        database_url,
        session_dir,
        SandboxConfig(latency=latency),
        "plane",
        api_port=str(port),
        api_refresh_timeout=str(bound),
        flow_concurrency=json.dumps({FLOW: concurrency}),
    ) as (prefix, spawn, _):
        spawn("worker", "--flows", FLOW, "--processes", "1")
        spawn("api")
        async with started(f"http://127.0.0.1:{port}") as client:
            warm = await client.get(f"/profiles/instagram/byhandle/{unique('warm')}")
            assert warm.json()["status"]["type"] == "SUCCESS", warm.text

            backlog = [{"params": {"handle": unique("bulk")}} for _ in range(40)]
            bulk_ids = await produce_raw(broker, f"{prefix}{names.scrape_topic(FLOW)}", backlog)
            await asyncio.sleep(4 * latency)  # the backlog is under way
            began = time.monotonic()
            answer = (await client.get(f"/profiles/instagram/byhandle/{unique('urgent')}")).json()
            took = time.monotonic() - began
        assert answer["status"]["type"] == "SUCCESS", answer
        assert took < bound
        # Answered ahead of the backlog, not after it: most of it was still waiting.
        done = await pool.fetchval(
            "SELECT count(*) FROM scrape_request_log WHERE id = ANY($1) AND status = 'COMPLETE'", bulk_ids
        )
        assert done <= len(bulk_ids) // 2, (done, took)
