"""The facade's 3-level stacked refresh limits, each level on its own, in Redis and in process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from app.embedded import free_port
from app.refresh_limits import (
    INSTAGRAM_BY_HANDLE,
    INSTAGRAM_BY_ID,
    YOUTUBE_BY_ID,
    LimitExceeded,
    RefreshLimits,
)
from core.outage import REDIS, DependencyDown
from core.settings import load_settings
from providers.ratelimit import MemoryRateStore, Rate, RateLimitConfigError, RateStore, RedisRateStore
from tests.support import REDIS_URL

DAY = Rate(20000, 86400)
MINUTE = Rate(60, 60)
EACH = Rate(1, 1)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request) -> AsyncIterator[RateStore]:
    made: RateStore = MemoryRateStore() if request.param == "memory" else RedisRateStore(REDIS_URL)
    yield made
    await made.aclose()


def limits(store: RateStore, daily: Rate = DAY, minute: Rate = MINUTE, each: Rate = EACH) -> RefreshLimits:
    # A prefix per test: the daily keys live a day in the shared Redis.
    return RefreshLimits(store, daily, minute, each, prefix=f"beat_server_t{uuid.uuid4().hex[:8]}_")


def test_key_names_are_the_legacy_ones():
    made = RefreshLimits(MemoryRateStore(), DAY, MINUTE, EACH)
    assert made.keys(INSTAGRAM_BY_HANDLE, "nasa") == (
        "beat_server_refresh_profile_insta_daily",
        "beat_server_refresh_profile_insta_per_minute",
        "beat_server_refresh_profile_insta_per_handle_nasa",
    )
    assert made.keys(INSTAGRAM_BY_ID, "123") == (
        "beat_server_refresh_profile_insta_by_id_daily",
        "beat_server_refresh_profile_insta_by_id_per_minute",
        "beat_server_refresh_profile_insta_per_id_123",
    )
    assert made.keys(YOUTUBE_BY_ID, "UCx") == (
        "beat_server_refresh_profile_yt_by_id_daily",
        "beat_server_refresh_profile_yt_by_id_per_minute",
        "beat_server_refresh_profile_yt_per_id_UCx",
    )


async def test_per_handle_level(store):
    made = limits(store, each=Rate(1, 0.5))
    await made.take(INSTAGRAM_BY_HANDLE, "alpha")
    with pytest.raises(LimitExceeded):
        await made.take(INSTAGRAM_BY_HANDLE, "alpha")
    # Another handle has a limit of its own, and the same handle on another route too.
    await made.take(INSTAGRAM_BY_HANDLE, "beta")
    await made.take(INSTAGRAM_BY_ID, "alpha")
    await asyncio.sleep(0.6)
    await made.take(INSTAGRAM_BY_HANDLE, "alpha")


async def test_per_minute_level(store):
    made = limits(store, minute=Rate(2, 60))
    await made.take(INSTAGRAM_BY_HANDLE, "a")
    await made.take(INSTAGRAM_BY_HANDLE, "b")
    with pytest.raises(LimitExceeded) as refused:
        await made.take(INSTAGRAM_BY_HANDLE, "c")
    assert 0 < refused.value.wait <= 60
    # The per-minute key is the route's own: the YouTube route still has room.
    await made.take(YOUTUBE_BY_ID, "c")


async def test_daily_level(store):
    made = limits(store, daily=Rate(2, 86400))
    await made.take(INSTAGRAM_BY_ID, "1")
    await made.take(INSTAGRAM_BY_ID, "2")
    with pytest.raises(LimitExceeded) as refused:
        await made.take(INSTAGRAM_BY_ID, "3")
    assert refused.value.wait > 60


async def test_a_refused_refresh_spends_no_other_level(store):
    made = limits(store, minute=Rate(2, 60))
    await made.take(INSTAGRAM_BY_HANDLE, "a")
    # Refused by its handle's limit: the per-minute level must not count it, or "b" would be refused.
    with pytest.raises(LimitExceeded):
        await made.take(INSTAGRAM_BY_HANDLE, "a")
    await made.take(INSTAGRAM_BY_HANDLE, "b")


async def test_redis_keys_are_shared_by_two_facades():
    prefix = f"beat_server_t{uuid.uuid4().hex[:8]}_"
    first, second = RedisRateStore(REDIS_URL), RedisRateStore(REDIS_URL)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        one = RefreshLimits(first, DAY, Rate(1, 60), EACH, prefix=prefix)
        other = RefreshLimits(second, DAY, Rate(1, 60), EACH, prefix=prefix)
        await one.take(INSTAGRAM_BY_HANDLE, "a")
        with pytest.raises(LimitExceeded):
            await other.take(INSTAGRAM_BY_HANDLE, "b")
        assert await client.exists(f"{prefix}refresh_profile_insta_daily", f"{prefix}refresh_profile_insta_per_minute")
    finally:
        await client.delete(*[key async for key in client.scan_iter(f"{prefix}*")])
        await client.aclose()
        await first.aclose()
        await second.aclose()


def test_limits_are_configuration():
    settings = load_settings(api_refresh_minute_limit="5/10s", redis_url=None)
    made = RefreshLimits.from_settings(settings)
    assert made.rates == (Rate(20000, 86400), Rate(5, 10), Rate(1, 1))
    with pytest.raises(RateLimitConfigError, match="BEAT_API_REFRESH_EACH_LIMIT"):
        RefreshLimits.from_settings(load_settings(api_refresh_each_limit="often"))


async def test_a_redis_that_does_not_answer_is_an_outage_not_a_refusal():
    store = RedisRateStore(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(DependencyDown) as down:
            await limits(store).take(INSTAGRAM_BY_HANDLE, "a")
        assert down.value.dependency == REDIS  # the facade answers 503 with Retry-After
    finally:
        await store.aclose()
