"""Circuit breakers: skip a source (or one of its keys) that keeps failing, probe it after a cool-down.

A scope (``source:<label>``, or ``credential:<label>:<id>`` where the provider answers per key)
is CLOSED while calls go through. ``failures`` consecutive transient failures open it: the
crawler then skips it at once, with no call and no timeout waited out. Once the cool-down is
over, the first caller to ask gets the one probe (HALF_OPEN); everyone else keeps skipping
until the probe's answer closes the circuit or re-opens it for another cool-down. A probe that
never reports (its caller died or was cancelled) lapses after ``probe_lease`` seconds, and the
next caller probes.

The state lives in Redis when ``redis_url`` is set (each transition one Lua script, on Redis's
clock, so every process agrees on who probes), else in this process. Whoever makes a transition
logs it once and upserts it into Postgres (``source_breaker``) for ``beat sources``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.metrics import BREAKER_STATE, child

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "beat:cb:"
REDIS_TIMEOUT = 5.0


class State(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# beat_breaker_state's values (every process shows the transitions it made itself).
_GAUGE = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}


@dataclass(frozen=True, slots=True)
class Admission:
    """May a call go out? ``probe``: it is the one half-open call; ``wait``: when refused, seconds
    until a probe may go."""

    allowed: bool
    probe: bool = False
    wait: float = 0.0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    """A transition made by this caller: the new state, the failure count, seconds to the next probe."""

    state: State
    failures: int
    next_probe_in: float | None


class BreakerStore(Protocol):
    async def admit(self, scope: str, lease: float) -> Admission: ...

    async def succeeded(self, scope: str, probe: bool) -> Change | None: ...

    async def failed(self, scope: str, probe: bool, threshold: int, cooldown: float) -> Change | None: ...

    async def abandon(self, scope: str) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Circuit:
    state: State = State.CLOSED
    failures: int = 0
    next_probe: float = 0.0  # OPEN: when a probe may go; HALF_OPEN: when the probe's lease lapses


class MemoryBreakerStore:
    """One process's circuits, for running without Redis."""

    def __init__(self) -> None:
        self._circuits: dict[str, _Circuit] = {}

    async def admit(self, scope: str, lease: float) -> Admission:
        circuit = self._circuits.get(scope)
        if circuit is None or circuit.state is State.CLOSED:
            return Admission(True)
        now = time.monotonic()
        if now < circuit.next_probe:
            return Admission(False, wait=circuit.next_probe - now)
        circuit.state, circuit.next_probe = State.HALF_OPEN, now + lease
        return Admission(True, probe=True, failures=circuit.failures)

    async def succeeded(self, scope: str, probe: bool) -> Change | None:
        circuit = self._circuits.get(scope)
        if circuit is None:
            return None
        if circuit.state is State.CLOSED:
            circuit.failures = 0
            return None
        if not probe:  # a call let through before the circuit opened says little about now
            return None
        self._circuits[scope] = _Circuit()
        return Change(State.CLOSED, 0, None)

    async def failed(self, scope: str, probe: bool, threshold: int, cooldown: float) -> Change | None:
        circuit = self._circuits.setdefault(scope, _Circuit())
        circuit.failures += 1
        opens = (circuit.state is State.CLOSED and circuit.failures >= threshold) or (
            circuit.state is State.HALF_OPEN and probe
        )
        if not opens:
            return None
        circuit.state, circuit.next_probe = State.OPEN, time.monotonic() + cooldown
        return Change(State.OPEN, circuit.failures, cooldown)

    async def abandon(self, scope: str) -> None:
        circuit = self._circuits.get(scope)
        if circuit is not None and circuit.state is State.HALF_OPEN:
            circuit.next_probe = 0.0

    async def aclose(self) -> None:
        self._circuits.clear()


