"""Circuit breakers on the real Redis and in process: open after N failures, one probe after the cool-down,
every Breaker on one store agreeing, each change recorded in Postgres and shown by ``beat sources``."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest
import pytest_asyncio

from providers.breaker import (
    KEY_PREFIX,
    Breaker,
    BreakerStore,
    MemoryBreakerStore,
    RedisBreakerStore,
    credential_scope,
    source_scope,
)
from tests.support import REDIS_URL, ROOT, beat_env, redis_test_prefix

COOLDOWN = 0.4


@pytest.fixture
def key_prefix() -> Iterator[str]:
    yield from redis_test_prefix(KEY_PREFIX)


@pytest_asyncio.fixture
async def breaker_pool(database_url) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(params=["memory", "redis"])
async def two_breakers(request, key_prefix, breaker_pool) -> AsyncIterator[tuple[Breaker, Breaker]]:
    """Two Breakers as two processes see them: on one Redis, or (in process) on one store."""
    stores: list[BreakerStore]
    if request.param == "redis":
        stores = [RedisBreakerStore(REDIS_URL, key_prefix), RedisBreakerStore(REDIS_URL, key_prefix)]
    else:
        shared = MemoryBreakerStore()
        stores = [shared, shared]
    breakers = tuple(Breaker(store, failures=3, cooldown=COOLDOWN, pool=breaker_pool) for store in stores)
    yield breakers  # type: ignore[misc]
    for store in {id(s): s for s in stores}.values():
        await store.aclose()


def scope_of(kind: Callable[..., str]) -> str:
    return kind(f"src-{uuid.uuid4().hex[:8]}") if kind is source_scope else kind("src", uuid.uuid4().hex[:8])


async def test_a_circuit_opens_after_consecutive_failures_and_is_shared(two_breakers, breaker_pool):
    one, other = two_breakers
    scope = scope_of(source_scope)
    await one.failed(scope, "ProviderTimeout: GET /x timed out", probe=False)
    await other.failed(scope, "ProviderTimeout: GET /x timed out", probe=False)
    await one.succeeded(scope, probe=False)  # a success in between: the failures are no longer consecutive
    for _ in range(2):
        await other.failed(scope, "ProviderUnavailable: GET /x answered 503", probe=False)
    assert (await one.admit(scope)).allowed
    await one.failed(scope, "ProviderUnavailable: GET /x answered 503", probe=False)

    refused = await other.admit(scope)
    assert not refused.allowed and 0 < refused.wait <= COOLDOWN
    row = await breaker_pool.fetchrow("SELECT * FROM source_breaker WHERE scope = $1", scope)
    assert (row["state"], row["failures"], row["credential_id"]) == ("open", 3, None)
    assert row["last_error"] == "ProviderUnavailable: GET /x answered 503"
    assert row["next_probe_at"] > row["opened_at"]


async def test_one_probe_after_the_cooldown_then_closed_or_reopened(two_breakers, breaker_pool):
    one, other = two_breakers
    scope = scope_of(credential_scope)
    for _ in range(3):
        await one.failed(scope, "QuotaExceeded: 429", probe=False)
    await asyncio.sleep(COOLDOWN + 0.05)

    admissions = await asyncio.gather(*(b.admit(scope) for b in (one, other, one, other, one, other)))
    assert [a.probe for a in admissions].count(True) == 1
    assert all(a.allowed == a.probe for a in admissions)  # every other caller keeps skipping
    assert await breaker_pool.fetchval("SELECT state FROM source_breaker WHERE scope = $1", scope) == "half_open"

    # The probe fails: open again, for another whole cool-down.
    await other.failed(scope, "QuotaExceeded: 429", probe=True)
    again = await one.admit(scope)
    assert not again.allowed and again.wait > COOLDOWN / 2
    row = await breaker_pool.fetchrow("SELECT state, source, credential_id FROM source_breaker WHERE scope = $1", scope)
    assert row["state"] == "open" and row["source"] == "src" and scope.endswith(row["credential_id"])

    await asyncio.sleep(COOLDOWN + 0.05)
    probe = await other.admit(scope)
    assert probe.probe
    # A call let through before the circuit opened says nothing about now; only the probe closes it.
    await one.succeeded(scope, probe=False)
    assert not (await one.admit(scope)).allowed
    await other.succeeded(scope, probe=True)
    assert all([(await one.admit(scope)).allowed, (await other.admit(scope)).allowed])
    assert await breaker_pool.fetchval("SELECT state FROM source_breaker WHERE scope = $1", scope) == "closed"


async def test_a_probe_never_made_is_handed_back(two_breakers):
    one, other = two_breakers
    scope = scope_of(source_scope)
    for _ in range(3):
        await one.failed(scope, "ProviderTimeout", probe=False)
    await asyncio.sleep(COOLDOWN + 0.05)
    assert (await one.admit(scope)).probe
    assert not (await other.admit(scope)).allowed
    await one.abandon(scope)
    assert (await other.admit(scope)).probe


async def test_an_unreachable_redis_lets_calls_through():
    breaker = Breaker(RedisBreakerStore("redis://127.0.0.1:1/0"), failures=1, cooldown=COOLDOWN)
    scope = scope_of(source_scope)
    await breaker.failed(scope, "ProviderTimeout", probe=False)
    assert (await breaker.admit(scope)).allowed
    await breaker.aclose()


async def test_beat_sources_shows_each_circuit(database_url, breaker_pool):
    slow = Breaker(MemoryBreakerStore(), failures=2, cooldown=600, pool=breaker_pool)
    quick = Breaker(MemoryBreakerStore(), failures=2, cooldown=0.1, pool=breaker_pool)
    opened, closed = scope_of(source_scope), scope_of(source_scope)
    for breaker, scope in ((slow, opened), (quick, closed)):
        for _ in range(2):
            await breaker.failed(scope, "ProviderTimeout: GET /x timed out", probe=False)
    await asyncio.sleep(0.15)
    assert (await quick.admit(closed)).probe
    await quick.succeeded(closed, probe=True)

    shown = subprocess.run(
        [sys.executable, "-m", "app.cli", "sources"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=beat_env(database_url=database_url, kafka_url="127.0.0.1:9"),
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    circuits, drift = shown.stdout.split("\n\n")
    lines = {line.split()[0]: line for line in circuits.splitlines()[1:]}
    assert drift.startswith("drift: the workers serve their metrics on free ports")
    assert lines[opened].split()[1:3] == ["open", "2"]
    # The probe is due 600 s after the circuit opened; the command itself may take seconds to start on a busy machine.
    due = re.search(r"\(in (\d+)s\)", lines[opened])
    assert due and 540 <= int(due[1]) <= 600, lines[opened]
    assert lines[opened].endswith("ProviderTimeout: GET /x timed out")
    assert lines[closed].split()[1:4] == ["closed", "0", "-"]
