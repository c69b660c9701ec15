"""The plain aiokafka clients used outside Faust apps: the producer (facade, CLI, sink, reconciler) and the
batch consumers of `beat sink`, `beat mirror` and the retry consumer.

A group consumer here lives through its broker losing its log, as the embedded broker does when it
restarts with empty memory (the group, its committed offsets and every record are gone; Tansu then
answers a fetch beyond the end of a partition with no records rather than OFFSET_OUT_OF_RANGE):

* a partition whose high watermark is below the consumer's position is read again from its
  beginning: the records it holds were produced after the loss, and nothing else would read them;
* a commit still waiting when the group revokes its partitions is dropped (CommitFailedError, as
  Kafka answers a commit from an old generation). Tansu takes any commit under the new membership,
  and one made for the lost log would place the group past the new log's first records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError

from core.kafka_security import client_options
from core.settings import Settings

log = logging.getLogger(__name__)

# Bytes a produce request adds around a record beyond its key and value: Beat bounds those by
# max_message_bytes, the request also carries a batch's headers.
_REQUEST_OVERHEAD = 4096


async def start_producer(settings: Settings, *, timeout: float | None = None) -> AIOKafkaProducer:
    """A started producer; ``timeout`` bounds how long a send waits for an unreachable broker (aiokafka's
    default is 40 s, longer than a caller answering HTTP should wait)."""
    assert settings.kafka_url
    options: dict[str, Any] = {} if timeout is None else {"request_timeout_ms": int(timeout * 1000)}
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_url,
        acks="all",
        linger_ms=2,
        max_request_size=settings.max_message_bytes + _REQUEST_OVERHEAD,
        **client_options(settings),
        **options,
    )
    try:
        await producer.start()
    except BaseException:
        # A producer that never connected still holds its client; unstopped, it is reported at exit.
        await producer.stop()
        raise
    return producer


class _Revocations(ConsumerRebalanceListener):
    def __init__(self, consumer: GroupConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._consumer.drop_waiting_commits()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass


class GroupConsumer(AIOKafkaConsumer):
    """An aiokafka group consumer that survives its broker losing its log (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting_commits: set[asyncio.Task] = set()

    def drop_waiting_commits(self) -> None:
        for commit in self._waiting_commits:
            commit.cancel()

    async def commit(self, offsets: Any = None) -> None:
        commit = asyncio.ensure_future(super().commit(offsets))
        self._waiting_commits.add(commit)
        commit.add_done_callback(self._waiting_commits.discard)
        try:
            await commit
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if not commit.cancelled() or (caller is not None and caller.cancelling()):
                raise
            raise CommitFailedError("the group revoked its partitions while the commit waited") from None

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        batches = await super().getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)
        lost = await self._behind_their_logs(batches)
        if lost:
            await self.seek_to_beginning(*lost)
        return batches

    async def _behind_their_logs(self, batches: dict[TopicPartition, list[Any]]) -> list[TopicPartition]:
        lost = []
        paused = self.paused()
        for tp in self.assignment():
            highwater = self.highwater(tp)
            # Known only from a fetch answered for the current position, so the position is valid and at hand
            # (a paused partition's may be older than a seek).
            if highwater is None or tp in batches or tp in paused:
                continue
            try:
                position = await self.position(tp)
            except IllegalStateError:
                continue  # revoked meanwhile
            if highwater < position:
                log.warning(
                    "%s ends at offset %d, before this consumer's position %d: the broker lost the log "
                    "(an in-memory broker restarted); reading the partition from its beginning",
                    tp,
                    highwater,
                    position,
                )
                lost.append(tp)
        return lost


async def start_group_consumer(settings: Settings, topics: Iterable[str], role: str, **options: Any) -> GroupConsumer:
    """A started consumer in the role's group that commits by hand, from the earliest offset, with the
    configured session and heartbeat (Tansu holds a join for half the session)."""
    assert settings.kafka_url
    consumer = GroupConsumer(
        bootstrap_servers=settings.kafka_url,
        group_id=settings.group(role),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
        max_poll_interval_ms=300_000,
        **client_options(settings),
        **options,
    )
    consumer.subscribe(list(topics), listener=_Revocations(consumer))
    await consumer.start()
    return consumer
