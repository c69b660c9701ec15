"""Source fallback, the credential lifecycle and keeping secrets secret, through real processes."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import httpx

from providers.credentials import CredentialStore
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import SANDBOX_CREDENTIALS
from tests.conftest import isolated
from tests.support import migrated_database, produce_requests, unique, wait_terminal
from topics import names
from topics.models import utcnow

BASIC = "refresh_profile_basic"


async def _seeded_pool(url: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
    store = CredentialStore(pool)
    for source, secrets in SANDBOX_CREDENTIALS.items():
        await store.add(source, secrets, idempotency_key=f"{source}:test")
    return pool


async def test_fallback_through_failing_sources(broker, session_dir):
    failing = SandboxConfig(
        fail_paths={"/graphapi/": 500, "/rapidapi-arraybobo/ig/info_username/": 429}, fail_retry_after=120
    )
    with migrated_database() as url:
        pool = await _seeded_pool(url)
        try:
            async with isolated(broker, url, session_dir, failing, "fall", log_level="DEBUG") as (
                prefix, spawn, sandbox
            ):
                spawn("worker", "--flows", BASIC)
                topic = f"{prefix}{names.scrape_topic(BASIC)}"
                [ok] = await produce_requests(broker, topic, [{"params": {"handle": unique("fallback")}}])
                assert (await wait_terminal(pool, [ok], timeout=90)) == {ok: "COMPLETE"}
                row = await pool.fetchrow("SELECT source FROM scrape_request_log WHERE id = $1", ok)
                assert row["source"] == "rapidapi-jotucker"  # graphapi 500, arraybobo 429, jotucker answers

                resting = await pool.fetchrow(
                    "SELECT disabled_till FROM credential WHERE source = 'rapidapi-arraybobo'")
                rest = resting["disabled_till"] - utcnow()
                assert timedelta(seconds=100) < rest <= timedelta(seconds=120)
                graph = await pool.fetchval("SELECT disabled_till FROM credential WHERE source = 'graphapi'")
                assert graph is None  # a 500 says nothing about the credential

                # Every source down: FAILED, naming each source tried and why.
                everything = {f"/{s}/": 503 for s in ("graphapi", "rapidapi-jotucker", "lama",
                                                      "rapidapi-bestsolutions")}
                httpx.put(f"{sandbox.url}/_sandbox/config", json={"fail_paths": everything}).raise_for_status()
                [failed] = await produce_requests(broker, topic, [{"params": {"handle": unique("down")}}])
                assert (await wait_terminal(pool, [failed], timeout=90)) == {failed: "FAILED"}
                error = await pool.fetchval("SELECT error_message FROM scrape_request_log WHERE id = $1", failed)
                assert "graphapi: ProviderUnavailable" in error
                assert "rapidapi-arraybobo: no enabled credential" in error
                assert "rapidapi-jotucker: ProviderUnavailable" in error and "lama: ProviderUnavailable" in error
                assert "rapidapi-bestsolutions: ProviderUnavailable" in error

                worker_log = (session_dir / "logs" / prefix / "worker-1.log").read_bytes()
                sink_log = (session_dir / "logs" / prefix / "sink-0.log").read_bytes()
        finally:
            await pool.close()
    # DEBUG logs, with every call and every failure in them, carry no secret.
    for secrets in SANDBOX_CREDENTIALS.values():
        for value in secrets.values():
            if "sandbox" in value:
                assert value.encode() not in worker_log and value.encode() not in sink_log, value
    assert b"DEBUG" in worker_log


async def test_an_expired_token_is_taken_out_of_rotation(broker, session_dir):
    with migrated_database() as url:
        pool = await _seeded_pool(url)
        try:
            await pool.execute("UPDATE credential SET credentials = $1::jsonb WHERE source = 'graphapi'",
                               json.dumps({"token": "expired-token", "user_id": "17841400000000001"}))
            async with isolated(broker, url, session_dir, SandboxConfig(), "auth") as (prefix, spawn, _):
                spawn("worker", "--flows", BASIC)
                [ok] = await produce_requests(broker, f"{prefix}{names.scrape_topic(BASIC)}",
                                              [{"params": {"handle": unique("auth")}}])
                assert (await wait_terminal(pool, [ok], timeout=90)) == {ok: "COMPLETE"}
            graph = await pool.fetchrow("SELECT enabled, data_access_expired FROM credential WHERE source = 'graphapi'")
            assert tuple(graph) == (True, True)
            listed = await CredentialStore(pool).list("graphapi")
            assert "expired-token" not in json.dumps(listed, default=str)
            assert await CredentialStore(pool).set_enabled(str(listed[0]["id"]), True)
            assert await pool.fetchval("SELECT data_access_expired FROM credential WHERE source = 'graphapi'") is False
        finally:
            await pool.close()


async def test_least_recently_used_selection_spreads_load(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        store = CredentialStore(pool)
        source = unique("spread")
        ids = {await store.add(source, {"x-rapidapi-key": f"k{i}"}) for i in range(3)}
        picked = [(await store.pick(source)).id for _ in range(9)]
        assert {i: picked.count(i) for i in ids} == {i: 3 for i in ids}
        assert set(picked[:3]) == set(picked[3:6]) == ids  # each round uses every key once
    finally:
        await pool.close()
