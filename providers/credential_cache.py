"""Every credential in memory: picks answered without Postgres, changes followed through LISTEN/NOTIFY.

The cache loads the whole ``credential`` table, then follows it on a connection of its own that LISTENs on
``beat_credential`` (migration 0009 announces every change that decides whether a credential may be used):
a notice reloads that row. A full reload every ``refresh_interval`` picks up what no notice announces (the
bookkeeping other workers write), and one follows every reconnect, since notices were missed meanwhile.

Writes go behind the requests (``providers/credential_writes.py``): ``last_used_at`` stamps in batches,
and the policy's rests, strike resets and expiries (``write_behind``) in order. A request never waits for
Postgres. Once Postgres has been away longer than ``max_age``, though, a key disabled or refused elsewhere
may still look usable here: ``pick`` then raises ``DependencyDown`` and the worker pauses until the cache
is current again.

Selection is best-effort LRU: each process stamps the keys it picks, and learns other processes' stamps at
the next full reload. The rate limiter, not the selection, keeps a credential under its provider's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.outage import POSTGRES, DependencyDown, is_outage
from providers.credential_writes import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    ROUND_TRIP_TIMEOUT,
    CredentialWrites,
)
from providers.http import Credential

log = logging.getLogger(__name__)

CHANNEL = "beat_credential"

# A partition that drops packets without a reset leaves the listener looking connected while notices go
# missing; a round trip this often tells.
_HEARTBEAT = 5.0
# How long closing waits for queued writes to reach Postgres.
_CLOSE_TIMEOUT = 5.0

_LOAD_ALL = """
SELECT id, source, credentials, handle, enabled, data_access_expired, quota_strikes, last_used_at,
       EXTRACT(EPOCH FROM disabled_till - now())::float8 AS rest_in
FROM credential
"""

_LOAD_ACCOUNT = """
SELECT id, source, credentials, handle, enabled, data_access_expired, quota_strikes, last_used_at,
       EXTRACT(EPOCH FROM disabled_till - now())::float8 AS rest_in
FROM credential
WHERE source = $1 AND handle = $2
"""
# How often a pick that finds no usable credential for an account may read that account's rows itself.
RECHECK_EVERY = 1.0

_LOAD_SOME = """
SELECT id, source, credentials, handle, enabled, data_access_expired, quota_strikes, last_used_at,
       EXTRACT(EPOCH FROM disabled_till - now())::float8 AS rest_in
