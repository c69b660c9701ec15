"""The retry consumer: hands each delayed request back to its flow's topic when it is due (contract §2, §3).

It runs inside ``beat worker`` and reads every delay tier (``beat.retry.<tier>``) in one consumer group.
A record carries its due time in the ``beat-due`` header. Read at or after it, the request goes to
``beat.scrape.<flow>``, or to ``beat.scrape.<flow>.priority`` when its priority is above the bulk level; read
before it, it is re-produced to the tier that fits the time left, so a long wait at the head of a partition
never holds back a short one behind it. Either way its offset is then
committed.

A record on tier T produced at t is not looked at before min(t + T, due): the producer picked the longest
tier not exceeding the wait, so nothing on a tier can be due sooner. The consumer pauses a partition
until its head's time comes, seeking back to the head, instead of polling it.

Delivery is at least once: a record is committed only after what it became is on the broker, so a crash
in between hands the request on twice, and the worker's idempotent writes absorb the duplicate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from agents.committed_loop import CommittedLoop
from core.backoff import tier_for
from core.failures import LoopBroken
from core.settings import Settings
from core.topic_admin import ensure_topics
from core.tracing import trace_headers
from topics import names
from topics.dead_letter import RawRecord, bounded_key, dead_letter, error_info
from topics.flows import FLOWS

log = logging.getLogger(__name__)

ROLE = "retry"
# The longest the loop sleeps in one poll, so partitions whose pause has ended are resumed promptly.
MAX_POLL_WAIT = 1.0


def due_of(record: ConsumerRecord, now: float) -> float:
    """The record's due time (epoch seconds); one without a readable header is due now."""
    for name, value in record.headers or ():
        if name == names.RETRY_DUE_HEADER:
            try:
                return float(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                return now
    return now


def lane_of(value: bytes | None) -> tuple[str, int] | None:
    """The flow a retry record's request names, if Beat has it, and the request's priority (which picks its
    lane; 1, the contract's default, when it names none)."""
    try:
        body = json.loads(value or b"")
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    flow, priority = body.get("flow"), body.get("priority", 1)
    if not isinstance(flow, str) or flow not in FLOWS:
        return None
    return flow, priority if isinstance(priority, int) else 1


def due_header(due: float) -> tuple[str, bytes]:
    return names.RETRY_DUE_HEADER, f"{due:.3f}".encode("ascii")


class RetryConsumer(CommittedLoop):
    role = ROLE
    name = "retry consumer"

    def __init__(self, settings: Settings, on_broken: Callable[[LoopBroken], Awaitable[None]]) -> None:
        super().__init__(settings, on_broken, log)
        self._tiers = {
            settings.topic(names.retry_topic(tier)): seconds for tier, seconds in settings.retry_tiers.items()
        }
        # Paused partition -> when its head may be looked at (epoch seconds).
        self._paused: dict[TopicPartition, float] = {}

    async def topics(self) -> list[str]:
        assert self.settings.kafka_url
        # Tiers are configuration: a tier added since the topics were created must exist before it is read.
        await ensure_topics(
            self.settings.kafka_url, dict.fromkeys(self._tiers, self.settings.request_partitions), self.settings
        )
        return list(self._tiers)

    async def poll(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        """Resume partitions whose head is due to be looked at, then handle what arrived."""
        self._resume_due(consumer)
        wait = min((at - time.time() for at in self._paused.values()), default=MAX_POLL_WAIT)
        batches = await consumer.getmany(timeout_ms=int(1000 * min(max(wait, 0.0), MAX_POLL_WAIT)))
        for tp, records in batches.items():
            await self._partition(consumer, tp, records)

    async def rewind(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        consumer.resume(*(tp for tp in self._paused if tp in assigned))
        self._paused.clear()
        await super().rewind(consumer)

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        now = time.time()
        assigned = consumer.assignment()
        for tp, at in list(self._paused.items()):
            if tp not in assigned:
                del self._paused[tp]  # revoked: its new owner starts from the last commit
            elif at <= now:
                del self._paused[tp]
                consumer.resume(tp)

    def _look_at(self, record: ConsumerRecord, due: float) -> float:
        tier = self._tiers.get(record.topic, 0.0)
        return min(due, record.timestamp / 1000 + tier)

    async def _partition(self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        sent: list[Awaitable] = []
        done: int | None = None
        for record in records:
            now = time.time()
            due = due_of(record, now)
            look_at = self._look_at(record, due)
            if look_at > now:
                # Everything behind it on this tier was produced later, so none can be looked at sooner.
                consumer.pause(tp)
                consumer.seek(tp, record.offset)
                self._paused[tp] = look_at
                break
            sent.append(await self._route(record, due, now))
            done = record.offset + 1
        if done is None:
            return
        await asyncio.gather(*sent)
        try:
            await consumer.commit({tp: done})
        except CommitFailedError as exc:
            # A rebalance took the partition: its new owner hands these on again, and duplicates are harmless.
            log.info("retry consumer: commit of %s lost to a rebalance: %s", tp, exc)

    async def _route(self, record: ConsumerRecord, due: float, now: float) -> Awaitable:
        producer = self._producer
        assert producer is not None
        lane = lane_of(record.value)
        if lane is None:
            return await self._dead_letter(record)
        # The next attempt continues the request's trace (core/tracing.py).
        traced = trace_headers(record.headers)
        if due <= now:
            return await producer.send(
                self.settings.request_topic(*lane), record.value, key=record.key, headers=traced or None
            )
        tier = tier_for(due - now, self.settings.retry_tiers)
        return await producer.send(
            self.settings.topic(names.retry_topic(tier)),
            record.value,
            key=record.key,
            headers=[due_header(due), *traced],
        )

    async def _dead_letter(self, record: ConsumerRecord) -> Awaitable:
        """A record on a tier that names no flow of Beat's was not produced by a worker: it cannot be retried."""
        assert self._producer is not None
        raw = RawRecord.from_kafka(record)
        log.warning(
            "retry consumer: dead-lettering %s[%d]@%d, which names no known flow",
            record.topic,
            record.partition,
            record.offset,
        )
        letter = dead_letter(
            raw,
            error_info("UndecodableMessage", "a retry record that names no known flow"),
            max_bytes=self.settings.max_message_bytes,
        )
        return await self._producer.send(
            self.settings.topic(names.DEAD_LETTER), letter.to_bytes(), key=bounded_key(record.key)
        )
