"""What a worker process shows on its metrics port besides the counters its request path bumps.

Every ``SAMPLE_INTERVAL`` it samples: readiness (no dependency in an outage, the consumer assigned at
least once since the last rebalance began), each flow's consumer lag (committed offset against the
high-water mark of the last fetch, ``core/lag.py``) and the credential states of its in-memory cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Set
from typing import TYPE_CHECKING, Any

from core.health import Health
from core.lag import SAMPLE_INTERVAL, LagGauge
from core.metrics import CONCURRENCY, CREDENTIALS, child
from providers.drift import FINDINGS

if TYPE_CHECKING:
    from agents.worker import WorkerRuntime

log = logging.getLogger(__name__)

# The readiness checks of a worker (README "Metrics and health").
WORKER_CHECKS = ("postgres", "broker", "assigned")


class WorkerObserver:
    def __init__(self, runtime: WorkerRuntime, health: Health) -> None:
        self._runtime = runtime
        self._health = health
        self._lag = LagGauge(runtime.settings.group("worker"))
        health.add_view("drift", FINDINGS.snapshot)
        runtime.app.on_partitions_revoked.connect(self._revoked)
        runtime.app.on_partitions_assigned.connect(self._assigned)

    async def _revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self._health.set("assigned", False)

    async def _assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # An empty assignment is still one: more members than partitions leaves some idle but ready.
        self._health.set("assigned", True)

    async def run(self) -> None:
        settings = self._runtime.settings
        for spec in self._runtime.flows:
            child(CONCURRENCY, spec.name).set(settings.concurrency_of(spec))
        while True:
            try:
                self._sample()
            except Exception:
                log.debug("sampling the worker's gauges failed", exc_info=True)
            await asyncio.sleep(SAMPLE_INTERVAL)

    def _sample(self) -> None:
        runtime = self._runtime
        down: Set[str] = runtime.outages.down() if runtime.outages is not None else set()
        self._health.set("postgres", runtime.started and "postgres" not in down)
        self._health.set("broker", runtime.started and "broker" not in down)
        if runtime.credentials is not None:
            for (source, state), count in runtime.credentials.state_counts().items():
                child(CREDENTIALS, source, state).set(count)
        consumer: Any = runtime.app.consumer
        with contextlib.suppress(Exception):  # not started yet, or in the middle of a rebalance
            assigned = consumer.assignment()
            highwaters = {tp: consumer.highwater(tp) for tp in assigned}
            committed = consumer._committed_offset
            read = consumer._read_offset
            positions = {
                tp: committed.get(tp) if committed.get(tp) is not None else _next(read.get(tp)) for tp in assigned
            }
            self._lag.update(highwaters, positions)


def _next(offset: int | None) -> int | None:
    return None if offset is None else offset + 1
