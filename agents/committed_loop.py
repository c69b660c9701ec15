"""A group consumer and a producer run as one task of rounds, for the worker's side loops (the retry
consumer, the sentiment feed).

A round reads, produces what the records become and commits them only after that is on the broker. A
round that fails is logged and waited out, and the next one reads again from the last commit, so nothing
read in a failed round is lost. When rounds keep failing on something waiting does not fix, ``on_broken``
takes the worker down.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from core.failures import LoopBroken, LoopFailures
from core.kafka import GroupConsumer, start_group_consumer, start_producer
from core.outage import is_outage
from core.settings import Settings

# Backoff after a failed round, and how many failures in a row that waiting does not fix end the worker.
FAILURE_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
FATAL_AFTER = 5


class CommittedLoop(ABC):
    """Started and stopped with a worker's runtime; a subclass names its topics and does one ``poll``."""

    role: str
    name: str

    def __init__(self, settings: Settings, on_broken: Callable[[LoopBroken], Awaitable[None]], log: logging.Logger):
        self.settings = settings
        self._on_broken = on_broken
        self._failures = LoopFailures(
            log, f"{self.name} round", FAILURE_DELAYS, outage=is_outage, fatal_after=FATAL_AFTER
        )
        self._consumer: GroupConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task | None = None
        # After a failed round: what was read but not committed is read again.
        self._rewind = False

    @abstractmethod
    async def topics(self) -> list[str]:
        """The topics the loop's consumer group reads, made ready before it starts."""

    @abstractmethod
    async def poll(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        """One read, what it became produced, and its offsets committed."""

    async def start(self) -> None:
        topics = await self.topics()
        self._producer = await start_producer(self.settings)
        self._consumer = await start_group_consumer(self.settings, topics, self.role)
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def run(self) -> None:
        """Until cancelled, or until ``on_broken`` has been told the loop cannot go on."""
        while True:
            try:
                await self.round()
            except Exception as exc:  # noqa: BLE001 - nothing one round meets may end the loop silently
                self._rewind = True
                try:
                    wait = self._failures.failed(exc)
                except LoopBroken as broken:
                    await self._on_broken(broken)
                    return
                await asyncio.sleep(wait)
                continue
            self._failures.succeeded()

    async def round(self) -> None:
        consumer, producer = self._consumer, self._producer
        assert consumer is not None and producer is not None
        if self._rewind:
            await self.rewind(consumer)
            self._rewind = False
        await self.poll(consumer, producer)

    async def rewind(self, consumer: AIOKafkaConsumer) -> None:
        """Read again from each assigned partition's last commit (its start when it has none)."""
        assigned = consumer.assignment()
        if assigned:
            committed = await consumer.seek_to_committed(*assigned)
            never = [tp for tp, offset in committed.items() if not offset]
            if never:
                await consumer.seek_to_beginning(*never)
