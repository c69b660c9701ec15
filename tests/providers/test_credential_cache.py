"""The worker's credentials in memory (issue 12, item 2): picks like the old SQL without a round trip,
changes made in Postgres heard within a second, writes behind the requests through a Postgres cut, and a
running worker switching keys within a second of an UPDATE."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from core.outage import POSTGRES, DependencyDown
from providers.credential_cache import RECHECK_EVERY, CredentialCache
from providers.credentials import CredentialPolicy
from providers.http import Credential
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import SANDBOX_CREDENTIALS
from tests.conftest import isolated
from tests.support import EventCollector, TcpProxy, migrated_database, unique
from topics import names

T = TypeVar("T")
LIKES_FLOW = "fetch_post_likes"


async def insert(
    pool: asyncpg.Pool,
    source: str,
    *,
    handle: str | None = None,
    enabled: bool = True,
    expired: bool = False,
    rest: float | None = None,
    used_ago: float | None = None,
    secrets: dict | None = None,
) -> str:
    """A credential row as any process or operator would write it; ``rest`` and ``used_ago`` in seconds."""
    credential_id = await pool.fetchval(
        """
        INSERT INTO credential (idempotency_key, source, credentials, handle, enabled, data_access_expired,
                                disabled_till, last_used_at)
        VALUES ($1, $2, $3::jsonb, $4, $5, $6, now() + make_interval(secs => $7), now() - make_interval(secs => $8))
        RETURNING id
        """,
        unique("key"),
        source,
        json.dumps(secrets or {"x-rapidapi-key": unique("k")}),
        handle,
        enabled,
        expired,
        rest,
        used_ago,
    )
    return str(credential_id)


@asynccontextmanager
async def cache_on(url: str, *, max_age: float = 300.0) -> AsyncIterator[tuple[CredentialCache, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
    cache = await CredentialCache.open(pool, url, refresh_interval=30.0, max_age=max_age)
    try:
        yield cache, pool
    finally:
        await cache.aclose()
        await pool.close()


async def within(seconds: float, read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> float:
    """Poll until ``done(await read())``; return the seconds it took, failing past ``seconds``."""
    started = time.monotonic()
    while not done(value := await read()):
        assert time.monotonic() - started < seconds, f"still {value!r} after {seconds}s"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def ids(credentials: list[Credential | None]) -> list[str | None]:
    return [None if c is None else c.id for c in credentials]


async def test_picks_and_availability_answer_like_the_sql(database_url, pool):
    source = unique("lru")
    # Inserted in id order: never used, used an hour ago, used two hours ago, and four that may not serve.
    fresh = await insert(pool, source)
    hour = await insert(pool, source, used_ago=3600)
    two_hours = await insert(pool, source, used_ago=7200)
    await insert(pool, source, enabled=False)
    await insert(pool, source, expired=True)
    resting = await insert(pool, source, rest=60)
    owned = await insert(pool, source, handle="acct", used_ago=60)
    async with cache_on(database_url) as (cache, _):
        # Never used first, then the oldest; each pick moves its key to the back.
        picked = ids([await cache.pick(source) for _ in range(6)])
        assert picked == [fresh, two_hours, hour, owned, fresh, two_hours]
        assert ids([await cache.pick(source, exclude=[hour])]) == [owned]
        assert ids([await cache.pick(source, handle="acct") for _ in range(2)]) == [owned, owned]
        assert await cache.pick(source, handle="acct", exclude=[owned]) is None
        assert await cache.pick(source, handle="nobody") is None
        assert await cache.pick(unique("nothing")) is None

        everything = await cache.availability(source)
        assert everything.usable == 5 and 58 < everything.rest_in <= 60  # enabled, live token; one resting
        assert (await cache.availability(source, "acct")).usable == 1
        assert (await cache.availability(source, "acct")).rest_in is None
        assert (await cache.availability(unique("nothing"))).usable == 0

        secrets = (await cache.pick(source, exclude=[fresh, hour, two_hours])).secrets
        assert secrets == json.loads(
            await pool.fetchval("SELECT credentials FROM credential WHERE id = $1", int(owned))
        )
        assert resting not in picked


async def test_changes_made_in_postgres_reach_the_cache_within_a_second(database_url, pool):
    source = unique("notice")
    disabled = await insert(pool, source, handle="re-enabled", enabled=False)
    busy = await insert(pool, source, handle="rested")
    refused = await insert(pool, source, handle="expired")
    async with cache_on(database_url) as (cache, _):
        assert await cache.pick(source, "re-enabled") is None

        async def picked(handle: str) -> str | None:
            credential = await cache.pick(source, handle)
            return None if credential is None else credential.id

        took = {}
        await pool.execute("UPDATE credential SET enabled = true WHERE id = $1", int(disabled))
        took["re-enabled"] = await within(1.0, lambda: picked("re-enabled"), lambda i: i == disabled)

        await pool.execute("UPDATE credential SET disabled_till = now() + interval '1 minute' WHERE id = $1", int(busy))
        took["rested"] = await within(1.0, lambda: picked("rested"), lambda i: i is None)

        await pool.execute("UPDATE credential SET data_access_expired = true WHERE id = $1", int(refused))
        took["expired"] = await within(1.0, lambda: picked("expired"), lambda i: i is None)

        added = await insert(pool, source, handle="added")
        took["added"] = await within(1.0, lambda: picked("added"), lambda i: i == added)

        await pool.execute("DELETE FROM credential WHERE id = $1", int(added))
        took["deleted"] = await within(1.0, lambda: cache.availability(source, "added"), lambda a: a.usable == 0)

        await pool.execute("UPDATE credential SET disabled_till = NULL WHERE id = $1", int(busy))
        took["rest ended"] = await within(1.0, lambda: picked("rested"), lambda i: i == busy)
    assert all(seconds < 1.0 for seconds in took.values()), took


def _proxied(url: str) -> TcpProxy:
    parts = urlsplit(url)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()


async def test_a_postgres_cut_does_not_stop_picks_and_writes_land_after_it(database_url, pool, caplog):
    source = unique("cut")
    first = await insert(pool, source, used_ago=60)
    second = await insert(pool, source, used_ago=30)
    proxy = _proxied(database_url)
    caplog.set_level(logging.INFO, logger="providers.credential_cache")
    try:
        async with cache_on(proxy.url(database_url)) as (cache, _):
            policy = CredentialPolicy(cache, {}, 900.0)
            assert (await cache.pick(source)).id == first
            proxy.cut()
            cut_at = time.monotonic()
            # Picks go on from memory, both keys in turn; a quota answer in the middle of the cut takes its
            # key out of this process's rotation at once.
            before, after, rested_at = [], [], None
            while time.monotonic() - cut_at < 5.0:
                credential = await cache.pick(source)
                (before if rested_at is None else after).append(credential.id)
                if rested_at is None and credential.id == first and time.monotonic() - cut_at > 2.0:
                    assert await policy.rest(credential, 30.0) == 30.0
                    rested_at = datetime.now(UTC)
                await asyncio.sleep(0.05)
            assert rested_at is not None
            assert set(before) == {first, second} and len(before) > 30
            assert set(after) == {second} and len(after) > 30
            used_last = cache.state(second).last_used_at

            proxy.restore()

            # Then, read through the unproxied pool: the rest, dated from when it was taken, and the stamps.
            async def rested() -> datetime | None:
                return await pool.fetchval("SELECT disabled_till FROM credential WHERE id = $1", int(first))

            await within(5.0, rested, lambda till: till is not None)
            rest = await rested()
            assert abs((rest - rested_at).total_seconds() - 30.0) < 1.0
            await within(
                5.0,
                lambda: pool.fetchval("SELECT last_used_at FROM credential WHERE id = $1", int(second)),
                lambda used: used == used_last,
            )
            await within(5.0, lambda: cache.availability(source), lambda a: a.usable == 2 and a.rest_in > 20)
    finally:
        proxy.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "providers.credential_cache"]
    assert sum("Postgres unreachable" in m for m in messages) == 1, messages
    assert sum("Postgres reachable again" in m for m in messages) == 1, messages


async def test_past_max_age_picks_raise_dependency_down_until_postgres_returns(database_url, pool):
    source = unique("stale")
    key = await insert(pool, source)
    proxy = _proxied(database_url)
    try:
        async with cache_on(proxy.url(database_url), max_age=2.0) as (cache, _):
            proxy.cut()
            cut_at = time.monotonic()
            assert (await cache.pick(source)).id == key  # young enough

            async def refused() -> bool:
                try:
                    await cache.pick(source)
                except DependencyDown as down:
                    return down.dependency == POSTGRES
                return False

            await within(4.0, refused, bool)
            assert 2.0 <= time.monotonic() - cut_at < 3.5
            with pytest.raises(DependencyDown):
                await cache.availability(source)

            proxy.restore()
            await within(5.0, refused, lambda down: not down)
            assert (await cache.pick(source)).id == key
    finally:
        proxy.stop()


async def test_last_used_at_is_written_in_batches():
    with migrated_database() as url:
        async with cache_on(url) as (cache, pool):
            source = unique("stamps")
            keys = [await insert(pool, source) for _ in range(3)]
            started = time.monotonic()
            picks = 0
            while time.monotonic() - started < 2.0:
                for _ in range(50):
                    await cache.pick(source)
                    picks += 1
                await asyncio.sleep(0.02)
            stamped = {key: cache.state(key).last_used_at for key in keys}

            async def in_postgres() -> dict[str, datetime]:
                rows = await pool.fetch("SELECT id, last_used_at FROM credential WHERE source = $1", source)
                return {str(row["id"]): row["last_used_at"] for row in rows}

            await within(2.5, in_postgres, lambda landed: landed == stamped)
            elapsed = time.monotonic() - started
        # Backends report their statistics at exit at the latest: one row update per key and flush.
        stats = await asyncpg.connect(url)
        try:

            async def updated() -> int:
                await stats.execute("SELECT pg_stat_clear_snapshot()")
                return await stats.fetchval("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'credential'")

            await within(5.0, updated, lambda rows: rows >= len(keys))
            updates = await updated()
        finally:
            await stats.close()
    assert picks > 1000
    assert updates <= len(keys) * (elapsed + 2), (updates, picks, elapsed)


async def test_a_running_worker_uses_a_key_enabled_in_postgres_within_a_second(broker, session_dir):
    """Requests arrive every 50 ms; one UPDATE disables the key in use and enables the other."""
    jotucker = "rapidapi-jotucker"
    with migrated_database() as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        first = await insert(pool, jotucker, secrets={**SANDBOX_CREDENTIALS[jotucker], "x-rapidapi-key": "key-a"})
        second = await insert(
            pool, jotucker, enabled=False, secrets={**SANDBOX_CREDENTIALS[jotucker], "x-rapidapi-key": "key-b"}
        )
        try:
            async with (
                isolated(broker, url, session_dir, SandboxConfig(), "cred") as (prefix, spawn, _),
                requests_to(broker, f"{prefix}{names.scrape_topic(LIKES_FLOW)}") as request,
                collected(broker, f"{prefix}{names.TRACE_LOG}") as traces,
            ):
                spawn("worker", "--flows", LIKES_FLOW)
                await request()
                await within(90.0, lambda: calls(traces), lambda seen: bool(seen))

                async def traffic(until: float) -> None:
                    while time.monotonic() < until:
                        await request()
                        await asyncio.sleep(0.05)

                load = asyncio.create_task(traffic(time.monotonic() + 4.0))
                await asyncio.sleep(1.0)
                switched_at = await pool.fetchval(
                    "WITH swapped AS (UPDATE credential SET enabled = (id = $2) WHERE id IN ($1, $2) RETURNING 1) "
                    "SELECT clock_timestamp() FROM swapped LIMIT 1",
                    int(first),
                    int(second),
                )
                await load
                # Every request of the traffic is served by now (they are served in order, per partition).
                await within(
                    30.0,
                    lambda: calls(traces),
                    lambda seen: any(at > switched_at + timedelta(seconds=2.5) for at, _ in seen),
                )
                seen = await calls(traces)
        finally:
            await pool.close()
    since = {
        key: [(at - switched_at).total_seconds() for at, used in seen if used == key and at > switched_at]
        for key in (first, second)
    }
    assert any(used == first for at, used in seen if at < switched_at)
    assert since[second] and min(since[second]) < 1.0, since
    assert not since[first] or max(since[first]) < 1.0, since  # the disabled key is out of use within 1 s
    assert len(since[second]) > 20, since


@asynccontextmanager
async def requests_to(broker: str, topic: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=5)
    await producer.start()

    async def request() -> None:
        body = {"id": str(uuid.uuid4()), "params": {"shortcode": "DexzOw9RxwA", "max_likes": 5}}
        await producer.send(topic, json.dumps(body).encode())

    try:
        yield request
    finally:
        await producer.stop()


@asynccontextmanager
async def collected(broker: str, topic: str) -> AsyncIterator[EventCollector]:
    collector = EventCollector(broker, [topic])
    await collector.start()
    try:
        yield collector
    finally:
        await collector.stop()


async def calls(traces: EventCollector) -> list[tuple[datetime, str]]:
    """(when the call began, credential id) of every provider call traced so far."""
    return [
        (datetime.fromisoformat(value["at"]) - timedelta(milliseconds=value["latency_ms"]), value["credential_id"])
        for records in list(traces.by_request.values())
        for _, value in records
    ]


async def test_an_account_with_no_usable_credential_is_read_again_before_a_pick_gives_up():
    # The notices are switched off, as if they were late: the insights routes store a token and refresh at
    # once, and the refresh's pick must not fail because the worker has not heard of the token yet.
    with migrated_database("beat_recheck") as url:
        async with cache_on(url) as (cache, pool):
            await pool.execute("ALTER TABLE credential DISABLE TRIGGER USER")
            source = unique("graph")
            expired = await insert(pool, source, handle="late", expired=True)
            assert await cache.pick(source, handle="late") is None  # read again, and still expired

            await pool.execute("UPDATE credential SET data_access_expired = false WHERE id = $1", int(expired))
            added = await insert(pool, source, handle="new")
            assert ids([await cache.pick(source, handle="new")]) == [added]
            # Once a second per account: the re-enabled one is found when that second has passed.
            assert await cache.pick(source, handle="late") is None
            await asyncio.sleep(RECHECK_EVERY)
            assert ids([await cache.pick(source, handle="late")]) == [expired]
