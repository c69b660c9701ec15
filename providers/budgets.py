"""Daily budgets per source or flow (``BEAT_BUDGETS``), reserved before each call.

A budget ``{"source:ytapitoken": 10000, "flow:refresh_yt_posts_by_search": 5000}`` caps what a source, or
the calls one flow makes, may cost in a day (costs: ``providers/costs.py``). A call's cost is *reserved*
under every budget that applies, atomically, before the call goes out: in Redis when ``BEAT_REDIS_URL`` is
set (the rate limiter's server, so every process shares one count), in the process otherwise (each of
``BEAT_RATE_LIMIT_PROCESSES`` processes then takes its share, like the rate limits). A reserved cost is
spent whatever the call answers: a provider counts a refused call too.

A day ends at UTC midnight, except a YouTube Data API source's, which ends when Google resets the quota,
at midnight Pacific Time. At the limit the call is not made, and per ``BEAT_BUDGET_MODE``:

- ``retry``: ``BudgetWait``, transient with ``ready_in`` = seconds to the reset, so the request waits on a
  delay tier, holding no worker slot, spending no attempt (``BEAT_RETRY_MAX_WAIT`` must reach the reset);
- ``fail``: ``BudgetExhausted``, definitive: the request ends FAILED.

``budget_remaining(settings, store)`` is what is left of each budget today, for the status page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_start
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.outage import REDIS, as_outage
from providers.errors import BudgetExhausted, BudgetWait
from providers.sources import SOURCES
from topics.errors import BeatError, Decision
from topics.flows import FLOWS
from topics.models import utcnow

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "beat:budget:"
REDIS_TIMEOUT = 5.0
# A day's count outlives its day by this much, then Redis drops it.
KEEP_AFTER_RESET = 3600.0
# Google resets the YouTube Data API's daily quota at midnight Pacific Time (providers/youtube/youtube_data.py
# rests a credential until then too); the sources that go out under its labels end their day there.
QUOTA_RESET_ZONE = ZoneInfo("America/Los_Angeles")
PACIFIC_SOURCES = frozenset({"ytapitoken", "ytapi"})


class BudgetConfigError(BeatError, ValueError):
    """A budget that names no ``source:`` or ``flow:``, a flow Beat does not have, or a negative limit."""

    decision = Decision.DEFINITIVE


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # "source" or "flow"
    name: str
    limit: float

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.name}"

    @property
    def zone(self) -> ZoneInfo | None:
        """Where its day ends; None is UTC."""
        return QUOTA_RESET_ZONE if self.scope == "source" and self.name in PACIFIC_SOURCES else None

    def day(self, now: datetime) -> date:
        return now.astimezone(self.zone or UTC).date()

    def resets_in(self, now: datetime) -> float:
        zone = self.zone or UTC
        local = now.astimezone(zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), day_start.min, tzinfo=zone)
        return max((midnight - local).total_seconds(), 0.0)


def configured_budgets(settings: Settings) -> list[Budget]:
    """``BEAT_BUDGETS`` parsed; without Redis, this process's share of each."""
    sharers = 1 if settings.redis_url else settings.rate_limit_processes
    budgets = []
    for key, limit in settings.budgets.items():
        scope, _, name = key.partition(":")
        if scope not in ("source", "flow") or not name:
            raise BudgetConfigError(f"budget {key!r}: expected 'source:<label>' or 'flow:<name>'")
        if limit < 0:
            raise BudgetConfigError(f"budget {key!r}: {limit} is negative")
        # A misspelt name would cap nothing, silently.
        if scope == "flow" and name not in FLOWS:
            raise BudgetConfigError(f"budget {key!r}: no flow is called {name!r}")
        if scope == "source" and name not in SOURCES:
            # Labels outside the table exist (RAY's, the ad-vs-organic model's), so only a warning.
            log.warning("budget %r names a source label Beat does not list; known: %s", key, ", ".join(SOURCES))
        budgets.append(Budget(scope, name, limit / sharers))
    return budgets


class BudgetStore(Protocol):
    async def reserve(self, keys: Sequence[str], limits: Sequence[float], cost: float, ttls: Sequence[float]) -> int:
        """Add ``cost`` under every key if each stays within its limit and return -1; else add nothing and
        return the index of the first key that has no room."""

    async def spent(self, keys: Sequence[str]) -> list[float]: ...

    async def aclose(self) -> None: ...