FROM credential
WHERE id = ANY($1::bigint[])
"""


@dataclass(frozen=True, slots=True)
class Availability:
    """``usable``: enabled credentials with a live token; ``rest_in``: seconds until the first resting one
    is free again, None when none rests."""

    usable: int
    rest_in: float | None


@dataclass(slots=True)
class CachedCredential:
    """One ``credential`` row as this process knows it. ``rest_until`` is on this process's monotonic
    clock (converted from ``disabled_till`` by Postgres's own clock), so neither clock needs to agree with
    the other."""

    id: int
    source: str
    secrets: dict[str, Any] = field(repr=False)
    handle: str | None
    enabled: bool
    data_access_expired: bool
    quota_strikes: int
    rest_until: float | None
    last_used_at: datetime | None

    def is_usable(self) -> bool:
        """Enabled with a live token, resting or not."""
        return self.enabled and not self.data_access_expired

    def rests_at(self, now: float) -> bool:
        return self.rest_until is not None and self.rest_until >= now

    def as_credential(self) -> Credential:
        return Credential(
            id=str(self.id),
            source=self.source,
            secrets=self.secrets,
            handle=self.handle,
            quota_strikes=self.quota_strikes,
        )


class CredentialCache:
    """Build with ``await CredentialCache.open(...)``; ``aclose()`` when done."""

    def __init__(self, pool: asyncpg.Pool, database_url: str, *, refresh_interval: float, max_age: float) -> None:
        self._database_url = database_url
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._by_id: dict[int, CachedCredential] = {}
        self._by_source: dict[str, dict[int, CachedCredential]] = {}
        # Following the table.
        self._listener: asyncpg.Connection | None = None
        self._connected = False
        self._confirmed_at = 0.0  # monotonic: the last moment the cache was known current
        self._down_since: float | None = None
        self._changed: set[int] = set()
        self._news = asyncio.Event()  # a notice arrived, or the listener's connection ended
        self._follower: asyncio.Task[None] | None = None
        self._pool = pool
        self._writes = CredentialWrites(pool, self._settled)
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._rechecked: dict[tuple[str, str], float] = {}

    @classmethod
    async def open(
        cls, pool: asyncpg.Pool, database_url: str, *, refresh_interval: float, max_age: float
    ) -> CredentialCache:
        """Load every credential, waiting for Postgres as long as it takes (a worker cannot start without
        having seen its credentials once), then follow the table."""
        cache = cls(pool, database_url, refresh_interval=refresh_interval, max_age=max_age)
        delay = BACKOFF_FIRST
        while True:
            try:
                await cache._connect()
                break
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if cache._down_since is None:
                    cache._down_since = time.monotonic()
                    log.warning(
                        "Postgres unreachable (%s: %s): waiting for it to load the credentials", type(exc).__name__, exc
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        cache._reachable_again()
        cache._follower = asyncio.create_task(cache._follow(), name="credential-cache-follow")
        cache._writes.start()
        return cache

    # reading

    async def pick(self, source: str, handle: str | None = None, exclude: Sequence[str] = ()) -> Credential | None:
        """The least recently used usable credential, other than those in ``exclude`` (ids tried already)."""
        picked = self._pick(source, handle, exclude)
        if picked is None and handle is not None and await self._recheck(source, handle):
            picked = self._pick(source, handle, exclude)
        return picked

    async def _recheck(self, source: str, handle: str) -> bool:
        """Read one account's credentials straight from Postgres, at most once a second per account; whether it
        did. A token stored a moment ago (the facade's insights routes store one, then refresh at once) must not
        fail the refresh because its notice is still on the way."""
        now = time.monotonic()
        if now - self._rechecked.get((source, handle), -RECHECK_EVERY) < RECHECK_EVERY:
            return False
        self._rechecked[source, handle] = now
        try:
            rows = await self._pool.fetch(_LOAD_ACCOUNT, source, handle, timeout=ROUND_TRIP_TIMEOUT)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return False  # what the cache holds is the answer until Postgres is back
        now = time.monotonic()
        for row in rows:
            self._put(_entry(row, now))
        return bool(rows)

    def _pick(self, source: str, handle: str | None, exclude: Sequence[str]) -> Credential | None:
        self._check_current()
        now = time.monotonic()
        excluded = {int(i) for i in exclude}
        best: CachedCredential | None = None
        for entry in self._candidates(source, handle):
            if entry.id in excluded or not entry.is_usable() or entry.rests_at(now):
                continue
            if best is None or _lru_order(entry) < _lru_order(best):
                best = entry
        if best is None:
            return None
        best.last_used_at = self._stamp()
        self._writes.stamp(best.id, best.last_used_at)
        return best.as_credential()

    async def availability(self, source: str, handle: str | None = None) -> Availability:
        """Why a source has no usable credential: none usable at all, or every usable one resting (until
        when)."""
        self._check_current()
        now = time.monotonic()
        usable = [entry for entry in self._candidates(source, handle) if entry.is_usable()]
        rests = [entry.rest_until - now for entry in usable if entry.rest_until is not None and entry.rests_at(now)]
        return Availability(usable=len(usable), rest_in=max(0.0, min(rests)) if rests else None)

    def state_counts(self) -> dict[tuple[str, str], int]:
        """Enabled credentials by (source, state): ``usable``, ``resting`` or ``expired`` (for beat_credentials)."""
        now = time.monotonic()
        counts = {(source, state): 0 for source in self._by_source for state in ("usable", "resting", "expired")}
        for cached in self._by_id.values():
            if not cached.enabled:
                continue
            state = "expired" if cached.data_access_expired else "resting" if cached.rests_at(now) else "usable"
            counts[cached.source, state] += 1
        return counts

    def state(self, credential_id: str) -> CachedCredential | None:
        """The cached state of one credential, for the policy to change; None once it is deleted."""
        return self._by_id.get(int(credential_id))

    def _candidates(self, source: str, handle: str | None) -> Iterable[CachedCredential]:
        entries = self._by_source.get(source, {}).values()
        return entries if handle is None else (entry for entry in entries if entry.handle == handle)

    def _check_current(self) -> None:
        if self._connected:
            return
        age = time.monotonic() - self._confirmed_at
        if age > self._max_age:
            raise DependencyDown(
                POSTGRES,
                f"the cached credentials were last known current {age:.0f}s ago (the limit is {self._max_age:.0f}s)",
            )

    def _stamp(self) -> datetime:
        # Strictly increasing, so two picks in one clock tick still rotate.
        now = datetime.now(UTC)
        self._last_stamp = now if now > self._last_stamp else self._last_stamp + timedelta(microseconds=1)
        return self._last_stamp

    # writing

    def write_behind(self, credential_id: int, statement: str, *args: Any) -> None:
        """Send ``statement`` to Postgres after every change queued before it, retried through an outage,
        without waiting (see ``CredentialWrites.change``). The caller has already changed the cached state.
        Once it is the credential's last queued change, the columns it RETURNs (``rest_in``,
        ``quota_strikes``, ``data_access_expired``) replace the cached ones: Postgres decides between
        processes."""
        self._writes.change(credential_id, statement, *args)

    async def written(self) -> None:
        """Return once every change queued so far has reached Postgres (or was refused by it)."""
        await self._writes.sent()

    def _settled(self, credential_id: int, row: asyncpg.Record | None) -> None:
        entry = self._by_id.get(credential_id)
        if entry is None or row is None:
            return
        if "rest_in" in row:
            entry.rest_until = None if row["rest_in"] is None else time.monotonic() + row["rest_in"]
        if "quota_strikes" in row:
            entry.quota_strikes = row["quota_strikes"]
        if "data_access_expired" in row:
            entry.data_access_expired = row["data_access_expired"]

    # following the table

    async def _connect(self) -> None:
        """Listen first, then load: a change landing between the two is announced as well as loaded."""
        async with asyncio.timeout(ROUND_TRIP_TIMEOUT):
            connection = await asyncpg.connect(self._database_url)
        # Whatever was announced before is in the load below.
        self._changed.clear()
        try:
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT):
                await connection.add_listener(CHANNEL, self._notice)
                rows = await connection.fetch(_LOAD_ALL)
        except BaseException:
            connection.terminate()
            raise
        connection.add_termination_listener(self._listener_closed)
        self._listener = connection
        self._replace_all(rows)
        self._connected = True
        self._confirmed_at = time.monotonic()

    def _notice(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self._changed.add(int(payload))
        self._news.set()

    def _listener_closed(self, connection: object) -> None:
        if connection is self._listener and self._connected:
            # The connection carried every notice up to its end: the cache was current until now.
            self._connected = False
            self._confirmed_at = time.monotonic()
            self._news.set()

    async def _follow(self) -> None:
        delay = BACKOFF_FIRST
        refresh_at = time.monotonic() + self._refresh_interval
        while True:
            try:
                if self._listener is None:
                    await self._connect()
                    self._reachable_again()
                    delay = BACKOFF_FIRST
                    refresh_at = time.monotonic() + self._refresh_interval
                if not self._changed:
                    wake_at = min(refresh_at, self._confirmed_at + _HEARTBEAT)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._news.wait(), max(0.0, wake_at - time.monotonic()))
                self._news.clear()
                if time.monotonic() >= refresh_at:
                    await self._reload_all()
                    refresh_at = time.monotonic() + self._refresh_interval
                else:
                    await self._reload_changed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("following the credential table failed; reconnecting")
                self._lost(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _reload_all(self) -> None:
        connection = self._live_listener()
        rows = await connection.fetch(_LOAD_ALL, timeout=ROUND_TRIP_TIMEOUT)
        self._replace_all(rows)
        self._confirmed_at = time.monotonic()

    async def _reload_changed(self) -> None:
        """Reload the rows announced since the last time, or only check the connection when none was."""
        connection = self._live_listener()
        ids, self._changed = self._changed, set()
        if ids:
            rows = await connection.fetch(_LOAD_SOME, list(ids), timeout=ROUND_TRIP_TIMEOUT)
            now = time.monotonic()
            for row in rows:
                self._put(_entry(row, now))
            for deleted in ids - {row["id"] for row in rows}:
                self._drop(deleted)
        else:
            await connection.fetchval("SELECT 1", timeout=ROUND_TRIP_TIMEOUT)
        self._confirmed_at = time.monotonic()

    def _live_listener(self) -> asyncpg.Connection:
        if self._listener is None or self._listener.is_closed():
            raise ConnectionError("the credential listener's connection is closed")
        return self._listener

    def _lost(self, exc: Exception) -> None:
        if self._listener is not None:
            self._connected = False
            self._listener.terminate()
            self._listener = None
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "Postgres unreachable (%s: %s): credentials are picked from memory for up to %.0fs",
                type(exc).__name__,
                exc,
                self._max_age,
            )

    def _reachable_again(self) -> None:
        if self._down_since is not None:
            log.info("Postgres reachable again after %.1fs: credentials reloaded", time.monotonic() - self._down_since)
            self._down_since = None

    def _replace_all(self, rows: Sequence[asyncpg.Record]) -> None:
        now = time.monotonic()
        listed = {row["id"] for row in rows}
        for gone in set(self._by_id) - listed:
            self._drop(gone)
        for row in rows:
            self._put(_entry(row, now))

    def _put(self, fresh: CachedCredential) -> None:
        """Take a row from Postgres, keeping what this process knows better: its own later stamp, and the
        state its queued writes are about to store."""
        old = self._by_id.get(fresh.id)
        if old is not None:
            if old.last_used_at is not None and (fresh.last_used_at is None or old.last_used_at > fresh.last_used_at):
                fresh.last_used_at = old.last_used_at
            if self._writes.is_pending(fresh.id):
                fresh.rest_until = old.rest_until
                fresh.quota_strikes = old.quota_strikes
                fresh.data_access_expired = old.data_access_expired
            if old.source != fresh.source:
                self._by_source[old.source].pop(old.id, None)
        self._by_id[fresh.id] = fresh
        self._by_source.setdefault(fresh.source, {})[fresh.id] = fresh

    def _drop(self, credential_id: int) -> None:
        old = self._by_id.pop(credential_id, None)
        if old is not None:
            self._by_source[old.source].pop(credential_id, None)
        self._writes.forget(credential_id)

    async def aclose(self) -> None:
        """Stop following; send what is queued (for a few seconds at most: Postgres may be away)."""
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        await self._writes.aclose(_CLOSE_TIMEOUT)
        if self._listener is not None:
            self._connected = False
            self._listener.terminate()
            self._listener = None


def _entry(row: asyncpg.Record, now: float) -> CachedCredential:
    secrets = row["credentials"]
    if isinstance(secrets, str):
        secrets = json.loads(secrets)
    rest_in = row["rest_in"]
    return CachedCredential(
        id=row["id"],
        source=row["source"],
        secrets=secrets,
        handle=row["handle"],
        enabled=row["enabled"],
        data_access_expired=row["data_access_expired"],
        quota_strikes=row["quota_strikes"],
        rest_until=None if rest_in is None else now + rest_in,
        last_used_at=row["last_used_at"],
    )


def _lru_order(entry: CachedCredential) -> tuple[bool, datetime, int]:
    # Never used first, then the oldest stamp, then the id.
    return (entry.last_used_at is not None, entry.last_used_at or datetime.min.replace(tzinfo=UTC), entry.id)
