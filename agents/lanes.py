"""A flow's two lanes: its bulk topic and its priority topic share the flow's concurrency, priority first.

Each lane is a Faust agent of its own, so a priority record never queues behind the bulk records buffered
in the bulk agent's channel (up to the backpressure gate's high mark). What orders them is ``FlowSlots``:
a record takes one of the flow's C slots before it starts, and a freed slot goes to a waiting priority
record before any bulk one, so while priority records wait no bulk record starts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FlowSlots:
    """The flow's concurrency as slots; waiters of the priority lane are served first, each lane in order."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}

    @property
    def free(self) -> int:
        return self._free

    def waiting(self, urgent: bool) -> int:
        return sum(1 for future in self._waiting[urgent] if not future.done())

    @asynccontextmanager
    async def slot(self, urgent: bool) -> AsyncIterator[None]:
        """Hold one of the flow's slots; ``urgent`` for a record of the priority lane."""
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if self._free > 0 and not self.waiting(True) and (urgent or not self.waiting(False)):
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[urgent].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # handed a slot as the cancellation arrived: pass it on
            raise

    def _release(self) -> None:
        for urgent in (True, False):
            waiting = self._waiting[urgent]
            while waiting:
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._free += 1
