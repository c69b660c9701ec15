"""Source fallback, the credential lifecycle, circuits and the failure taxonomy, and keeping secrets secret,
through real processes and a real sandbox."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import asyncpg
import httpx
import pytest

from providers.breaker import Breaker, MemoryBreakerStore
from providers.crawler import AllSourcesFailed, Crawler, NoCredential
from providers.credential_cache import CredentialCache
from providers.credentials import CredentialPolicy, CredentialStore
from providers.errors import InputRejected, PostMissing
from providers.http import ProviderHttp
from providers.instagram import jotucker, lama
from providers.operations import FETCH_FOLLOWING, FETCH_POST_LIKES
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import SANDBOX_CREDENTIALS, sandbox_base_urls
from providers.sandbox.server import SandboxServer
from providers.spending import Spending
from tests.conftest import isolated
from tests.support import migrated_database, produce_requests, unique, wait_terminal
from topics import names
from topics.models import utcnow

BASIC = "refresh_profile_basic"
T = TypeVar("T")


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
            # One attempt: a transient failure of every source ends the request FAILED instead of retrying it.
            async with isolated(
                broker, url, session_dir, failing, "fall", log_level="DEBUG", retry_max_attempts="1"
            ) as (prefix, spawn, sandbox):
                spawn("worker", "--flows", BASIC)
                topic = f"{prefix}{names.scrape_topic(BASIC)}"
                [ok] = await produce_requests(broker, topic, [{"params": {"handle": unique("fallback")}}])
                assert (await wait_terminal(pool, [ok], timeout=90)) == {ok: "COMPLETE"}
                row = await pool.fetchrow("SELECT source FROM scrape_request_log WHERE id = $1", ok)
                assert row["source"] == "rapidapi-jotucker"  # graphapi 500, arraybobo 429, jotucker answers

                resting = await pool.fetchrow(
                    "SELECT disabled_till FROM credential WHERE source = 'rapidapi-arraybobo'"
                )
                rest = resting["disabled_till"] - utcnow()
                assert timedelta(seconds=100) < rest <= timedelta(seconds=120)
                graph = await pool.fetchval("SELECT disabled_till FROM credential WHERE source = 'graphapi'")
                assert graph is None  # a 500 says nothing about the credential

                # Every source down: FAILED, naming each source tried and why.
                everything = {
                    f"/{s}/": 503 for s in ("graphapi", "rapidapi-jotucker", "lama", "rapidapi-bestsolutions")
                }
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
            await pool.execute(
                "UPDATE credential SET credentials = $1::jsonb WHERE source = 'graphapi'",
                json.dumps({"token": "expired-token", "user_id": "17841400000000001"}),
            )
            async with isolated(broker, url, session_dir, SandboxConfig(), "auth") as (prefix, spawn, _):
                spawn("worker", "--flows", BASIC)
                [ok] = await produce_requests(
                    broker, f"{prefix}{names.scrape_topic(BASIC)}", [{"params": {"handle": unique("auth")}}]
                )
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
        cache = await open_cache(pool, database_url)
        try:
            picked = [(await cache.pick(source)).id for _ in range(9)]
        finally:
            await cache.aclose()
        assert {i: picked.count(i) for i in ids} == dict.fromkeys(ids, 3)
        assert set(picked[:3]) == set(picked[3:6]) == ids  # each round uses every key once
    finally:
        await pool.close()


async def open_cache(pool: asyncpg.Pool, url: str) -> CredentialCache:
    return await CredentialCache.open(pool, url, refresh_interval=30.0, max_age=300.0)


# The crawler in this process against a sandbox of its own: the sandbox counts what reaches it.

LIKES = "/rapidapi-jotucker/media_likers"
FOLLOWING = "/rapidapi-jotucker/following"
SHORTCODE = "DexzOw9RxwA"


@dataclass
class Harness:
    crawler: Crawler
    cache: CredentialCache
    pool: asyncpg.Pool
    sandbox_url: str
    keys: dict[str, str]  # credential id -> key

    def configure(self, config: SandboxConfig) -> None:
        httpx.put(f"{self.sandbox_url}/_sandbox/config", json=config.model_dump(mode="json")).raise_for_status()

    def seen(self, path: str, outcome: str = "arrivals") -> int:
        stats = httpx.get(f"{self.sandbox_url}/_sandbox/stats").json()
        return stats["paths"].get(path, {}).get(outcome, 0)

    def arrivals_under(self, prefix: str) -> int:
        paths = httpx.get(f"{self.sandbox_url}/_sandbox/stats").json()["paths"]
        return sum(counts.get("arrivals", 0) for path, counts in paths.items() if path.startswith(prefix))

    def by_key(self, key: str, outcome: str) -> int:
        return httpx.get(f"{self.sandbox_url}/_sandbox/stats").json()["credentials"].get(key, {}).get(outcome, 0)

    async def likes(self) -> tuple[object, str]:
        return await self.crawler.fetch(FETCH_POST_LIKES, SHORTCODE, None)

    async def rest_of(self, credential_id: str) -> tuple[float | None, int]:
        """The credential's rest and strikes in Postgres, once the policy's writes have landed."""
        await self.cache.written()
        return await rest_of(self.pool, credential_id)


@asynccontextmanager
async def sandbox_crawler(
    config: SandboxConfig,
    *,
    keys: tuple[str, ...] = ("sandbox-jotucker",),
    breaker: tuple[int, float] | None = None,
    first_rest: float = 5.0,
    cooldown: float = 900.0,
    timeout: float = 5.0,
    priorities: dict[str, tuple[str, ...]] | None = None,
    spending: Spending | None = None,
) -> AsyncIterator[Harness]:
    """A crawler over JoTucker and Lama with ``keys`` for JoTucker; ``breaker`` = (failures, cool-down);
    ``spending``: the cost and budget guards of its calls."""
    with SandboxServer(config) as sandbox, migrated_database() as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        http = ProviderHttp(base_urls=sandbox_base_urls(sandbox.url), timeout=timeout, spending=spending)
        cache = None
        try:
            store = CredentialStore(pool)
            ids = {}
            for key in keys:
                secrets = {**SANDBOX_CREDENTIALS[jotucker.SOURCE], "x-rapidapi-key": key}
                ids[await store.add(jotucker.SOURCE, secrets)] = key
            await store.add(lama.SOURCE, SANDBOX_CREDENTIALS[lama.SOURCE])
            cache = await open_cache(pool, url)
            circuits = (
                None
                if breaker is None
                else Breaker(MemoryBreakerStore(), failures=breaker[0], cooldown=breaker[1], pool=pool)
            )
            crawler = Crawler(
                cache,
                CredentialPolicy(cache, {}, cooldown, first_rest),
                {jotucker.SOURCE: jotucker.JoTuckerClient(http), lama.SOURCE: lama.LamaClient(http)},
                priorities=priorities,
                breaker=circuits,
            )
            yield Harness(crawler, cache, pool, sandbox.url, ids)
        finally:
            await http.aclose()
            if cache is not None:
                await cache.aclose()
            await pool.close()


async def rest_of(pool: asyncpg.Pool, credential_id: str) -> tuple[float | None, int]:
    row = await pool.fetchrow(
        "SELECT EXTRACT(EPOCH FROM disabled_till - now()) AS rest, quota_strikes FROM credential WHERE id = $1",
        int(credential_id),
    )
    return (None if row["rest"] is None else float(row["rest"])), row["quota_strikes"]


async def test_an_open_circuit_lets_only_probes_reach_the_provider():
    # A hanging path under a short HTTP timeout: two timeouts open the circuit.
    async with sandbox_crawler(SandboxConfig(hang_paths=[LIKES], hang_seconds=30), breaker=(2, 1.0), timeout=0.3) as h:
        for _ in range(2):
            with pytest.raises(AllSourcesFailed) as timed_out:
                await h.likes()
            assert (timed_out.value.retriable, timed_out.value.ready_in) == (True, None)
        assert h.seen(LIKES) == 2

        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(AllSourcesFailed) as skipped:
                await h.likes()
            assert skipped.value.retriable and 0 < skipped.value.ready_in <= 1.0
            assert "circuit open" in str(skipped.value)
        assert time.monotonic() - started < 1.0  # no timeout waited out
        assert h.seen(LIKES) == 2
        row = await h.pool.fetchrow(
            "SELECT state, failures, next_probe_at FROM source_breaker WHERE scope = $1", f"source:{jotucker.SOURCE}"
        )
        assert (row["state"], row["failures"]) == ("open", 2)

        # After the cool-down, of eight concurrent callers exactly one probes; the probe times out: open again.
        await asyncio.sleep(1.05)
        outcomes = await asyncio.gather(*(h.likes() for _ in range(8)), return_exceptions=True)
        assert all(isinstance(o, AllSourcesFailed) for o in outcomes)
        assert sum("timed out" in str(o) for o in outcomes) == 1
        assert h.seen(LIKES) == 3
        with pytest.raises(AllSourcesFailed, match="circuit open"):
            await h.likes()
        assert h.seen(LIKES) == 3

        # The provider recovers: the next probe closes the circuit and calls flow again.
        h.configure(SandboxConfig())
        await asyncio.sleep(1.05)
        _, source = await h.likes()
        assert source == jotucker.SOURCE
        for _ in range(3):
            await h.likes()
        assert h.seen(LIKES) == 3 + 4
        assert (
            await h.pool.fetchval("SELECT state FROM source_breaker WHERE scope = $1", f"source:{jotucker.SOURCE}")
            == "closed"
        )


async def test_a_429_tries_the_next_key_of_a_one_source_fetch_type():
    async with sandbox_crawler(SandboxConfig(rate_limits={"key-a": "1/60"}), keys=("key-a", "key-b")) as h:
        first, second = h.keys
        # Spend key-a's window, as another client of the same plan would.
        httpx.get(
            f"{h.sandbox_url}{LIKES}", params={"short_code": SHORTCODE}, headers={"x-rapidapi-key": "key-a"}
        ).raise_for_status()
        page, source = await h.likes()
        assert source == jotucker.SOURCE and page.items
        assert (h.by_key("key-a", "rate_limited"), h.by_key("key-b", "accepted")) == (1, 1)
        rest, _ = await h.rest_of(first)
        assert 55 < rest <= 60  # the sandbox's Retry-After
        assert (await h.rest_of(second)) == (None, 0)

        # Both keys spent: transient, ready when the first key is, and no other source was asked.
        h.configure(SandboxConfig(rate_limits={"*": "1/60"}))
        httpx.get(
            f"{h.sandbox_url}{LIKES}", params={"short_code": SHORTCODE}, headers={"x-rapidapi-key": "key-b"}
        ).raise_for_status()
        with pytest.raises(AllSourcesFailed) as spent:
            await h.likes()
        assert spent.value.retriable and 50 < spent.value.ready_in <= 60
        assert h.by_key("key-b", "rate_limited") == 1


async def test_a_short_burst_of_429s_rests_a_key_for_seconds_doubling_on_repeats():
    burst = SandboxConfig(fail_paths={LIKES: 429})  # no Retry-After
    async with sandbox_crawler(burst, first_rest=0.5, cooldown=900.0) as h:
        [key] = h.keys
        with pytest.raises(AllSourcesFailed) as first:
            await h.likes()
        assert first.value.retriable and first.value.ready_in == pytest.approx(0.5, abs=0.1)
        rest, strikes = await h.rest_of(key)
        assert 0.3 < rest <= 0.5 and strikes == 1

        # While it rests: no call, transient, ready when the rest ends.
        with pytest.raises(NoCredential) as resting:
            await h.likes()
        assert resting.value.retriable and 0 < resting.value.ready_in <= 0.5
        assert h.seen(LIKES) == 1

        await asyncio.sleep(0.55)
        with pytest.raises(AllSourcesFailed):
            await h.likes()
        rest, strikes = await h.rest_of(key)
        assert 0.8 < rest <= 1.0 and strikes == 2  # doubled

        # The burst is over: a success ends the streak, and the next 429 rests it briefly again.
        h.configure(SandboxConfig())
        await asyncio.sleep(1.05)
        await h.likes()
        assert (await h.rest_of(key))[1] == 0
        h.configure(burst)
        with pytest.raises(AllSourcesFailed):
            await h.likes()
        rest, strikes = await h.rest_of(key)
        assert 0.3 < rest <= 0.5 and strikes == 1


async def test_rests_double_up_to_the_configured_cooldown(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        store = CredentialStore(pool)
        source = unique("doubling")
        await store.add(source, {"x-rapidapi-key": unique("k")})
        cache = await open_cache(pool, database_url)
        credential = await cache.pick(source)
        policy = CredentialPolicy(cache, {source: 3.0}, 900.0, first_rest=1.0)

        async def rest_after_the_last() -> float:
            # End the rest in Postgres, as another process would, and let the cache hear of it.
            await cache.written()
            await pool.execute("UPDATE credential SET disabled_till = now() WHERE id = $1", int(credential.id))
            await heard(lambda: cache.availability(source), lambda a: a.rest_in is None)
            return await policy.rest(credential, None)

        rests = [await rest_after_the_last() for _ in range(4)]
        assert rests == [pytest.approx(r, abs=0.05) for r in (1.0, 2.0, 3.0, 3.0)]
        await cache.written()
        assert (await rest_of(pool, credential.id))[1] == 4  # Postgres counted the same strikes
        assert await policy.rest(credential, 42.0) == 42.0  # a provider's reset time is the rest as said
        await cache.aclose()
    finally:
        await pool.close()


async def heard(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 1.0) -> None:
    """Wait for the credential cache to hear of a change made in Postgres (it is told within a second)."""
    deadline = time.monotonic() + timeout
    while not done(await read()):
        assert time.monotonic() < deadline, "the credential cache did not hear of the change"
        await asyncio.sleep(0.01)


async def test_429s_of_calls_already_in_flight_count_as_one_strike(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    try:
        store = CredentialStore(pool)
        source = unique("inflight")
        await store.add(source, {"x-rapidapi-key": unique("k")})
        cache = await open_cache(pool, database_url)
        credential = await cache.pick(source)
        policy = CredentialPolicy(cache, {}, 900.0, first_rest=1.0)
        # A burst meets every call in flight at once: ten answers, one rest of the first length.
        rests = await asyncio.gather(*(policy.rest(credential, None) for _ in range(10)))
        assert all(0 < rest <= 1.0 for rest in rests), rests
        await cache.aclose()
        strikes = await pool.fetchval("SELECT quota_strikes FROM credential WHERE id = $1", int(credential.id))
        assert strikes == 1
    finally:
        await pool.close()


async def test_a_listed_source_without_the_operation_is_passed_over():
    # A priority list (or BEAT_SOURCE_PRIORITIES) may name a source whose client lacks the operation: it is
    # skipped without a call and without counting toward its circuit, and the next source answers.
    async with sandbox_crawler(
        SandboxConfig(), breaker=(1, 60.0), priorities={"fetch_post_likes": (lama.SOURCE, jotucker.SOURCE)}
    ) as h:
        page, source = await h.likes()
        assert source == jotucker.SOURCE and page.items
        assert h.arrivals_under(f"/{lama.SOURCE}/") == 0
        assert (
            await h.pool.fetchval("SELECT count(*) FROM source_breaker WHERE scope = $1", f"source:{lama.SOURCE}") == 0
        )


async def test_the_taxonomy_at_the_crawler():
    async with sandbox_crawler(SandboxConfig(), breaker=(1, 60.0)) as h:
        # The entity does not exist: definitive, at once.
        with pytest.raises(PostMissing) as missing:
            await h.crawler.fetch(FETCH_POST_LIKES, "missing-post", None)
        assert missing.value.retriable is False

        # The provider refused the input.
        h.configure(SandboxConfig(fail_paths={LIKES: 400}))
        with pytest.raises(InputRejected) as rejected:
            await h.likes()
        assert rejected.value.retriable is False

        # The source asked for does not support the operation (Lama lists no likers).
        with pytest.raises(AllSourcesFailed) as unsupported:
            await h.crawler.fetch(FETCH_POST_LIKES, SHORTCODE, None, only=lama.SOURCE)
        assert (unsupported.value.retriable, unsupported.value.ready_in) == (False, None)

        # An answer that does not parse falls through to the next source, and counts toward the breaker.
        h.configure(SandboxConfig(fail_paths={FOLLOWING: 200}))
        page, source = await h.crawler.fetch(FETCH_FOLLOWING, "1000001", None)
        assert source == lama.SOURCE and page.items
        row = await h.pool.fetchrow(
            "SELECT state, last_error FROM source_breaker WHERE scope = $1", f"source:{jotucker.SOURCE}"
        )
        assert row["state"] == "open" and row["last_error"].startswith("BadResponse")

        # An open circuit on JoTucker, the only source of likes: transient, ready at the probe.
        with pytest.raises(AllSourcesFailed) as open_circuit:
            await h.likes()
        assert open_circuit.value.retriable and 55 < open_circuit.value.ready_in <= 60

        # No credential configured at all for the only source: definitive.
        await h.pool.execute("DELETE FROM credential WHERE source = 'lama'")
        await heard(lambda: h.cache.availability(lama.SOURCE), lambda a: a.usable == 0)
        with pytest.raises(NoCredential) as none:
            await h.crawler.fetch(FETCH_FOLLOWING, "1000001", None, only=lama.SOURCE)
        assert (none.value.retriable, none.value.ready_in) == (False, None)
