"""Provider rate limits shared by every Beat process: per source and per credential.

A limit ``N/Ws`` means the provider accepts at most N calls in any W seconds, counted
at *its* arrival times in a sliding log. A call reaches the provider some time after
its slot is taken, and that lag varies: two processes bursting at the sandbox saw it
spread from 0 to 1.6 s. A log of slot times alone therefore lets a call admitted W
after an older one arrive less than W after it (with ``limits``' moving window, that
setup got 103 of 600 calls answered 429). So every call's entry is dated twice:

- on admission, ``IN_FLIGHT_TTL`` ahead: while the call is out it counts, whatever its lag;
- on release (answer, error or cancellation), to that moment, which is no earlier than
  the provider's arrival, so the entry leaves our window no earlier than the provider's.

That holds with no safety margin; the price is each call's answer latency added to
its slot's lifetime (about 1% of a 30 s window in bench/ratelimit.py). Admission covers
every limit that applies, atomically, on one clock: Redis's ``TIME`` when ``redis_url``
is set (so the hosts' clocks never matter), the monotonic clock in process otherwise.
In process, several processes (``beat worker --processes N``) cannot see each other's
calls, so each applies its share of every limit (``configured_rates``).

The ``limits`` library was measured first and not kept: its moving window keeps bare
caller-clock timestamps that cannot be re-dated, admits one limit at a time, and takes
whole-second windows only (Redis's EXPIRE refuses 30.5), so neither re-dating nor a
fractional margin fits it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.outage import REDIS, as_outage
from providers.sources import SOURCES
from topics.errors import BeatError, Decision

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "beat:rl:"
# Longer than any call runs: flows time out and release their slots well before. Only a
# process that dies mid-call leaves a reservation this long, holding one slot meanwhile.
IN_FLIGHT_TTL = 300.0
REDIS_TIMEOUT = 5.0

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s\s*")


class RateLimitConfigError(BeatError, ValueError):
    """A rate spec that does not parse, or a limit for a source label Beat does not know."""

    decision = Decision.DEFINITIVE


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` calls in any ``window`` seconds."""

    limit: int
    window: float

    @classmethod
    def parse(cls, spec: str) -> Rate:
        """``"100/30s"`` is 100 calls per 30 seconds."""
        match = _SPEC.fullmatch(spec)
        if match is None or int(match[1]) < 1 or float(match[2]) <= 0:
            raise RateLimitConfigError(
                f"bad rate limit {spec!r}: expected 'N/Ws' with N >= 1 and W > 0, e.g. '100/30s'"
            )
        return cls(int(match[1]), float(match[2]))

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}s"

    def share(self, processes: int) -> Rate:
        """One of ``processes`` even shares of this limit, for processes that each count their own calls
        (no Redis): each may make the floor of limit/processes calls in the same window, so together
        they never exceed the limit (the remainder goes unused: 5/1s over 2 is 2/1s each)."""
        if self.limit < processes:
            raise RateLimitConfigError(
                f"{self} cannot be split among {processes} processes that count their calls apart (each needs "
                f"at least one call per window): set BEAT_REDIS_URL to share it, or run at most {self.limit}"
            )
        return Rate(self.limit // processes, self.window)


# Legacy-beat.md §3.4, keyed by source label. Legacy never applied JoTucker's limit (its URL
# substring did not match); here it applies. Sources not listed are not throttled.
DEFAULT_SOURCE_RATES: dict[str, Rate] = {
    label: Rate.parse(spec)
    for label, spec in {
        "rapidapi-yt": "850/60s",
        "rapidapi-bestsolutions": "2/1s",
        "rapidapi-jotucker": "5/1s",
        "rapidapi-arraybobo": "100/30s",
        "yt-v31": "500/60s",
        "rapidapi-yt-search": "3/1s",
        "rocketapi": "100/30s",
    }.items()
}


class RateStore(Protocol):
    """Sliding logs of call entries, one per key; admission and release are each atomic."""

    async def admit(self, keys: Sequence[str], rates: Sequence[Rate], member: str) -> float:
        """Log ``member`` as in flight under every key and return 0, or return the seconds
        until all of them have room, logging nothing."""

    async def release(self, keys: Sequence[str], member: str) -> None:
        """Date ``member``'s entries now."""

    async def ping(self) -> None:
        """Return once the store answers; raise while it does not."""

    async def aclose(self) -> None: ...


class MemoryRateStore:
    """One process's logs, for running without Redis."""

    def __init__(self) -> None:
        self._logs: defaultdict[str, dict[str, float]] = defaultdict(dict)

    async def admit(self, keys: Sequence[str], rates: Sequence[Rate], member: str) -> float:
        now = time.monotonic()
        wait = 0.0
        for key, rate in zip(keys, rates, strict=True):
            entries = self._logs[key]
            horizon = now - rate.window
            for gone in [m for m, at in entries.items() if at <= horizon]:
                del entries[gone]
            if len(entries) >= rate.limit:
                wait = max(wait, _frees_in(sorted(entries.values()), rate, now))
        if wait > 0:
            return wait
        for key in keys:
            self._logs[key][member] = now + IN_FLIGHT_TTL
        return 0.0

    async def release(self, keys: Sequence[str], member: str) -> None:
        now = time.monotonic()
        for key in keys:
            entries = self._logs.get(key)
            if entries is not None and member in entries:
                entries[member] = now

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._logs.clear()


def _frees_in(ascending: list[float], rate: Rate, now: float) -> float:
    # Room appears when the entry `limit` places from the newest leaves the window. One still
    # in flight (dated ahead) leaves no sooner than a full window from now.
    return min(ascending[len(ascending) - rate.limit], now) + rate.window - now


# The same algorithm as MemoryRateStore, as sorted sets scored by time. Waits go back as
# whole microseconds, since Redis truncates Lua numbers to integers.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local ttl = tonumber(ARGV[2])
local wait = 0
for i, key in ipairs(KEYS) do
    local limit, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    if count >= limit then
        local at = tonumber(redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')[2])
        wait = math.max(wait, math.min(at, now) + window - now)
    end
end
if wait > 0 then
    return math.ceil(wait * 1e6)
end
for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now + ttl, ARGV[1])
    redis.call('PEXPIRE', key, math.ceil((ttl + tonumber(ARGV[2 + 2 * i])) * 1000))
end
return 0
"""

_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, 'XX', now, ARGV[1])
end
"""


class RedisRateStore:
    """Logs in Redis, shared by every process that uses the same Redis and key prefix."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        self._admit = self._redis.register_script(_ADMIT)
        self._release = self._redis.register_script(_RELEASE)

    async def admit(self, keys: Sequence[str], rates: Sequence[Rate], member: str) -> float:
        args: list[str | float] = [member, IN_FLIGHT_TTL]
        for rate in rates:
            args += [rate.limit, rate.window]
        try:
            micros = await self._admit(keys=list(keys), args=args)
        except RedisError as exc:
            # No slot, no call: the worker waits for Redis rather than guess at what the others have sent.
            raise as_outage(REDIS, exc) from exc
        return int(micros) / 1e6

    async def release(self, keys: Sequence[str], member: str) -> None:
        await self._release(keys=list(keys), args=[member])

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()


class Slot:
    """One admitted call; release it when the call is over, however it ended."""

    def __init__(self, store: RateStore, keys: tuple[str, ...], member: str) -> None:
        self._store = store
        self._keys = keys
        self.member = member

    async def release(self) -> None:
        if not self._keys:
            return
        try:
            # Shielded: a cancelled call must still date its entries, or they hold their slots
            # for IN_FLIGHT_TTL.
            await asyncio.shield(self._store.release(self._keys, self.member))
        except Exception as exc:  # noqa: BLE001 - whatever the store raised, the slot must still be dated
            # Until dated, the entry holds its slot for IN_FLIGHT_TTL: after a Redis blip every call that
            # was out would keep a small limit full for minutes. Dating it later than the answer errs on
            # the safe side, so it is dated as soon as the store answers again.
            log.warning("could not release rate limit slot %s (%s); retrying in the background", self._keys, exc)
            _LATE_RELEASES.add(task := asyncio.ensure_future(self._release_late()))
            task.add_done_callback(_LATE_RELEASES.discard)

    async def _release_late(self) -> None:
        deadline = time.monotonic() + IN_FLIGHT_TTL
        delay = 0.25
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            try:
                await self._store.release(self._keys, self.member)
                return
            except Exception:  # noqa: BLE001 - still unreachable: the entry lapses on its own at the deadline
                delay = min(delay * 2, 5.0)


# Background releases in flight; referenced so they are not collected before they finish.
_LATE_RELEASES: set[asyncio.Future[None]] = set()


class RateLimiter:
    """Waits for a slot under every limit that applies to a (source, credential) pair.

    ``source_rates`` are account-wide per source label; ``credential_rates`` are what each
    credential of a source may do on its own. Keys hold the source label and credential id
    only, so every Beat process on the same store shares them, whatever its topic prefix.
    """

    def __init__(
        self,
        store: RateStore,
        *,
        source_rates: Mapping[str, Rate],
        credential_rates: Mapping[str, Rate],
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        self._store = store
        self.source_rates = dict(source_rates)
        self.credential_rates = dict(credential_rates)
        self._prefix = key_prefix
        self._queues: defaultdict[tuple[str, ...], asyncio.Lock] = defaultdict(asyncio.Lock)

    @classmethod
    def from_settings(cls, settings: Settings, *, key_prefix: str = KEY_PREFIX) -> RateLimiter:
        """The limits of ``configured_rates``, in Redis when ``redis_url`` is set, else in this process."""
        source_rates, credential_rates = configured_rates(settings)
        store: RateStore = RedisRateStore(settings.redis_url) if settings.redis_url else MemoryRateStore()
        return cls(store, source_rates=source_rates, credential_rates=credential_rates, key_prefix=key_prefix)

    def keys_for(self, source: str, credential_id: str | None) -> list[tuple[str, Rate]]:
        """The store keys and limits a call by this pair must fit under."""
        keys = []
        if (rate := self.source_rates.get(source)) is not None:
            keys.append((f"{self._prefix}source:{source}", rate))
        if credential_id is not None and (rate := self.credential_rates.get(source)) is not None:
            keys.append((f"{self._prefix}credential:{source}:{credential_id}", rate))
        return keys

    async def acquire(self, source: str, credential_id: str | None = None) -> Slot:
        """Wait until the call fits under every limit that applies, then take its slot."""
        limits = self.keys_for(source, credential_id)
        keys = tuple(key for key, _ in limits)
        slot = Slot(self._store, keys, uuid.uuid4().hex)
        if not keys:
            return slot
        rates = [rate for _, rate in limits]
        # Callers of one pair queue here in arrival order and only the first asks the
        # store; otherwise every waiter would wake at the same instant for one free slot.
        async with self._queues[keys]:
            while True:
                try:
                    wait = await self._store.admit(keys, rates, slot.member)
                except asyncio.CancelledError:
                    # Redis may have admitted the call before the cancellation reached us.
                    await slot.release()
                    raise
                if wait == 0:
                    return slot
                await asyncio.sleep(wait)

    async def ping(self) -> None:
        await self._store.ping()

    async def aclose(self) -> None:
        await self._store.aclose()


def configured_rates(settings: Settings) -> tuple[dict[str, Rate], dict[str, Rate]]:
    """(per source, per credential) limits this process applies: the legacy per-source defaults under
    ``source_rate_limits``, plus ``credential_rate_limits``. With Redis every process shares them whole.
    Without it each process counts alone, so each takes its share of ``rate_limit_processes``, and no
    provider sees more than its limit from all of them together."""
    _check_labels(settings.source_rate_limits, "source_rate_limits")
    _check_labels(settings.credential_rate_limits, "credential_rate_limits")
    source_rates = dict(DEFAULT_SOURCE_RATES)
    for label, spec in settings.source_rate_limits.items():
        if spec is None:
            source_rates.pop(label, None)
        else:
            source_rates[label] = _parse_for(label, spec)
    credential_rates = {label: _parse_for(label, spec) for label, spec in settings.credential_rate_limits.items()}
    sharers = 1 if settings.redis_url else settings.rate_limit_processes
    if sharers > 1:
        source_rates = {label: _share_for(label, rate, sharers) for label, rate in source_rates.items()}
        credential_rates = {label: _share_for(label, rate, sharers) for label, rate in credential_rates.items()}
    return source_rates, credential_rates


def _share_for(label: str, rate: Rate, processes: int) -> Rate:
    try:
        return rate.share(processes)
    except RateLimitConfigError as exc:
        raise RateLimitConfigError(f"{label}: {exc}") from None


def _check_labels(limits: Mapping[str, object], setting: str) -> None:
    known = set(SOURCES) | set(DEFAULT_SOURCE_RATES)
    unknown = sorted(set(limits) - known)
    if unknown:
        raise RateLimitConfigError(
            f"{setting}: unknown source label(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _parse_for(label: str, spec: str) -> Rate:
    try:
        return Rate.parse(spec)
    except RateLimitConfigError as exc:
        raise RateLimitConfigError(f"{label}: {exc}") from None