# The same state machine as MemoryBreakerStore, one hash per scope. Times are Redis's clock in
# seconds; waits go back as whole microseconds, since Redis truncates Lua numbers to integers.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
"""

_ADMIT = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then
    return {1, 0, 0, 0}
end
local next_probe = tonumber(redis.call('HGET', KEYS[1], 'next_probe'))
if now < next_probe then
    return {0, 0, math.ceil((next_probe - now) * 1e6), 0}
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'next_probe', now + tonumber(ARGV[1]))
return {1, 1, 0, tonumber(redis.call('HGET', KEYS[1], 'failures') or 0)}
"""
)

_SUCCEEDED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
    redis.call('HSET', KEYS[1], 'failures', 0)
    return 0
end
if ARGV[1] ~= '1' then
    return 0
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'next_probe', 0)
return 1
"""

_FAILED = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local opens = (state == 'closed' and failures >= tonumber(ARGV[2])) or (state == 'half_open' and ARGV[1] == '1')
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) * 1000))
if not opens then
    return {0, failures}
end
redis.call('HSET', KEYS[1], 'state', 'open', 'next_probe', now + tonumber(ARGV[3]))
return {1, failures}
"""
)

_ABANDON = """
if redis.call('HGET', KEYS[1], 'state') == 'half_open' then
    redis.call('HSET', KEYS[1], 'next_probe', 0)
end
"""

# A circuit nobody touches for this long forgets its failures (Redis drops the hash); an open one
# is always re-armed well before.
IDLE_TTL = 86400.0


class RedisBreakerStore:
    """Circuits in Redis, shared by every process that uses the same Redis and key prefix."""

    def __init__(self, url: str, key_prefix: str = KEY_PREFIX) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        self._prefix = key_prefix
        self._admit = self._redis.register_script(_ADMIT)
        self._succeeded = self._redis.register_script(_SUCCEEDED)
        self._failed = self._redis.register_script(_FAILED)
        self._abandon = self._redis.register_script(_ABANDON)

    def _key(self, scope: str) -> list[str]:
        return [self._prefix + scope]

    async def admit(self, scope: str, lease: float) -> Admission:
        allowed, probe, micros, failures = await self._admit(keys=self._key(scope), args=[lease])
        return Admission(bool(allowed), probe=bool(probe), wait=int(micros) / 1e6, failures=int(failures))

    async def succeeded(self, scope: str, probe: bool) -> Change | None:
        closed = await self._succeeded(keys=self._key(scope), args=["1" if probe else "0"])
        return Change(State.CLOSED, 0, None) if int(closed) else None

    async def failed(self, scope: str, probe: bool, threshold: int, cooldown: float) -> Change | None:
        opened, failures = await self._failed(
            keys=self._key(scope), args=["1" if probe else "0", threshold, cooldown, max(IDLE_TTL, cooldown * 2)]
        )
        return Change(State.OPEN, int(failures), cooldown) if int(opened) else None

    async def abandon(self, scope: str) -> None:
        await self._abandon(keys=self._key(scope), args=[])

    async def aclose(self) -> None:
        await self._redis.aclose()


_RECORD = """
INSERT INTO source_breaker (scope, source, credential_id, state, failures, opened_at, next_probe_at, last_error,
                            updated_at)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'open' THEN now() END,
        now() + make_interval(secs => $6::float8), $7, now())
ON CONFLICT (scope) DO UPDATE
SET state = EXCLUDED.state, failures = EXCLUDED.failures,
    opened_at = CASE WHEN EXCLUDED.state = 'open' THEN now() ELSE source_breaker.opened_at END,
    next_probe_at = EXCLUDED.next_probe_at, last_error = COALESCE(EXCLUDED.last_error, source_breaker.last_error),
    updated_at = now()
"""


def source_scope(source: str) -> str:
    return f"source:{source}"


def credential_scope(source: str, credential_id: str) -> str:
    return f"credential:{source}:{credential_id}"


