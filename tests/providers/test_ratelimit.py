"""The rate limiter, in process and in a real Redis, and two processes sharing it against the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from multiprocessing.synchronize import Barrier

import httpx
import pytest
import pytest_asyncio

from core.settings import load_settings
from providers.errors import ProviderError
from providers.http import Credential, ProviderHttp
from providers.instagram.arraybobo import SOURCE, ArrayBoboClient
from providers.ratelimit import (
    DEFAULT_SOURCE_RATES,
    KEY_PREFIX,
    WAITER_GRACE,
    MemoryRateStore,
    Rate,
    RateLimitConfigError,
    RateLimiter,
    RateStore,
    RedisRateStore,
    Turn,
    calls_at,
)
from providers.sandbox import SandboxConfig, SandboxServer
from tests.support import REDIS_URL, redis_test_prefix


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A prefix of this test's own; its keys are deleted afterwards."""
    yield from redis_test_prefix(KEY_PREFIX)


class CountingStore:
    """Counts how often the limiter asks its store, to tell one timed sleep from polling."""

    def __init__(self, store: RateStore) -> None:
        self.store = store
        self.admits = 0

    async def admit(self, keys: Sequence[str], rates: Sequence[Rate], member: str, turn: Turn) -> float:
        self.admits += 1
        return await self.store.admit(keys, rates, member, turn)

    async def release(self, keys: Sequence[str], member: str) -> None:
        await self.store.release(keys, member)

    async def withdraw(self, keys: Sequence[str], queue: str) -> None:
        await self.store.withdraw(keys, queue)

    async def aclose(self) -> None:
        await self.store.aclose()


class LimiterFactory:
    """Builds limiters on one kind of store; ``stores`` are their stores, in order."""

    def __init__(self, new_store: Callable[[], RateStore], key_prefix: str) -> None:
        self._new_store = new_store
        self._key_prefix = key_prefix
        self.limiters: list[RateLimiter] = []
        self.stores: list[CountingStore] = []

    def __call__(
        self,
        *,
        source: dict[str, str] | None = None,
        credential: dict[str, str] | None = None,
        paced_up_to: int | None = None,
    ) -> RateLimiter:
        store = CountingStore(self._new_store())
        limiter = RateLimiter(
            store,
            source_rates={k: Rate.parse(v) for k, v in (source or {}).items()},
            credential_rates={k: Rate.parse(v) for k, v in (credential or {}).items()},
            key_prefix=self._key_prefix,
            paced_up_to=paced_up_to,
        )
        self.limiters.append(limiter)
        self.stores.append(store)
        return limiter


