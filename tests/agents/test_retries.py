"""Retries (issue #11): the backoff decision, the retry consumer's delay tiers, and a worker retrying real
sandbox failures end to end (RETRYING on the timeline, attempts spent, known waits, expiry)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from datetime import timedelta

import httpx
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.retry import RetryConsumer, due_header
from core.backoff import Ended, Retry, after_transient, tier_for
from core.settings import load_settings
from core.topic_admin import all_topics, ensure_topics, request_partitions
from providers.credentials import CredentialStore
from providers.sandbox.config import SandboxConfig
from tests.conftest import isolated
from tests.support import produce_requests, wait_terminal
from topics import names
from topics.models import ErrorInfo, ScrapeRequest, Status, utcnow

TIERS = {"1s": 1.0, "3s": 3.0, "60s": 60.0}
UNAVAILABLE = ErrorInfo(type="ProviderUnavailable", message="shopify: 500")


# The decision, on its own


def _settings(**values):
    return load_settings(
        **{
            "retry_schedule": [2.0, 4.0],
            "retry_jitter": 0.0,
            "retry_max_attempts": 3,
            "retry_max_wait": 10.0,
            "retry_tiers": TIERS,
            **values,
        }
    )


def _request(**fields) -> ScrapeRequest:
    return ScrapeRequest(id=str(uuid.uuid4()), flow="refresh_orders_by_store", params={"store": "s"}, **fields)


def test_the_longest_tier_not_exceeding_the_wait_or_the_shortest():
    assert [tier_for(wait, TIERS) for wait in (0.2, 1.0, 2.9, 3.0, 59, 600)] == ["1s", "1s", "1s", "3s", "3s", "60s"]


def test_a_failure_without_a_known_ready_time_spends_attempts_on_the_schedule_until_they_are_spent():
    settings, now, rng = _settings(), utcnow(), random.Random(1)
    request, waits = _request(), []
    for _ in range(2):
        outcome = after_transient(request, UNAVAILABLE, None, settings, now, rng)
        assert isinstance(outcome, Retry)
        waits.append((outcome.due_at - now).total_seconds())
        request = outcome.request
    assert waits == [2.0, 4.0]
    assert (request.attempt, request.retries_spent, request.first_failed_at) == (3, 2, now)
    ended = after_transient(request, UNAVAILABLE, None, settings, now, rng)
    assert isinstance(ended, Ended) and ended.status is Status.FAILED and ended.retries_spent == 3
    assert ended.error.type == "ProviderUnavailable"
    assert ended.error.message.startswith("gave up after 3 attempts; the last failed with ProviderUnavailable")


def test_jitter_spreads_the_schedule():
    settings, now, rng = _settings(retry_jitter=0.5), utcnow(), random.Random(7)
    waits = {
        (after_transient(_request(), UNAVAILABLE, None, settings, now, rng).due_at - now).total_seconds()
        for _ in range(20)
    }
    assert len(waits) == 20 and all(1.0 <= wait <= 3.0 for wait in waits)


def test_a_known_ready_time_spends_no_attempt_and_is_capped_by_the_max_wait():
    settings, now, rng = _settings(), utcnow(), random.Random(1)
    first = now - timedelta(seconds=4)
    outcome = after_transient(
        _request(first_failed_at=first, retries_spent=1), UNAVAILABLE, 30.0, _settings(retry_max_wait=60.0), now, rng
    )
    assert isinstance(outcome, Retry)
    assert (outcome.due_at, outcome.tier, outcome.request.retries_spent) == (now + timedelta(seconds=30), "3s", 1)
    assert outcome.request.first_failed_at == first
    ended = after_transient(_request(first_failed_at=first), UNAVAILABLE, 7.0, settings, now, rng)
    assert isinstance(ended, Ended) and ended.status is Status.FAILED
    assert "gave up waiting" in ended.error.message and "BEAT_RETRY_MAX_WAIT" in ended.error.message


def test_a_request_that_expires_before_its_retry_is_due_ends_expired():
    settings, now, rng = _settings(), utcnow(), random.Random(1)
    expiring = _request(expires_at=now + timedelta(seconds=1))
    ended = after_transient(expiring, UNAVAILABLE, None, settings, now, rng)
    assert isinstance(ended, Ended) and (ended.status, ended.error.type) == (Status.EXPIRED, "Expired")
    later = _request(expires_at=now + timedelta(seconds=3))
    assert isinstance(after_transient(later, UNAVAILABLE, None, settings, now, rng), Retry)


# The retry consumer, in process, on the real broker


async def _read_until(consumer: AIOKafkaConsumer, wanted: str, timeout: float) -> tuple[float, dict] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                body = json.loads(record.value)
                if body["id"] == wanted:
                    return record.timestamp / 1000, body
    return None


async def test_a_long_wait_at_the_head_of_a_partition_does_not_delay_a_short_one_behind_it(broker):
    prefix = f"tiers{uuid.uuid4().hex[:6]}."
    settings = load_settings(kafka_url=broker, topic_prefix=prefix, retry_tiers=TIERS, broker_session_timeout=6)
    await ensure_topics(broker, all_topics(settings, ["refresh_profile_basic"]))
    request_topic = settings.topic(names.scrape_topic("refresh_profile_basic"))
    broken: list[Exception] = []

    async def on_broken(exc: Exception) -> None:
        broken.append(exc)

    retries = RetryConsumer(settings, on_broken)
    await retries.start()
    reader = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, auto_offset_reset="earliest")
    await reader.start()
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    try:
        partitions = [
            TopicPartition(request_topic, p) for p in range(request_partitions(settings, "refresh_profile_basic"))
        ]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        long_id, short_id = str(uuid.uuid4()), str(uuid.uuid4())
        start = time.time()
        placed = []
        for request_id, wait in ((long_id, 600.0), (short_id, 5.0)):
            value = json.dumps({"id": request_id, "flow": "refresh_profile_basic", "params": {"handle": "h"}})
            placed.append(
                await producer.send_and_wait(
                    settings.topic(names.retry_topic("1s")),
                    value.encode(),
                    key=b"same-entity",
                    headers=[due_header(start + wait)],
                )
            )
        assert placed[0].partition == placed[1].partition and placed[0].offset < placed[1].offset

        arrived = await _read_until(reader, short_id, timeout=20)
        assert arrived is not None, "the 5 s retry never reached its flow's topic"
        at, body = arrived
        assert 4.9 <= at - start <= 8.0, f"handed on {at - start:.1f}s after it was produced"
        assert body["params"] == {"handle": "h"}
        assert await _read_until(reader, long_id, timeout=1) is None
        # The long wait went on to the tier that fits it, with its due time.
        tier = settings.topic(names.retry_topic("60s"))
        reader.assign([TopicPartition(tier, p) for p in range(settings.request_partitions)])
        await reader.seek_to_beginning()
        parked = await _read_until(reader, long_id, timeout=5)
        assert parked is not None and broken == []
    finally:
        await producer.stop()
        await reader.stop()
        await retries.stop()


# A worker retrying the sandbox's failures

STACK = {
    "retry_schedule": "[2, 2]",
    "retry_jitter": "0",
    "retry_max_attempts": "3",
    "retry_max_wait": "5",
    "retry_tiers": json.dumps(TIERS),
    "breaker_failures": "1000",
}


@pytest_asyncio.fixture(scope="module")
async def retrying(broker, database_url, session_dir, pool):
    async with isolated(broker, database_url, session_dir, SandboxConfig(), "retry", **STACK) as (
        prefix,
        spawn,
        sandbox,
    ):
        worker = spawn("worker", "--flows", "refresh_orders_by_store")
        # Ready once it has completed a request, so the tests' timings start with a worker at work.
        probe = await _submit(broker, prefix, await _store(pool))
        assert await wait_terminal(pool, [probe], timeout=90) == {probe: "COMPLETE"}, worker.log_tail()
        yield prefix, sandbox, worker


async def _configure(sandbox, **knobs) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        (await client.put("/_sandbox/config", json=knobs)).raise_for_status()


async def _store(pool) -> str:
    store = f"orders-3-{uuid.uuid4().hex[:8]}.myshopify.com"
    await CredentialStore(pool).add(
        "shopify",
        {"X-Shopify-Access-Token": f"shpat_{uuid.uuid4().hex}"},
        handle=store,
        idempotency_key=f"shopify:{store}:retries",
    )
    return store


async def _submit(broker, prefix, store: str, **fields) -> str:
    [rid] = await produce_requests(
        broker,
        f"{prefix}{names.scrape_topic('refresh_orders_by_store')}",
        [{"params": {"store": store}, **fields}],
        key_field="store",
    )
    return rid


async def _wait_status(pool, rid: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while await pool.fetchval("SELECT status FROM scrape_request_log WHERE id = $1", rid) != status:
        assert time.monotonic() < deadline, f"{rid} never {status}"
        await asyncio.sleep(0.05)


async def _timeline(pool, rid: str) -> list[tuple]:
    return [
        tuple(r)
        for r in await pool.fetch(
            "SELECT attempt, status, at, error FROM scrape_request_event WHERE request_id = $1 "
            "ORDER BY attempt, at, id",
            rid,
        )
    ]


async def test_a_one_source_flow_whose_only_call_fails_once_completes_on_retry(retrying, broker, pool):
    prefix, sandbox, worker = retrying
    store = await _store(pool)
    await _configure(sandbox, fail_paths={f"/shopify/{store}": 500})
    rid = await _submit(broker, prefix, store)
    await _wait_status(pool, rid, "RETRYING")
    await _configure(sandbox)
    assert await wait_terminal(pool, [rid], timeout=60) == {rid: "COMPLETE"}, worker.log_tail()
    row = await pool.fetchrow("SELECT attempt, retries_spent, due_at FROM scrape_request_log WHERE id = $1", rid)
    assert (row["attempt"], row["retries_spent"], row["due_at"]) == (2, 1, None)
    timeline = await _timeline(pool, rid)
    assert [(attempt, status) for attempt, status, _, _ in timeline] == [
        (1, "PROCESSING"),
        (1, "RETRYING"),
        (2, "PROCESSING"),
        (2, "COMPLETE"),
    ]
    retrying_at, error = timeline[1][2], json.loads(timeline[1][3])
    assert "500" in error["message"] and error["type"]
    assert (timeline[2][2] - retrying_at).total_seconds() >= 1.9, "the retry came before the schedule's 2 s"


async def test_attempts_spent_end_failed_naming_them_with_every_attempt_s_error(retrying, broker, pool):
    prefix, sandbox, worker = retrying
    store = await _store(pool)
    await _configure(sandbox, fail_paths={f"/shopify/{store}": 503})
    rid = await _submit(broker, prefix, store)
    try:
        assert await wait_terminal(pool, [rid], timeout=60) == {rid: "FAILED"}, worker.log_tail()
    finally:
        await _configure(sandbox)
    row = await pool.fetchrow("SELECT attempt, retries_spent, error_message FROM scrape_request_log WHERE id = $1", rid)
    assert (row["attempt"], row["retries_spent"]) == (3, 3)
    assert row["error_message"].startswith("gave up after 3 attempts"), row["error_message"]
    timeline = await _timeline(pool, rid)
    assert [(attempt, status) for attempt, status, _, _ in timeline] == [
        (1, "PROCESSING"),
        (1, "RETRYING"),
        (2, "PROCESSING"),
        (2, "RETRYING"),
        (3, "PROCESSING"),
        (3, "FAILED"),
    ]
    assert all("503" in json.loads(error)["message"] for _, status, _, error in timeline if status != "PROCESSING")


async def test_a_retry_after_longer_than_the_schedule_uses_no_attempt(retrying, broker, pool):
    prefix, sandbox, worker = retrying
    store = await _store(pool)
    await _configure(sandbox, fail_paths={f"/shopify/{store}": 429}, fail_retry_after=4)
    rid = await _submit(broker, prefix, store)
    await _wait_status(pool, rid, "RETRYING")
    await _configure(sandbox)
    assert await wait_terminal(pool, [rid], timeout=60) == {rid: "COMPLETE"}, worker.log_tail()
    row = await pool.fetchrow("SELECT attempt, retries_spent FROM scrape_request_log WHERE id = $1", rid)
    assert (row["attempt"], row["retries_spent"]) == (2, 0)
    timeline = await _timeline(pool, rid)
    assert [(attempt, status) for attempt, status, _, _ in timeline] == [
        (1, "PROCESSING"),
        (1, "RETRYING"),
        (2, "PROCESSING"),
        (2, "COMPLETE"),
    ]
    waited = (timeline[2][2] - timeline[1][2]).total_seconds()
    assert waited >= 3.5, f"the retry came {waited:.1f}s after the 429, before its Retry-After of 4 s"


async def test_a_request_whose_expiry_passes_while_it_waits_ends_expired(retrying, broker, pool):
    prefix, sandbox, worker = retrying
    expires_at = (utcnow() + timedelta(seconds=3)).isoformat()
    store = await _store(pool)
    await _configure(sandbox, fail_paths={f"/shopify/{store}": 429}, fail_retry_after=1)
    rid = await _submit(broker, prefix, store, expires_at=expires_at)
    try:
        assert await wait_terminal(pool, [rid], timeout=60) == {rid: "EXPIRED"}, worker.log_tail()
    finally:
        await _configure(sandbox)
    timeline = await _timeline(pool, rid)
    assert (1, "RETRYING") in [(attempt, status) for attempt, status, _, _ in timeline]
    assert timeline[-1][1] == "EXPIRED"


async def test_known_waits_past_the_max_wait_end_failed_naming_the_wait(retrying, broker, pool):
    prefix, sandbox, worker = retrying
    store = await _store(pool)
    await _configure(sandbox, fail_paths={f"/shopify/{store}": 429}, fail_retry_after=1)
    rid = await _submit(broker, prefix, store)
    try:
        assert await wait_terminal(pool, [rid], timeout=60) == {rid: "FAILED"}, worker.log_tail()
    finally:
        await _configure(sandbox)
    row = await pool.fetchrow("SELECT attempt, retries_spent, error_message FROM scrape_request_log WHERE id = $1", rid)
    assert row["retries_spent"] == 0 and row["attempt"] >= 3, tuple(row)
    assert "gave up waiting" in row["error_message"] and "BEAT_RETRY_MAX_WAIT" in row["error_message"]
