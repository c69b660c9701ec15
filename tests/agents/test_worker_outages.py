"""A dependency outage pauses the worker; it never fails or dead-letters a request (issue *Outages*).

Each dependency is cut for a few seconds through a ``TcpProxy`` of the test's own while requests keep
arriving; the machine's services are never stopped.
"""

from __future__ import annotations

import asyncio
import json
import random
from urllib.parse import urlsplit

import asyncpg
import httpx

from app.embedded import free_port
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import SANDBOX_CREDENTIALS, sandbox_source_rate_limits
from providers.sandbox.youtube import channel_id_for
from tests.conftest import isolated
from tests.support import REDIS_URL, BeatProcess, TcpProxy, failures, produce_requests, wait_terminal
from topics import names

JOTUCKER_KEY = SANDBOX_CREDENTIALS["rapidapi-jotucker"]["x-rapidapi-key"]
BY_ID = "refresh_profile_by_profile_id"  # JoTucker first
BY_CHANNEL = "refresh_yt_posts_by_playlist_id"  # reads the channel's uploads playlist from Postgres
CUT_SECONDS = 6.0


def _profile_ids(count: int) -> list[str]:
    """Fresh sandbox profile ids (numeric, as Instagram's are)."""
    base = random.randrange(1_000_000_000, 60_000_000_000)
    return [str(base + n) for n in range(count)]


async def _produce_at(broker: str, topic: str, profile_ids: list[str], per_second: float) -> list[str]:
    """One request per profile id, ``per_second`` of them each second, as an upstream service sends them."""
    ids: list[str] = []
    for profile_id in profile_ids:
        ids += await produce_requests(broker, topic, [{"params": {"profile_id": profile_id}}], "profile_id")
        await asyncio.sleep(1 / per_second)
    return ids


def _outage_lines(proc: BeatProcess, dependency: str) -> tuple[int, int]:
    text = proc.log_path.read_text()
    return text.count(f"outage: {dependency} "), text.count(f"outage over: {dependency} ")


async def test_a_redis_cut_pauses_the_worker_and_no_provider_sees_more_than_its_limit(
    broker, database_url, session_dir, pool: asyncpg.Pool
):
    proxy = TcpProxy("127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])).start()
    limit = 20
    settings = {
        "redis_url": proxy.url(REDIS_URL),
        "source_rate_limits": json.dumps({**sandbox_source_rate_limits(), "rapidapi-jotucker": f"{limit}/1s"}),
        "flow_concurrency": json.dumps({BY_ID: 20}),
    }
    config = SandboxConfig(rate_limits={JOTUCKER_KEY: f"{limit}/1"})
    try:
        async with isolated(broker, database_url, session_dir, config, "redis", **settings) as (prefix, spawn, sandbox):
            worker = spawn("worker", "--flows", BY_ID)
            topic = f"{prefix}{names.scrape_topic(BY_ID)}"
            first_id, *profile_ids = _profile_ids(81)
            # Requests complete, then Redis goes away for a while with requests still arriving.
            first = await produce_requests(broker, topic, [{"params": {"profile_id": first_id}}], "profile_id")
            assert set((await wait_terminal(pool, first, timeout=90)).values()) == {"COMPLETE"}
            arriving = asyncio.ensure_future(_produce_at(broker, topic, profile_ids, 8.0))
            await asyncio.sleep(2)
            proxy.cut()
            await asyncio.sleep(CUT_SECONDS)
            proxy.restore()
            ids = first + await arriving
            statuses = await wait_terminal(pool, ids, timeout=120)
            assert set(statuses.values()) == {"COMPLETE"}, await failures(pool, ids)
            retried = await pool.fetchval(
                "SELECT count(*) FROM scrape_request_log WHERE id = ANY($1) AND (attempt > 1 OR retries_spent > 0)", ids
            )
            assert retried == 0, "an outage must cost no attempt"
            stats = httpx.get(f"{sandbox.url}/_sandbox/stats").json()["total"]
            assert stats["rate_limited"] == 0, stats
            assert _outage_lines(worker, "redis") == (1, 1), worker.log_tail()
    finally:
        proxy.stop()


async def _submit_at(api_url: str, bodies: list[dict], per_second: float) -> dict[str, list]:
    """POST each body to the facade, ``per_second`` a second; the ids it accepted and every other answer."""
    answers: dict[str, list] = {"accepted": [], "unavailable": [], "other": []}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        for body in bodies:
            response = await client.post("/requests", json=body)
            if response.status_code == 202:
                answers["accepted"].append(response.json()["id"])
            elif response.status_code == 503 and response.headers.get("retry-after"):
                answers["unavailable"].append(response.json())
            else:
                answers["other"].append((response.status_code, response.text))
            await asyncio.sleep(1 / per_second)
    return answers


async def test_a_postgres_cut_for_worker_sink_and_facade_loses_nothing(
    broker, database_url, session_dir, pool: asyncpg.Pool
):
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    api_port = free_port()
    try:
        async with isolated(
            broker, proxy.url(database_url), session_dir, SandboxConfig(), "pgcut", api_port=str(api_port)
        ) as (_prefix, spawn, _sandbox):
            worker = spawn("worker", "--flows", BY_ID, BY_CHANNEL)
            spawn("api")
            api_url = f"http://127.0.0.1:{api_port}"
            await _wait_healthy(api_url)
            # One flow that never reads Postgres, one that reads it for every request (the channel's uploads
            # playlist, stored by the request before it).
            channels = [channel_id_for(random.randrange(10**6, 10**9)) for _ in range(60)]
            bodies = [
                body
                for profile_id, channel in zip(_profile_ids(60), channels, strict=True)
                for body in (
                    {"flow": BY_ID, "params": {"profile_id": profile_id}},
                    {"flow": BY_CHANNEL, "params": {"channel_id": channel, "max_posts": 2}},
                )
            ]
            # The worker has joined its group and reads Postgres for a channel before anything is cut.
            warm = await _submit_at(api_url, [{"flow": BY_CHANNEL, "params": {"channel_id": channel_id_for(7)}}], 50)
            assert set((await wait_terminal(pool, warm["accepted"], timeout=90)).values()) == {"COMPLETE"}
            submitting = asyncio.ensure_future(_submit_at(api_url, bodies, 8.0))
            await asyncio.sleep(3)
            proxy.cut()
            await asyncio.sleep(CUT_SECONDS)
            proxy.restore()
            answers = await submitting
            assert answers["other"] == [], answers["other"][:3]
            ids = answers["accepted"]
            assert len(ids) >= len(bodies) // 2
            statuses = await wait_terminal(pool, ids, timeout=150)
            assert len(statuses) == len(ids) and set(statuses.values()) == {"COMPLETE"}, await failures(pool, ids)
            assert await pool.fetchval("SELECT count(*) FROM dead_letter WHERE request_id = ANY($1)", ids) == 0
            assert (
                await pool.fetchval(
                    "SELECT count(*) FROM scrape_request_log WHERE id = ANY($1) AND (attempt > 1 OR retries_spent > 0)",
                    ids,
                )
                == 0
            ), "an outage costs no attempt"
            assert _outage_lines(worker, "postgres") == (1, 1), worker.log_tail()
    finally:
        proxy.stop()


async def _wait_healthy(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        for _ in range(300):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the facade at {api_url} never answered")