class MemoryBudgetStore:
    """One process's counts, for running without Redis."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[float, float]] = {}  # key -> (spent, monotonic expiry)

    def _current(self, key: str) -> float:
        spent, until = self._counts.get(key, (0.0, 0.0))
        return spent if until > time.monotonic() else 0.0

    async def reserve(self, keys: Sequence[str], limits: Sequence[float], cost: float, ttls: Sequence[float]) -> int:
        for index, (key, limit) in enumerate(zip(keys, limits, strict=True)):
            if self._current(key) + cost > limit:
                return index
        now = time.monotonic()
        for key, ttl in zip(keys, ttls, strict=True):
            self._counts[key] = (self._current(key) + cost, now + ttl)
        return -1

    async def spent(self, keys: Sequence[str]) -> list[float]:
        return [self._current(key) for key in keys]

    async def aclose(self) -> None:
        self._counts.clear()


_RESERVE = """
local cost = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    if (tonumber(redis.call('GET', key)) or 0) + cost > tonumber(ARGV[1 + i]) then
        return i - 1
    end
end
for i, key in ipairs(KEYS) do
    redis.call('INCRBYFLOAT', key, cost)
    redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[1 + #KEYS + i]) * 1000))
end
return -1
"""


class RedisBudgetStore:
    """Counts in Redis, shared by every process on it."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        self._reserve = self._redis.register_script(_RESERVE)

    async def reserve(self, keys: Sequence[str], limits: Sequence[float], cost: float, ttls: Sequence[float]) -> int:
        try:
            return int(await self._reserve(keys=list(keys), args=[cost, *limits, *ttls]))
        except RedisError as exc:
            # No reservation, no call: the worker waits for Redis rather than spend blind.
            raise as_outage(REDIS, exc) from exc

    async def spent(self, keys: Sequence[str]) -> list[float]:
        try:
            values = await self._redis.mget(list(keys)) if keys else []
        except RedisError as exc:
            raise as_outage(REDIS, exc) from exc
        return [float(value) if value is not None else 0.0 for value in values]

    async def aclose(self) -> None:
        await self._redis.aclose()


def key_prefix(settings: Settings) -> str:
    """Budgets are one deployment's caps, so its topic prefix is in their keys: a test or staging deployment
    on the same Redis spends its own (the rate limits, the provider's, are shared whatever the prefix)."""
    return f"{KEY_PREFIX}{settings.topic_prefix}"


def open_store(settings: Settings) -> BudgetStore:
    return RedisBudgetStore(settings.redis_url) if settings.redis_url else MemoryBudgetStore()


class BudgetGuard:
    """Reserves each call's cost under the budgets of its source and flow, or raises the configured error."""

    def __init__(self, store: BudgetStore, budgets: Sequence[Budget], mode: str, prefix: str = KEY_PREFIX) -> None:
        self._store = store
        self._budgets = {budget.key: budget for budget in budgets}
        self._mode = mode
        self._prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> BudgetGuard:
        return cls(open_store(settings), configured_budgets(settings), settings.budget_mode, key_prefix(settings))

    def applies(self, source: str, flow: str) -> list[Budget]:
        return [b for key in (f"source:{source}", f"flow:{flow}") if (b := self._budgets.get(key)) is not None]

    async def reserve(self, source: str, flow: str, cost: float) -> None:
        budgets = self.applies(source, flow)
        if not budgets or cost <= 0:
            return
        now = utcnow()
        keys = [store_key(self._prefix, budget, now) for budget in budgets]
        ttls = [budget.resets_in(now) + KEEP_AFTER_RESET for budget in budgets]
        full = await self._store.reserve(keys, [b.limit for b in budgets], cost, ttls)
        if full < 0:
            return
        budget = budgets[full]
        wait = budget.resets_in(now)
        message = f"the daily budget {budget.key} ({budget.limit:g}) has no room for a call costing {cost:g}"
        if self._mode == "fail":
            raise BudgetExhausted(message, source=source)
        raise BudgetWait(f"{message}; it resets in {wait:.0f}s", source=source, ready_in=wait)

    async def aclose(self) -> None:
        await self._store.aclose()


def store_key(prefix: str, budget: Budget, now: datetime) -> str:
    return f"{prefix}{budget.key}:{budget.day(now).isoformat()}"


@dataclass(frozen=True, slots=True)
class Remaining:
    """One budget today: its limit, what is reserved, what is left, and when it resets."""

    budget: str
    limit: float
    spent: float
    remaining: float
    resets_at: datetime


async def budget_remaining(settings: Settings, store: BudgetStore, *, now: datetime | None = None) -> list[Remaining]:
    """What is left of every configured budget today, in ``BEAT_BUDGETS`` order. ``store`` is
    ``open_store(settings)``: with Redis every process's reservations, without it this process's own."""
    now = now or utcnow()
    budgets = configured_budgets(settings)
    prefix = key_prefix(settings)
    spent = await store.spent([store_key(prefix, budget, now) for budget in budgets])
    return [
        Remaining(
            budget=budget.key,
            limit=budget.limit,
            spent=used,
            remaining=max(budget.limit - used, 0.0),
            resets_at=now + timedelta(seconds=budget.resets_in(now)),
        )
        for budget, used in zip(budgets, spent, strict=True)
    ]
