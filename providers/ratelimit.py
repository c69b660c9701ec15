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

Priority (``beat.scrape.<flow>.priority``): a source's next free slot goes to the highest-priority caller
waiting for it, in any process. Each limiter serves its own callers of one key set highest priority first
(then in arrival order), and only the first of them asks the store; a caller the store turns away leaves a
*waiting entry* (its priority, until shortly after it will ask again) under every key, and the store admits
no caller of a lower priority while another queue's entry waits. A process that dies leaves an entry that
lapses within seconds of its next ask. Bulk callers (priority at or below ``Settings.bulk_priority``) are
also *paced*: one admission per window/limit seconds, so a saturated limit frees a slot every window/limit
seconds instead of a whole window's burst at once, and an on-demand call waits for the next one, not for the
next window. Pacing costs bulk nothing over a window; it only spreads its bursts.

The ``limits`` library was measured first and not kept: its moving window keeps bare
caller-clock timestamps that cannot be re-dated, admits one limit at a time, and takes
whole-second windows only (Redis's EXPIRE refuses 30.5), so neither re-dating nor a
fractional margin fits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
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
# How long a waiting entry outlives the moment its caller said it would ask again: room for a busy event
# loop and a store round trip. A crashed waiter holds lower priorities back at most this much longer.
WAITER_GRACE = 2.0
# How soon a caller held back by a higher-priority waiter, with room under the limit, asks again: the
# waiter is about to take that room.
HELD_BACK_POLL = 0.05

# The priority of the request whose provider calls this task makes: the worker sets it around each
# request (``calls_at``), so every call the request's flow makes, through any client, carries it.
_CALL_PRIORITY: ContextVar[int | None] = ContextVar("beat_call_priority", default=None)


@contextlib.contextmanager
def calls_at(priority: int) -> Iterator[None]:
    """Provider calls made inside (and in tasks started inside) wait for slots at ``priority``."""
    token = _CALL_PRIORITY.set(priority)
    try:
        yield
    finally:
        _CALL_PRIORITY.reset(token)


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


@dataclass(frozen=True, slots=True)
class Turn:
    """Who asks the store for a slot: the caller's priority, whether it is paced (bulk), the limiter queue it
    asks for (one waiting entry per queue and key), and the priority of that queue's next caller, which
    keeps the queue's place once this one is admitted (None: nobody is behind it)."""

    priority: int = 0
    paced: bool = False
    queue: str = ""
    next_priority: int | None = None


class RateStore(Protocol):
    """Sliding logs of call entries, one per key; admission and release are each atomic."""

    async def admit(self, keys: Sequence[str], rates: Sequence[Rate], member: str, turn: Turn) -> float:
        """Log ``member`` as in flight under every key and return 0, or return the seconds until all of them
        have room (and no other queue of a higher priority waits), logging nothing but ``turn``'s waiting
        entry."""

    async def release(self, keys: Sequence[str], member: str) -> None:
        """Date ``member``'s entries now."""

    async def withdraw(self, keys: Sequence[str], queue: str) -> None:
        """Remove ``queue``'s waiting entries (nobody of it waits any more)."""

    async def ping(self) -> None:
        """Return once the store answers; raise while it does not."""

    async def aclose(self) -> None: ...


class MemoryRateStore:
    """One process's logs, for running without Redis."""

    def __init__(self) -> None:
        self._logs: defaultdict[str, dict[str, float]] = defaultdict(dict)
        # Per key: queue -> (its priority, until when its entry holds).
        self._waiting: defaultdict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
        # Per key: the earliest a paced call may be admitted.
        self._next: dict[str, float] = {}

    async def admit(self, keys: Sequence[str], rates: Sequence[Rate], member: str, turn: Turn) -> float:
        now = time.monotonic()
        wait = 0.0
        held_back = False
        for key, rate in zip(keys, rates, strict=True):
            entries = self._logs[key]
            horizon = now - rate.window
            for gone in [m for m, at in entries.items() if at <= horizon]:
                del entries[gone]
            if len(entries) >= rate.limit:
                wait = max(wait, _frees_in(sorted(entries.values()), rate, now))
            if turn.paced and key in self._next:
                wait = max(wait, self._next[key] - now)
            waiting = self._waiting[key]
            for queue in [q for q, (_, until) in waiting.items() if until <= now]:
                del waiting[queue]
            held_back = held_back or any(q != turn.queue and p > turn.priority for q, (p, _) in waiting.items())
        if wait <= 0 and not held_back:
            for key, rate in zip(keys, rates, strict=True):
                self._logs[key][member] = now + IN_FLIGHT_TTL
                self._next[key] = _next_paced(self._next.get(key, now), now, rate)
                if turn.next_priority is None:
                    self._waiting[key].pop(turn.queue, None)
                else:
                    self._waiting[key][turn.queue] = (turn.next_priority, now + WAITER_GRACE)
            return 0.0
        wait = max(wait, HELD_BACK_POLL)
        for key in keys:
            self._waiting[key][turn.queue] = (turn.priority, now + wait + WAITER_GRACE)
        return wait

    async def withdraw(self, keys: Sequence[str], queue: str) -> None:
        """Remove ``queue``'s waiting entries: it has nobody waiting any more."""
        for key in keys:
            self._waiting[key].pop(queue, None)

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
        self._waiting.clear()
        self._next.clear()


def _next_paced(scheduled: float, now: float, rate: Rate) -> float:
    # One spacing after the schedule, so a caller that wakes a little late does not push every later one
    # back (the pace would drift below the limit); after an idle spell, from now.
    spacing = rate.window / rate.limit
    return max(scheduled, now - spacing / 2) + spacing


def _frees_in(ascending: list[float], rate: Rate, now: float) -> float:
    # Room appears when the entry `limit` places from the newest leaves the window. One still
    # in flight (dated ahead) leaves no sooner than a full window from now.
    return min(ascending[len(ascending) - rate.limit], now) + rate.window - now


# The same algorithm as MemoryRateStore, as sorted sets scored by time. Waits go back as
# whole microseconds, since Redis truncates Lua numbers to integers. Beside each log, a hash of waiting
# entries (queue -> "priority until") and the earliest a paced call may be admitted.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local member, ttl = ARGV[1], tonumber(ARGV[2])
local priority, paced, queue, next_priority = tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5], ARGV[6]
local grace, poll = tonumber(ARGV[7]), tonumber(ARGV[8])
local wait = 0
local held_back = false
for i, key in ipairs(KEYS) do
    local limit, window = tonumber(ARGV[7 + 2 * i]), tonumber(ARGV[8 + 2 * i])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    if count >= limit then
        local at = tonumber(redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')[2])
        wait = math.max(wait, math.min(at, now) + window - now)
    end
    if paced then
        local scheduled = tonumber(redis.call('GET', key .. ':next'))
        if scheduled then
            wait = math.max(wait, scheduled - now)
        end
    end
    local waiting = redis.call('HGETALL', key .. ':waiting')
    for j = 1, #waiting, 2 do
        local p, untl = string.match(waiting[j + 1], '(%S+) (%S+)')
        if tonumber(untl) <= now then
            redis.call('HDEL', key .. ':waiting', waiting[j])
        elseif waiting[j] ~= queue and tonumber(p) > priority then
            held_back = true
        end
    end
end
local function keep_entry(key, p, untl)
    local wkey = key .. ':waiting'
    redis.call('HSET', wkey, queue, p .. ' ' .. untl)
    local ms = math.ceil((untl - now) * 1000)
    if redis.call('PTTL', wkey) < ms then
        redis.call('PEXPIRE', wkey, ms)
    end
end
if wait <= 0 and not held_back then
    for i, key in ipairs(KEYS) do
        local limit, window = tonumber(ARGV[7 + 2 * i]), tonumber(ARGV[8 + 2 * i])
        local spacing = window / limit
        local scheduled = tonumber(redis.call('GET', key .. ':next')) or now
        redis.call('ZADD', key, now + ttl, member)
        redis.call('PEXPIRE', key, math.ceil((ttl + window) * 1000))
        local following = math.max(scheduled, now - spacing / 2) + spacing
        redis.call('SET', key .. ':next', following, 'PX', math.ceil(window * 1000))
        if next_priority == '' then
            redis.call('HDEL', key .. ':waiting', queue)
        else
            keep_entry(key, next_priority, now + grace)
        end
    end
    return 0
end
wait = math.max(wait, poll)
for _, key in ipairs(KEYS) do
    keep_entry(key, priority, now + wait + grace)
end
return math.ceil(wait * 1e6)
"""

_WITHDRAW = """
for _, key in ipairs(KEYS) do
    redis.call('HDEL', key .. ':waiting', ARGV[1])
end
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
        self._withdraw = self._redis.register_script(_WITHDRAW)

    async def admit(self, keys: Sequence[str], rates: Sequence[Rate], member: str, turn: Turn) -> float:
        args: list[str | float] = [
            member,
            IN_FLIGHT_TTL,
            turn.priority,
            "1" if turn.paced else "0",
            turn.queue,
            "" if turn.next_priority is None else turn.next_priority,
            WAITER_GRACE,
            HELD_BACK_POLL,
        ]
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

    async def withdraw(self, keys: Sequence[str], queue: str) -> None:
        await self._withdraw(keys=list(keys), args=[queue])

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


@dataclass(order=True)
class _Waiter:
    # Highest priority first, then first come.
    rank: tuple[int, int]
    turn: asyncio.Event = field(compare=False, default_factory=asyncio.Event)


class _Queue:
    """One limiter's callers of one key set, served highest priority first, then in arrival order; only the
    first asks the store, so they do not all wake for one free slot."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self._heap: list[_Waiter] = []
        self._arrivals = itertools.count()

    def join(self, priority: int) -> _Waiter:
        waiter = _Waiter((-priority, next(self._arrivals)))
        heapq.heappush(self._heap, waiter)
        return waiter

    def is_first(self, waiter: _Waiter) -> bool:
        return self._heap[0] is waiter

    def next_priority(self) -> int | None:
        """The priority of the caller behind the first one."""
        behind = heapq.nsmallest(2, self._heap)[1:]
        return -behind[0].rank[0] if behind else None

    def leave(self, waiter: _Waiter) -> bool:
        """Take ``waiter`` out and wake whoever is first now; whether anyone is left."""
        self._heap.remove(waiter)
        heapq.heapify(self._heap)
        if self._heap:
            self._heap[0].turn.set()
        return bool(self._heap)


class RateLimiter:
    """Waits for a slot under every limit that applies to a (source, credential) pair.

    ``source_rates`` are account-wide per source label; ``credential_rates`` are what each
    credential of a source may do on its own. Keys hold the source label and credential id
    only, so every Beat process on the same store shares them, whatever its topic prefix.
    Callers at or below ``paced_up_to`` (the bulk level) are paced; None paces nobody.
    """

    def __init__(
        self,
        store: RateStore,
        *,
        source_rates: Mapping[str, Rate],
        credential_rates: Mapping[str, Rate],
        key_prefix: str = KEY_PREFIX,
        paced_up_to: int | None = None,
    ) -> None:
        self._store = store
        self.source_rates = dict(source_rates)
        self.credential_rates = dict(credential_rates)
        self._prefix = key_prefix
        self._paced_up_to = paced_up_to
        self._queues: defaultdict[tuple[str, ...], _Queue] = defaultdict(_Queue)

    @classmethod
    def from_settings(cls, settings: Settings, *, key_prefix: str = KEY_PREFIX) -> RateLimiter:
        """The limits of ``configured_rates``, in Redis when ``redis_url`` is set, else in this process; bulk
        paced unless ``bulk_pacing`` is off."""
        source_rates, credential_rates = configured_rates(settings)
        store: RateStore = RedisRateStore(settings.redis_url) if settings.redis_url else MemoryRateStore()
        return cls(
            store,
            source_rates=source_rates,
            credential_rates=credential_rates,
            key_prefix=key_prefix,
            paced_up_to=settings.bulk_priority if settings.bulk_pacing else None,
        )

    def keys_for(self, source: str, credential_id: str | None) -> list[tuple[str, Rate]]:
        """The store keys and limits a call by this pair must fit under."""
        keys = []
        if (rate := self.source_rates.get(source)) is not None:
            keys.append((f"{self._prefix}source:{source}", rate))
        if credential_id is not None and (rate := self.credential_rates.get(source)) is not None:
            keys.append((f"{self._prefix}credential:{source}:{credential_id}", rate))
        return keys

    async def acquire(self, source: str, credential_id: str | None = None, *, priority: int | None = None) -> Slot:
        """Wait until the call fits under every limit that applies and no caller of a higher priority waits for
        them, then take its slot. ``priority`` defaults to the request's the task works for (``calls_at``),
        else bulk."""
        limits = self.keys_for(source, credential_id)
        keys = tuple(key for key, _ in limits)
        slot = Slot(self._store, keys, uuid.uuid4().hex)
        if not keys:
            return slot
        if priority is None:
            priority = _CALL_PRIORITY.get()
        if priority is None:
            priority = self._paced_up_to if self._paced_up_to is not None else 0
        paced = self._paced_up_to is not None and priority <= self._paced_up_to
        rates = [rate for _, rate in limits]
        queue = self._queues[keys]
        waiter = queue.join(priority)
        admitted = False
        try:
            while True:
                if not queue.is_first(waiter):
                    waiter.turn.clear()
                    await waiter.turn.wait()
                    continue
                turn = Turn(priority, paced, queue.id, queue.next_priority())
                try:
                    wait = await self._store.admit(keys, rates, slot.member, turn)
                except asyncio.CancelledError:
                    # Redis may have admitted the call before the cancellation reached us.
                    await slot.release()
                    raise
                if wait == 0:
                    admitted = True
                    return slot
                # A caller of a higher priority that joins meanwhile asks at once; this one looks again when
                # its wait is over, or when it is first again.
                waiter.turn.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.turn.wait(), wait)
        finally:
            if not queue.leave(waiter) and not admitted:
                await self._withdraw(keys, queue.id)

    async def _withdraw(self, keys: tuple[str, ...], queue: str) -> None:
        # Best effort: an entry left behind lapses on its own within WAITER_GRACE of its caller's next ask.
        try:
            await asyncio.shield(self._store.withdraw(keys, queue))
        except Exception as exc:  # noqa: BLE001 - the entry lapses anyway
            log.debug("could not withdraw a waiting entry for %s: %s", keys, exc)

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
