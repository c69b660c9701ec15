"""Consumer lag (``beat_consumer_lag``) from the high-water marks the consumer's own fetches carried.

Tansu answers ListOffsets(latest) with the base offset of its newest batch plus one, not the log's end
(shared spec, environment.md), so the lag is never computed from end offsets: aiokafka keeps the
high-water mark of each fetch answer (``consumer.highwater(tp)``), and that is the end used here. A
partition not fetched yet has none and is left out. The position is what the group has settled: the
committed offset for the worker (faust reads far ahead into its buffers), the fetch position for the
sink and the mirror (which commit each batch before fetching the next).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from core.health import Health
from core.metrics import CONSUMER_LAG

# How often each process refreshes its lag and the other sampled gauges.
SAMPLE_INTERVAL = 2.0


class LagGauge:
    """One consumer group's lag per partition; partitions the group no longer owns are dropped."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._shown: set[tuple[str, int]] = set()

    def update(self, highwaters: Mapping[Any, int | None], positions: Mapping[Any, int | None]) -> None:
        """``highwaters`` and ``positions`` by TopicPartition (anything with ``topic`` and ``partition``)."""
        shown: set[tuple[str, int]] = set()
        for tp, high in highwaters.items():
            position = positions.get(tp)
            if high is None or position is None:
                continue
            CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(max(0, high - position))
            shown.add((tp.topic, tp.partition))
        for topic, partition in self._shown - shown:
            CONSUMER_LAG.remove(self.group, topic, str(partition))
        self._shown = shown


async def sample_aiokafka(gauge: LagGauge, consumer: Any) -> None:
    """Lag of a plain aiokafka consumer (the sink, the mirror): fetch position against fetched high-water."""
    assigned = consumer.assignment()
    highwaters = {tp: consumer.highwater(tp) for tp in assigned}
    positions = {tp: await consumer.position(tp) for tp in assigned if highwaters[tp] is not None}
    gauge.update(highwaters, positions)


Probe = Callable[[], Awaitable[object]]
# A probe that has not answered by then counts as down for this sample.
PROBE_TIMEOUT = 2.0


async def observe_consumer(health: Health, gauge: LagGauge, consumer: Any, probes: Mapping[str, Probe]) -> None:
    """Until cancelled: the readiness checks (each probe, and ``assigned``) and the lag of an aiokafka
    consumer's group (the sink's, the mirror's)."""
    while True:
        for name, probe in probes.items():
            try:
                answer = await asyncio.wait_for(probe(), PROBE_TIMEOUT)
            except Exception:  # noqa: BLE001 - any failure means not ready
                answer = False
            health.set(name, answer is not False)
        health.set("assigned", bool(consumer.assignment()))
        with contextlib.suppress(Exception):  # mid-rebalance: the next sample
            await asyncio.wait_for(sample_aiokafka(gauge, consumer), PROBE_TIMEOUT)
        await asyncio.sleep(SAMPLE_INTERVAL)