@pytest_asyncio.fixture(params=["memory", "redis"])
async def limiter_factory(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[LimiterFactory]:
    """The same tests run on the in-process store and on Redis."""
    factory = LimiterFactory(
        MemoryRateStore if request.param == "memory" else lambda: RedisRateStore(REDIS_URL), key_prefix
    )
    yield factory
    for limiter in factory.limiters:
        await limiter.aclose()


async def take(
    limiter: RateLimiter, source: str, credential_id: str | None = None, priority: int | None = None
) -> None:
    """One call that is over at once."""
    await (await limiter.acquire(source, credential_id, priority=priority)).release()


async def is_blocked(limiter: RateLimiter, source: str, credential_id: str | None = None) -> bool:
    try:
        await asyncio.wait_for(take(limiter, source, credential_id), 0.2)
    except TimeoutError:
        return True
    return False


# Specs and settings


@pytest.mark.parametrize(
    ("spec", "rate"), [("100/30s", Rate(100, 30.0)), (" 5 / 1s ", Rate(5, 1.0)), ("3/0.5s", Rate(3, 0.5))]
)
def test_spec_parses(spec: str, rate: Rate) -> None:
    assert Rate.parse(spec) == rate


@pytest.mark.parametrize("spec", ["100", "100/30", "100/30m", "0/30s", "100/0s", "-1/30s", "a/30s", ""])
def test_a_bad_spec_is_a_clear_error(spec: str) -> None:
    with pytest.raises(RateLimitConfigError, match=r"expected 'N/Ws'.*e\.g\. '100/30s'"):
        Rate.parse(spec)


def test_settings_override_lift_and_add_limits() -> None:
    settings = load_settings(
        source_rate_limits={"rocketapi": "50/10s", "rapidapi-arraybobo": None},
        credential_rate_limits={"rapidapi-arraybobo": "100/30s"},
    )
    limiter = RateLimiter.from_settings(settings)

    assert limiter.source_rates["rocketapi"] == Rate(50, 10.0)
    assert "rapidapi-arraybobo" not in limiter.source_rates
    assert limiter.source_rates["rapidapi-jotucker"] == Rate(5, 1.0)
    assert [key for key, _ in limiter.keys_for("rapidapi-arraybobo", "c1")] == [
        "beat:rl:credential:rapidapi-arraybobo:c1"
    ]
    assert [key for key, _ in limiter.keys_for("rocketapi", "c1")] == ["beat:rl:source:rocketapi"]
    assert limiter.keys_for("graphapi", "c1") == []


def test_defaults_are_the_legacy_specs_with_jotucker_applied() -> None:
    assert {label: str(rate) for label, rate in DEFAULT_SOURCE_RATES.items()} == {
        "rapidapi-yt": "850/60s",
        "rapidapi-bestsolutions": "2/1s",
        "rapidapi-jotucker": "5/1s",
        "rapidapi-arraybobo": "100/30s",
        "yt-v31": "500/60s",
        "rapidapi-yt-search": "3/1s",
        "rocketapi": "100/30s",
    }


def test_settings_errors_name_the_label() -> None:
    with pytest.raises(RateLimitConfigError, match="rocketapi: bad rate limit '100 per 30s'"):
        RateLimiter.from_settings(load_settings(source_rate_limits={"rocketapi": "100 per 30s"}))
    with pytest.raises(RateLimitConfigError, match=r"unknown source label.*rocket-api; known: .*rocketapi"):
        RateLimiter.from_settings(load_settings(credential_rate_limits={"rocket-api": "1/1s"}))


# Both stores


async def test_a_refused_call_sleeps_until_the_window_frees(limiter_factory: LimiterFactory) -> None:
    limiter = limiter_factory(credential={"rocketapi": "3/2s"})
    store = limiter_factory.stores[-1]
    await take(limiter, "rocketapi", "c1")
    await asyncio.sleep(0.7)
    await take(limiter, "rocketapi", "c1")
    await take(limiter, "rocketapi", "c1")
    store.admits = 0

    started = time.monotonic()
    await take(limiter, "rocketapi", "c1")
    waited = time.monotonic() - started

    # The first call leaves the window 2 s after it was released, 1.3 s from here: one
    # refusal, one timed sleep, one admission, not a poll every second.
    assert 1.2 < waited < 1.6
    assert store.admits == 2


async def test_a_call_in_flight_holds_its_slot_until_a_window_after_it_ends(limiter_factory: LimiterFactory) -> None:
    limiter = limiter_factory(credential={"rocketapi": "1/1s"})
    slot = await limiter.acquire("rocketapi", "c1")
    await asyncio.sleep(1.2)
    assert await is_blocked(limiter, "rocketapi", "c1")

    await slot.release()
    started = time.monotonic()
    await take(limiter, "rocketapi", "c1")
    assert 0.9 < time.monotonic() - started < 1.3


async def test_source_and_credential_limits_both_apply(limiter_factory: LimiterFactory) -> None:
    limiter = limiter_factory(source={"rocketapi": "3/5s"}, credential={"rocketapi": "2/5s"})
    await take(limiter, "rocketapi", "a")
    await take(limiter, "rocketapi", "a")
    assert await is_blocked(limiter, "rocketapi", "a")  # a's own limit

    await take(limiter, "rocketapi", "b")
    assert await is_blocked(limiter, "rocketapi", "b")  # the source's limit, with b's still free
    assert not await is_blocked(limiter, "lama", "a")  # no limit for this source


async def test_credentials_and_sources_have_separate_windows(limiter_factory: LimiterFactory) -> None:
    limiter = limiter_factory(
        source={"rocketapi": "1/5s", "rapidapi-jotucker": "1/5s"}, credential={"rapidapi-arraybobo": "1/5s"}
    )
    await take(limiter, "rocketapi", "a")
    assert not await is_blocked(limiter, "rapidapi-jotucker", "a")
    await take(limiter, "rapidapi-arraybobo", "a")
    assert not await is_blocked(limiter, "rapidapi-arraybobo", "b")


async def test_limiters_on_one_redis_share_their_windows(key_prefix: str) -> None:
    rates = {"rocketapi": Rate(2, 5.0)}
    first = RateLimiter(RedisRateStore(REDIS_URL), source_rates={}, credential_rates=rates, key_prefix=key_prefix)
    second = RateLimiter(RedisRateStore(REDIS_URL), source_rates={}, credential_rates=rates, key_prefix=key_prefix)
    try:
        await take(first, "rocketapi", "a")
        await take(second, "rocketapi", "a")
        assert await is_blocked(first, "rocketapi", "a")
        assert await is_blocked(second, "rocketapi", "a")
    finally:
        await first.aclose()
        await second.aclose()


# Priority: the next free slot goes to the highest-priority waiter


BULK, ON_DEMAND = 1, 10


async def _take_in_order(limiter: RateLimiter, order: list[str], name: str, priority: int) -> None:
    await take(limiter, "rocketapi", priority=priority)
    order.append(name)


async def test_a_free_slot_goes_to_the_highest_priority_waiter(limiter_factory: LimiterFactory) -> None:
    limiter = limiter_factory(source={"rocketapi": "1/0.3s"})
    await take(limiter, "rocketapi")  # the window is full
    order: list[str] = []
    bulk = [asyncio.ensure_future(_take_in_order(limiter, order, f"bulk{n}", BULK)) for n in range(3)]
    await asyncio.sleep(0.05)  # the bulk callers wait first
    urgent = asyncio.ensure_future(_take_in_order(limiter, order, "urgent", ON_DEMAND))
    await asyncio.gather(urgent, *bulk)
    assert order == ["urgent", "bulk0", "bulk1", "bulk2"]


async def test_the_request_priority_reaches_the_limiter_through_calls_at(limiter_factory: LimiterFactory) -> None:
    limiter = limiter_factory(source={"rocketapi": "1/0.3s"})
    await take(limiter, "rocketapi")
    order: list[str] = []

    async def call(name: str, priority: int) -> None:
        with calls_at(priority):  # as the worker sets it around a request's flow
            await asyncio.sleep(0)
            await take(limiter, "rocketapi")
        order.append(name)

    bulk = asyncio.ensure_future(call("bulk", BULK))
    await asyncio.sleep(0.05)
    await asyncio.gather(call("urgent", ON_DEMAND), bulk)
    assert order == ["urgent", "bulk"]


async def test_bulk_is_paced_and_on_demand_is_not(limiter_factory: LimiterFactory) -> None:
    # 4 per second: bulk callers go 0.25 s apart, so a saturated limit frees a slot that often.
    limiter = limiter_factory(source={"rocketapi": "4/1s"}, paced_up_to=BULK)
    started = time.monotonic()
    for _ in range(3):
        await take(limiter, "rocketapi", priority=BULK)
    assert 0.45 < time.monotonic() - started < 0.75
    started = time.monotonic()
    await take(limiter, "rocketapi", priority=ON_DEMAND)  # the window's last slot, at once
    assert time.monotonic() - started < 0.1


async def test_limiters_on_one_redis_serve_the_higher_priority_first(key_prefix: str) -> None:
    rates = {"rocketapi": Rate(1, 0.4)}
    bulk_side = RateLimiter(RedisRateStore(REDIS_URL), source_rates=rates, credential_rates={}, key_prefix=key_prefix)
    urgent_side = RateLimiter(RedisRateStore(REDIS_URL), source_rates=rates, credential_rates={}, key_prefix=key_prefix)
    try:
        await take(bulk_side, "rocketapi")
        order: list[str] = []
        bulk = [asyncio.ensure_future(_take_in_order(bulk_side, order, f"bulk{n}", BULK)) for n in range(2)]
        await asyncio.sleep(0.1)  # the bulk process waits first, its head registered in Redis
        urgent = [asyncio.ensure_future(_take_in_order(urgent_side, order, f"urgent{n}", ON_DEMAND)) for n in range(2)]
        await asyncio.gather(*urgent, *bulk)
        assert order == ["urgent0", "urgent1", "bulk0", "bulk1"]
    finally:
        await bulk_side.aclose()
        await urgent_side.aclose()


async def test_a_crashed_waiter_holds_lower_priorities_back_only_briefly(key_prefix: str) -> None:
    rates = {"rocketapi": Rate(1, 0.2)}
    store = RedisRateStore(REDIS_URL)
    limiter = RateLimiter(store, source_rates=rates, credential_rates={}, key_prefix=key_prefix)
    try:
        await take(limiter, "rocketapi")
        key = f"{key_prefix}source:rocketapi"
        # A process turned away at priority 10 that never asks again (it died): its entry lapses.
        assert await store.admit([key], [rates["rocketapi"]], "dead", Turn(ON_DEMAND, False, "dead-queue")) > 0
        started = time.monotonic()
        await take(limiter, "rocketapi", priority=BULK)
        assert 1.0 < time.monotonic() - started < 2.0 + WAITER_GRACE
    finally:
        await limiter.aclose()


# Two processes against the sandbox

SANDBOX_LIMIT, SANDBOX_WINDOW = 10, 2
CREDENTIALS = [Credential(id=f"cred-{n}", source=SOURCE, secrets={"x-rapidapi-key": f"k{n}"}) for n in (1, 2)]


async def _call_for(sandbox_url: str, key_prefix: str, seconds: float) -> None:
    settings = load_settings(
        redis_url=REDIS_URL,
        source_rate_limits={SOURCE: None},
        credential_rate_limits={SOURCE: f"{SANDBOX_LIMIT}/{SANDBOX_WINDOW}s"},
    )
    limiter = RateLimiter.from_settings(settings, key_prefix=key_prefix)
    http = ProviderHttp(base_urls={SOURCE: f"{sandbox_url}/{SOURCE}"}, timeout=10.0, limiter=limiter)
    bobo = ArrayBoboClient(http)
    stop_at = time.monotonic() + seconds

    async def caller(n: int) -> None:
        while time.monotonic() < stop_at:
            n += 1
            with contextlib.suppress(ProviderError):  # the sandbox's own log is what the test reads
                await bobo.profile_by_handle("lena.travels", credential=CREDENTIALS[n % 2])

    await asyncio.gather(*(caller(n) for n in range(16)))
    await http.aclose()
    await limiter.aclose()


def _worker(sandbox_url: str, key_prefix: str, ready: Barrier) -> None:
    # Both processes start calling together, however long each took to spawn and import.
    ready.wait()
    asyncio.run(_call_for(sandbox_url, key_prefix, 3 * SANDBOX_WINDOW))


def test_two_processes_never_exceed_the_providers_limit(key_prefix: str) -> None:
    config = SandboxConfig(rate_limits={"*": f"{SANDBOX_LIMIT}/{SANDBOX_WINDOW}"})
    with SandboxServer(config) as sandbox:
        spawn = multiprocessing.get_context("spawn")
        ready = spawn.Barrier(2)
        workers = [spawn.Process(target=_worker, args=(sandbox.url, key_prefix, ready)) for _ in range(2)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(30)
            assert process.exitcode == 0
        total = httpx.get(f"{sandbox.url}/_sandbox/stats").json()["total"]

    assert total["rate_limited"] == 0
    # Both credentials ran into their limit and were refilled, more than once (the rate
    # reached is bench/ratelimit.py's business; a loaded machine slows each refill).
    assert total["accepted"] > 2 * 2 * SANDBOX_LIMIT
