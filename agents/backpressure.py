"""Per-flow backpressure, so a stalled flow cannot stall the other flows of its worker.

Faust delivers every record through one conductor; when a flow's buffer is full
the conductor waits on it, and with it every other topic of the app. Faust's own
pressure hook pauses a partition only as that partition's records arrive, and
measured here a hanging flow still filled its buffer and blocked the worker.
This gate watches each flow's buffer and pauses *all* of the flow's assigned
partitions well before it fills, then resumes them once it has drained.

It pauses the way faust's own hook does (``on_buffer_full``): the partition leaves
the fetch set but records already fetched for it are still delivered. Removing it
outright (``pause_partitions``) would drop those records on the floor after the
client had moved past them, stalling the partition until the next rebalance.
"""

from __future__ import annotations

import asyncio
import logging

import faust

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.05


class FlowGate:
    def __init__(self, app: faust.App, topic: str, queue, *, high: int, low: int) -> None:
        self._app = app
        self._topic = topic
        self._queue = queue
        self._high = high
        self._low = low
        self.paused = False
        self.enabled = True

    def _partitions(self) -> set:
        return {tp for tp in self._app.consumer.assignment() if tp.topic == self._topic}

    def check(self) -> None:
        size = self._queue.qsize()
        if not self.enabled:
            return
        consumer = self._app.consumer
        if not self.paused and size >= self._high:
            for tp in self._partitions():
                consumer.on_buffer_full(tp)
            self.paused = True
            log.info("%s: %d records buffered, pausing its partitions", self._topic, size)
        elif self.paused and size <= self._low:
            for tp in self._partitions():
                consumer.on_buffer_drop(tp)
            self.paused = False
            log.info("%s: buffer drained to %d, resuming", self._topic, size)

    async def run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # the consumer may be mid-rebalance; the next tick retries
                log.debug("flow gate check failed", exc_info=True)
            await asyncio.sleep(CHECK_INTERVAL)
