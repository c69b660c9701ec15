"""A worker's dependency outages: pause on one, probe it with backoff, resume when it answers.

A record whose work meets an unreachable dependency (``core.outage.DependencyDown``: Postgres,
Redis, the broker) is not judged: it waits here, unacked, and is worked again from the start of the
same attempt once the dependency answers, so an outage costs no retry attempt however long it lasts.
While any dependency is down no record starts (``ready``); faust's buffer then fills and the flow
gates pause fetching, so the worker holds what it has and takes nothing new. Each outage is logged
once when it starts and once when it ends, whatever the number of records caught in it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from core.outage import BROKER, DependencyDown, as_outage, broker_down

log = logging.getLogger(__name__)

PROBE_DELAYS = (0.25, 0.5, 1.0, 2.0)
PROBE_TIMEOUT = 5.0

Probe = Callable[[], Awaitable[object]]


def dependency_down(exc: BaseException) -> DependencyDown | None:
    """The outage ``exc`` reports, or None when it is the record's own failure."""
    if isinstance(exc, DependencyDown):
        return exc
    cause = exc.__cause__ if exc.__cause__ is not None and not broker_down(exc) else exc
    if broker_down(cause):
        # A producer's send that failed for the broker's sake (faust wraps it in ProducerSendError).
        return as_outage(BROKER, cause)
    return None


class Outages:
    def __init__(self, probes: Mapping[str, Probe], delays: tuple[float, ...] = PROBE_DELAYS) -> None:
        self._probes = dict(probes)
        self._delays = delays
        self._down: dict[str, asyncio.Future] = {}
        self._clear = asyncio.Event()
        self._clear.set()
        self.waiting = 0

    def down(self) -> set[str]:
        """The dependencies being waited out now."""
        return set(self._down)

    async def ready(self) -> None:
        """Return once no dependency is known to be down."""
        await self._clear.wait()

    async def wait_out(self, down: DependencyDown) -> None:
        """Wait until ``down.dependency`` answers its probe again."""
        name = down.dependency
        watch = self._down.get(name)
        if watch is None:
            log.warning("outage: %s (%s); the worker pauses its intake and keeps the records it holds", name, down)
            self._clear.clear()
            watch = self._down[name] = asyncio.ensure_future(self._probe_until_up(name, time.monotonic()))
        self.waiting += 1
        try:
            await asyncio.shield(watch)
        finally:
            self.waiting -= 1

    async def _probe_until_up(self, name: str, since: float) -> None:
        probe = self._probes[name]
        tries = 0
        while True:
            await asyncio.sleep(self._delays[min(tries, len(self._delays) - 1)])
            tries += 1
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT)
                break
            except Exception as exc:  # noqa: BLE001 - still down: any answer but success says so
                log.debug("%s probe %d failed: %s: %s", name, tries, type(exc).__name__, exc)
        del self._down[name]
        if not self._down:
            self._clear.set()
        log.warning(
            "outage over: %s answers again after %.1fs (%d probes); %d records resume",
            name,
            time.monotonic() - since,
            tries,
            self.waiting,
        )

    def close(self) -> None:
        for watch in self._down.values():
            watch.cancel()
