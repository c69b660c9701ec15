"""What each provider call costs, and the spend counted per source, credential, flow and UTC day.

A cost is configuration (``BEAT_SOURCE_COSTS``): per source label a number, or ``{operation: cost}`` with
``"*"`` for the operations not named. The operation of a call is the last segment of its path (the Data
API's ``search``, ``channels``, …). Unset, a call costs 0, except the YouTube Data API (``ytapitoken``, and
``ytapi`` when it goes out under that label), whose defaults are Google's published quota units for the
operations Beat calls: a list costs 1 unit, ``search.list`` 100.

Spend is kept in memory and added to ``provider_spend`` in one statement about once a second (like the
credentials' ``last_used_at`` stamps), so no call waits for Postgres; what a process could not write when
it stops is logged, not retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import date
from typing import TYPE_CHECKING

import asyncpg

from topics.models import utcnow

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 1.0
ANY_OPERATION = "*"
# Google's quota units per call (developers.google.com/youtube/v3/determine_quota_cost) for the list
# operations Beat calls; every other list is 1 too.
DATA_API_UNITS: dict[str, float] = {
    "search": 100.0,
    "channels": 1.0,
    "videos": 1.0,
    "playlistItems": 1.0,
    "commentThreads": 1.0,
    "activities": 1.0,
    "subscriptions": 1.0,
    ANY_OPERATION: 1.0,
}
DEFAULT_COSTS: dict[str, dict[str, float]] = {"ytapitoken": DATA_API_UNITS, "ytapi": DATA_API_UNITS}

# The flow whose request this task works for: the worker sets it around each request, so every call the
# flow makes is counted under it. Calls outside a request (the facade's, the listener's) count under "-".
NO_FLOW = "-"
_CALL_FLOW: ContextVar[str] = ContextVar("beat_call_flow", default=NO_FLOW)


@contextlib.contextmanager
def calls_for(flow: str) -> Iterator[None]:
    """Provider calls made inside (and in tasks started inside) are spent by ``flow``."""
    token = _CALL_FLOW.set(flow)
    try:
        yield
    finally:
        _CALL_FLOW.reset(token)


def current_flow() -> str:
    return _CALL_FLOW.get()


def operation_of(path: str) -> str:
    """``/youtube/v3/search`` is ``search``: the path's last segment."""
    return path.rstrip("/").rsplit("/", 1)[-1] or path


class CostTable:
    """Cost per call per (source, operation): the configured ones over the defaults."""

    def __init__(self, configured: Mapping[str, float | Mapping[str, float]]) -> None:
        self._costs: dict[str, dict[str, float]] = {label: dict(units) for label, units in DEFAULT_COSTS.items()}
        for label, cost in configured.items():
            self._costs[label] = dict(cost) if isinstance(cost, Mapping) else {ANY_OPERATION: float(cost)}

    @classmethod
    def from_settings(cls, settings: Settings) -> CostTable:
        return cls(settings.source_costs)

    def cost(self, source: str, path: str) -> float:
        units = self._costs.get(source)
        if not units:
            return 0.0
        return float(units.get(operation_of(path), units.get(ANY_OPERATION, 0.0)))


_ADD = """
INSERT INTO provider_spend (day, source, credential_id, flow, calls, cost)
SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::double precision[])
ON CONFLICT (day, source, credential_id, flow) DO UPDATE
SET calls = provider_spend.calls + EXCLUDED.calls, cost = provider_spend.cost + EXCLUDED.cost,
    updated_at = now()
"""

SpendKey = tuple[date, str, str, str]  # UTC day, source, credential id ("" for none), flow


class SpendLedger:
    """Counts calls and cost in memory; ``start()`` flushes them to Postgres in batches, ``aclose()`` the rest."""

    def __init__(self, pool: asyncpg.Pool | None) -> None:
        self._pool = pool
        self._pending: defaultdict[SpendKey, list[float]] = defaultdict(lambda: [0, 0.0])
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._pool is not None:
            self._task = asyncio.create_task(self._run(), name="spend-ledger")

    def spent(self, source: str, credential_id: str | None, flow: str, cost: float) -> None:
        entry = self._pending[(utcnow().date(), source, credential_id or "", flow)]
        entry[0] += 1
        entry[1] += cost

    async def flush(self) -> None:
        """Add what was counted since the last flush; on failure keep it for the next."""
        if self._pool is None or not self._pending:
            return
        batch, self._pending = self._pending, defaultdict(lambda: [0, 0.0])
        keys = list(batch)
        try:
            await self._pool.execute(
                _ADD,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [k[3] for k in keys],
                [int(batch[k][0]) for k in keys],
                [batch[k][1] for k in keys],
            )
        except (OSError, asyncpg.PostgresError, TimeoutError):
            for key, (calls, cost) in batch.items():
                entry = self._pending[key]
                entry[0] += calls
                entry[1] += cost
            raise

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                # Once per outage, not once a second.
                if not failing:
                    log.warning("could not write provider spend (%s); keeping it until Postgres answers", exc)
                failing = True
                continue
            if failing:
                log.info("provider spend written again")
            failing = False

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("lost %d provider spend rows at shutdown (%s)", len(self._pending), exc)