class Breaker:
    """The circuits of every source and credential, with the configured thresholds.

    Store errors never stop a call: a breaker that cannot reach Redis lets calls through (the
    rate limiter, on the same Redis, refuses them on its own terms).
    """

    def __init__(
        self,
        store: BreakerStore,
        *,
        failures: int,
        cooldown: float,
        probe_lease: float | None = None,
        pool: asyncpg.Pool | None = None,
    ) -> None:
        self._store = store
        self.failures = failures
        self.cooldown = cooldown
        self._lease = probe_lease if probe_lease is not None else cooldown
        self._pool = pool

    @classmethod
    def from_settings(cls, settings: Settings, pool: asyncpg.Pool | None) -> Breaker:
        store: BreakerStore = RedisBreakerStore(settings.redis_url) if settings.redis_url else MemoryBreakerStore()
        # A probe that hangs holds its lease for the whole HTTP timeout before anyone else may probe.
        return cls(
            store,
            failures=settings.breaker_failures,
            cooldown=settings.breaker_cooldown,
            probe_lease=max(settings.breaker_cooldown, settings.http_timeout + 1.0),
            pool=pool,
        )

    async def admit(self, scope: str) -> Admission:
        try:
            admission = await self._store.admit(scope, self._lease)
        except RedisError:
            log.warning("circuit store unreachable; letting %s through", scope, exc_info=True)
            return Admission(True)
        if admission.probe:
            await self._record(scope, Change(State.HALF_OPEN, admission.failures, None), None)
        return admission

    async def succeeded(self, scope: str, *, probe: bool) -> None:
        try:
            change = await self._store.succeeded(scope, probe)
        except RedisError:
            log.warning("circuit store unreachable; %s success not recorded", scope, exc_info=True)
            return
        if change is not None:
            await self._record(scope, change, None)

    async def failed(self, scope: str, error: str, *, probe: bool, threshold: int | None = None) -> None:
        """Count a transient failure; ``threshold`` 1 opens a closed circuit now (the drift alarm's verdict)."""
        try:
            change = await self._store.failed(scope, probe, threshold or self.failures, self.cooldown)
        except RedisError:
            log.warning("circuit store unreachable; %s failure not recorded", scope, exc_info=True)
            return
        if change is not None:
            await self._record(scope, change, error)

    async def abandon(self, scope: str) -> None:
        """Hand back a probe that was admitted but never made (no credential to make it with)."""
        try:
            await self._store.abandon(scope)
        except RedisError:
            log.warning("circuit store unreachable; %s probe not handed back", scope, exc_info=True)

    async def _record(self, scope: str, change: Change, error: str | None) -> None:
        kind, source, *_ = scope.split(":", 2)
        if kind == "source":
            child(BREAKER_STATE, source).set(_GAUGE[change.state])
        if change.state is State.OPEN:
            log.warning(
                "circuit %s opened after %d failures (%s); next probe in %.3gs",
                scope,
                change.failures,
                error,
                change.next_probe_in,
            )
        elif change.state is State.HALF_OPEN:
            log.warning("circuit %s half-open: one probe call goes out", scope)
        else:
            log.warning("circuit %s closed: the probe succeeded", scope)
        if self._pool is None:
            return
        _, source, *rest = scope.split(":", 2)
        try:
            await self._pool.execute(
                _RECORD,
                scope,
                source,
                rest[0] if rest else None,
                change.state.value,
                change.failures,
                change.next_probe_in,
                error,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            # Postgres only shows the state; the live one is in the store, so a Postgres blink costs no call.
            log.warning("could not record circuit %s in source_breaker", scope, exc_info=True)

    async def aclose(self) -> None:
        await self._store.aclose()


async def recorded_states(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Every circuit's last recorded change (``source_breaker``), sources first; a scope never listed is closed."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT scope, source, credential_id, state, failures, opened_at, next_probe_at, last_error, updated_at, "
        "next_probe_at - now() AS probe_in FROM source_breaker ORDER BY source, credential_id NULLS FIRST, scope"
    )
    return rows
