"""Writes to the ``credential`` table behind the requests, so no request waits for Postgres.

Two kinds: ``last_used_at`` stamps, merged per credential and sent in one UPDATE about once a second;
and the policy's changes (rests, strike resets, expiries), sent one by one in the order they were made.
Both are retried through an outage, with the outage logged once at its start and once at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from core.outage import is_outage

log = logging.getLogger(__name__)

# One round trip longer than this counts as Postgres being away.
ROUND_TRIP_TIMEOUT = 5.0
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0
_STAMP_INTERVAL = 1.0

# Another process may have stamped a key later than this one did.
_STAMP = """
UPDATE credential AS c SET last_used_at = GREATEST(c.last_used_at, v.used_at)
FROM unnest($1::bigint[], $2::timestamptz[]) AS v(id, used_at)
WHERE c.id = v.id
"""


class _SinceQueued:
    """Bound, when a change is sent, to the seconds it waited in the queue: a statement can date what it
    records to when it happened rather than to when Postgres came back."""


SINCE_QUEUED = _SinceQueued()

# Called with a credential's id and what its last queued change RETURNed (None: no row came back).
Settled = Callable[[int, asyncpg.Record | None], None]


@dataclass(frozen=True, slots=True)
class _Change:
    credential_id: int
    statement: str
    args: tuple[Any, ...]
    queued_at: float

    def bound_args(self) -> tuple[Any, ...]:
        waited = time.monotonic() - self.queued_at
        return tuple(waited if arg is SINCE_QUEUED else arg for arg in self.args)


class CredentialWrites:
    """``start()`` once, ``aclose()`` when done."""

    def __init__(self, pool: asyncpg.Pool, settled: Settled) -> None:
        self._pool = pool
        self._settled = settled
        self._changes: deque[_Change] = deque()
        self._queued: dict[int, int] = {}  # credential id -> its changes not yet sent
        self._stamps: dict[int, datetime] = {}
        self._wanted = asyncio.Event()
        self._sent = asyncio.Event()
        self._sent.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="credential-writes")

    def change(self, credential_id: int, statement: str, *args: Any) -> None:
        """Queue ``statement`` after every change queued before it. ``SINCE_QUEUED`` among ``args`` is
        bound to the seconds it waited."""
        self._changes.append(_Change(credential_id, statement, args, time.monotonic()))
        self._queued[credential_id] = self._queued.get(credential_id, 0) + 1
        self._sent.clear()
        self._wanted.set()

    def stamp(self, credential_id: int, used_at: datetime) -> None:
        self._stamps[credential_id] = used_at

    def forget(self, credential_id: int) -> None:
        """The credential is deleted: its stamp has nothing left to update."""
        self._stamps.pop(credential_id, None)

    def is_pending(self, credential_id: int) -> bool:
        """Whether a change of this credential is still on its way to Postgres."""
        return credential_id in self._queued

    async def sent(self) -> None:
        """Return once every change queued so far has reached Postgres (or was refused by it)."""
        await self._sent.wait()

    async def _run(self) -> None:
        stamp_at = time.monotonic() + _STAMP_INTERVAL
        while True:
            if not self._changes and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wanted.wait(), max(0.0, stamp_at - time.monotonic()))
                self._wanted.clear()
            while self._changes:
                change = self._changes[0]
                row = await self._persist(
                    "a credential change", self._pool.fetchrow, change.statement, *change.bound_args()
                )
                self._changes.popleft()
                self._done(change.credential_id, row)
            self._sent.set()
            if self._closing or time.monotonic() >= stamp_at:
                stamps, self._stamps = self._stamps, {}
                if stamps:
                    await self._persist(
                        "last_used_at stamps", self._pool.execute, _STAMP, list(stamps), list(stamps.values())
                    )
                stamp_at = time.monotonic() + _STAMP_INTERVAL
            if self._closing and not self._changes:
                return

    async def _persist(self, what: str, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``call(*args)`` against Postgres, retried until Postgres answers; None when it refuses for good."""
        delay, down_since = BACKOFF_FIRST, None
        while True:
            try:
                async with asyncio.timeout(ROUND_TRIP_TIMEOUT):
                    result = await call(*args)
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("Postgres refused %s: dropped", what)
                    return None
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("writing %s waits for Postgres (%s: %s)", what, type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if down_since is not None:
                log.info("%s reached Postgres after %.1fs", what, time.monotonic() - down_since)
            return result

    def _done(self, credential_id: int, row: asyncpg.Record | None) -> None:
        left = self._queued[credential_id] - 1
        if left:
            self._queued[credential_id] = left
            return
        del self._queued[credential_id]
        self._settled(credential_id, row)

    async def aclose(self, timeout: float) -> None:
        """Send what is queued, for ``timeout`` seconds at most (Postgres may be away)."""
        if self._task is None:
            return
        self._closing = True
        self._wanted.set()
        try:
            await asyncio.wait_for(self._task, timeout)
        except TimeoutError:
            log.warning(
                "%d credential changes and %d last_used_at stamps were not saved: Postgres did not answer",
                len(self._changes),
                len(self._stamps),
            )
        except Exception:
            log.exception("the credential writer failed")
