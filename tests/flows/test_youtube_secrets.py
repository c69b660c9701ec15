"""YouTube's API key travels in the query string: it must never reach a log, trace_log, error, dead letter or
OpenTelemetry span.

The same run proves the fallback on a quota answer: the Data API key answering 403 quotaExceeded is rested
and the channel listing moves on to youtube-v31.
"""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg

from providers.credentials import CredentialStore
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import SANDBOX_CREDENTIALS
from providers.sandbox.youtube import DEMO_CHANNEL_ID
from tests.conftest import isolated
from tests.support import EventCollector, migrated_database, produce_requests, wait_terminal
from tests.tracing_support import SpanCollector
from topics import names

QUOTA_KEY = "quota-secret-yt-key-1"  # the sandbox answers 403 quotaExceeded to keys starting with "quota-"
GOOD_KEY = "secret-yt-key-2"
RAPID_SOURCES = ("yt-v31", "rapidapi-yt", "rapidapi-yt-search")


async def test_quota_falls_back_and_the_key_never_leaks(broker, session_dir):
    failing = SandboxConfig(fail_paths={"/ytapitoken/youtube/v3/videos": 500})
    exported = SpanCollector()
    with migrated_database() as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
        store = CredentialStore(pool)
        await store.add("ytapitoken", {"key": QUOTA_KEY}, idempotency_key="yt:quota")
        for source in RAPID_SOURCES:
            await store.add(source, SANDBOX_CREDENTIALS[source], idempotency_key=f"{source}:test")
        try:
            # One attempt: this is about keys and secrets, and a transient failure would otherwise be retried.
            async with isolated(
                broker,
                url,
                session_dir,
                failing,
                "ytkey",
                log_level="DEBUG",
                retry_max_attempts="1",
                otel_endpoint=exported.url,
            ) as (prefix, spawn, _):
                collector = EventCollector(broker, [f"{prefix}{names.TRACE_LOG}", f"{prefix}{names.DEAD_LETTER}"])
                await collector.start()
                try:
                    spawn("worker", "--flows", "refresh_yt_*")

                    def topic(flow: str) -> str:
                        return f"{prefix}{names.scrape_topic(flow)}"

                    [listing] = await produce_requests(
                        broker,
                        topic("refresh_yt_posts_by_channel_id"),
                        [{"params": {"channel_id": DEMO_CHANNEL_ID, "max_posts": 3}}],
                    )
                    assert (await wait_terminal(pool, [listing], timeout=90)) == {listing: "FAILED"}
                    error = await pool.fetchval("SELECT error_message FROM scrape_request_log WHERE id = $1", listing)
                    # The listing fell through to youtube-v31; the videos call has only the Data API, whose
                    # one key is resting after its quota answer.
                    assert "ytapitoken: no enabled credential" in error, error
                    rested = await pool.fetchval("SELECT disabled_till FROM credential WHERE source = 'ytapitoken'")
                    assert rested is not None
                    traces = await collector.events(listing, f"{prefix}{names.TRACE_LOG}", at_least=2)
                    assert {(t["source"], t["status"]) for t in traces} >= {("ytapitoken", 403), ("yt-v31", 200)}

                    await store.add("ytapitoken", {"key": GOOD_KEY}, idempotency_key="yt:good")
                    [broken] = await produce_requests(
                        broker, topic("refresh_yt_posts"), [{"params": {"post_ids": ["abcdefghijk"]}}]
                    )
                    assert (await wait_terminal(pool, [broken], timeout=90)) == {broken: "FAILED"}
                    [invalid] = await produce_requests(
                        broker, topic("refresh_yt_posts"), [{"params": {"post_ids": []}}]
                    )
                    assert (await wait_terminal(pool, [invalid], timeout=90)) == {invalid: "DEAD_LETTERED"}
                    await collector.events(invalid, f"{prefix}{names.DEAD_LETTER}")
                    records = [json.dumps(value) for values in collector.by_request.values() for _, value in values]
                    # The worker exports its spans in batches (every 5 s), while it runs: the request's span and its
                    # provider calls reach the collector.
                    deadline = time.monotonic() + 30
                    wanted = {"flow refresh_yt_posts_by_channel_id", "ytapitoken GET"}
                    while not wanted <= {span["name"] for span in exported.spans()}:
                        assert time.monotonic() < deadline, sorted({span["name"] for span in exported.spans()})
                        await asyncio.sleep(0.5)
                finally:
                    await collector.stop()
                errors = [
                    row["error_message"] or ""
                    for row in await pool.fetch("SELECT error_message FROM scrape_request_log")
                ]
                logs = b"".join(path.read_bytes() for path in (session_dir / "logs" / prefix).glob("*.log"))
        finally:
            await pool.close()
    spans = b"".join(exported.bodies)
    exported.close()
    assert len(records) >= 4 and b"DEBUG" in logs
    for key in (QUOTA_KEY, GOOD_KEY):
        assert key.encode() not in logs, key
        assert key.encode() not in spans, key
        assert not [r for r in records if key in r], key
        assert not [e for e in errors if key in e], key
