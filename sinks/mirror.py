"""``beat mirror``: Beat's events republished as the legacy RabbitMQ messages (contract §5).

A plain aiokafka consumer group of its own (``beat-mirror``) over the topics in
``sinks.legacy_events.MIRRORED``, and one long-lived robust aio-pika connection
with publisher confirms. Each polled batch is mapped, published, and its offsets
are committed only once RabbitMQ has confirmed every message of it, so delivery
is at least once and a duplicate carries the same event id.

While RabbitMQ is away the batch in hand is retried with backoff and Kafka is not
polled: the mirror holds one batch (``BEAT_SINK_BATCH_SIZE`` records), never more,
and catches up from its committed offsets when RabbitMQ answers again. A very
long outage (past ``max_poll_interval``) only costs the group membership; the
batch is re-read and republished. The worker and the Postgres sink are separate
processes and groups, so an outage here never slows them.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from app.kafka import start_group_consumer, start_producer
from app.settings import Settings, mask_url
from sinks.legacy_events import EXCHANGES, MIRRORED, LegacyEvent, legacy_event
from topics import names
from topics.dead_letter import RawRecord, dead_letter
from topics.models import ErrorInfo

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 1, 2, 3, 5)
# One publish attempt of a batch; a connection that is down or blackholed fails it, and the batch is retried.
PUBLISH_TIMEOUT = 15.0
CONNECT_TIMEOUT = 10.0
# How often the robust connection tries to come back after a drop.
RECONNECT_INTERVAL = 1.0

# Everything aio-pika raises for a lost connection or channel, a nack, and a timed-out confirm.
RETRIABLE = (*CONNECTION_EXCEPTIONS, TimeoutError)


class MirrorRunner:
    def __init__(self, settings: Settings) -> None:
        assert settings.kafka_url and settings.amqp_url
        self.settings = settings
        self.topics = {settings.topic(topic): topic for topic in MIRRORED}
        self._url = settings.amqp_url.get_secret_value()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in hand (one more publish attempt if RabbitMQ is away), commit it, exit."""
        self._stopping.set()

    async def run(self) -> None:
        connection = await self._connect()
        if connection is None:
            return
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchanges = {
                name: await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
                for name in EXCHANGES
            }
            await self._consume(exchanges)
        finally:
            await connection.close()

    async def _connect(self) -> AbstractRobustConnection | None:
        """The first connection, retried with backoff; later drops are the robust connection's job."""
        failures = 0
        while not self._stopping.is_set():
            try:
                return await aio_pika.connect_robust(self._url, timeout=CONNECT_TIMEOUT,
                                                     reconnect_interval=RECONNECT_INTERVAL)
            except RETRIABLE as exc:
                wait = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                log.warning("RabbitMQ at %s unreachable (%s: %s); retrying in %ss", mask_url(self._url),
                            type(exc).__name__, exc, wait)
                await self._sleep(wait)
        return None

    async def _consume(self, exchanges: dict[str, AbstractExchange]) -> None:
        settings = self.settings
        producer = await start_producer(settings)
        consumer = await start_group_consumer(settings, self.topics, "mirror")
        log.info("mirror consuming %s into %s at %s", ", ".join(self.topics), ", ".join(EXCHANGES),
                 mask_url(self._url))
        try:
            while not self._stopping.is_set():
                polled = await consumer.getmany(
                    timeout_ms=int(settings.sink_batch_timeout * 1000) or 100, max_records=settings.sink_batch_size
                )
                if not polled:
                    continue
                events = await self._map(polled, producer)
                if not await self._publish_all(exchanges, events):
                    log.warning("stopped with %d records unconfirmed; their offsets stay uncommitted",
                                sum(map(len, polled.values())))
                    return
                await self._commit(consumer, polled)
        finally:
            await consumer.stop()
            await producer.stop()
            log.info("mirror stopped")

    async def _map(self, polled: dict[TopicPartition, list[ConsumerRecord]],
                   producer: AIOKafkaProducer) -> list[LegacyEvent]:
        """The batch's legacy messages; an undecodable record goes to the dead-letter topic instead."""
        events = []
        for tp, records in polled.items():
            topic = self.topics[tp.topic]
            for record in records:
                try:
                    events.append(legacy_event(topic, record.value))
                except ValueError as exc:
                    error = ErrorInfo(type=type(exc).__name__, message=f"beat mirror: {exc}"[:2000])
                    await producer.send_and_wait(self.settings.topic(names.DEAD_LETTER),
                                                 dead_letter(RawRecord.from_kafka(record), error).to_bytes(),
                                                 key=record.key)
        return events

    async def _publish_all(self, exchanges: dict[str, AbstractExchange], events: list[LegacyEvent]) -> bool:
        """Publish until RabbitMQ confirmed every message; False when stopped before that.

        Only the messages still unconfirmed are sent again. A confirm lost with the connection
        means RabbitMQ may have the message anyway: that retry is the at-least-once duplicate.
        """
        pending = [(event, _message(event)) for event in events]
        failures = 0
        while True:
            errors = await self._attempt(exchanges, pending)
            failed = [(item, error) for item, error in zip(pending, errors) if error is not None]
            if not failed:
                if failures:
                    log.info("RabbitMQ confirms again; batch of %d published after %d failed attempts",
                             len(events), failures)
                return True
            if self._stopping.is_set():
                return False
            pending = [item for item, _ in failed]
            wait = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
            failures += 1
            error = failed[0][1]
            log.warning("RabbitMQ did not confirm %d of %d messages (%s: %s); Kafka paused, retrying in %ss",
                        len(pending), len(events), type(error).__name__, error, wait)
            await self._sleep(wait)

    @staticmethod
    async def _attempt(exchanges: dict[str, AbstractExchange],
                       items: list[tuple[LegacyEvent, aio_pika.Message]]) -> list[BaseException | None]:
        """Publish every message at once and wait up to PUBLISH_TIMEOUT for the confirms; each one's error."""
        # The robust channel waits for a reconnect before sending, outside publish's own timeout,
        # so the attempt as a whole is bounded here.
        tasks = [asyncio.ensure_future(exchanges[event.exchange].publish(message, event.routing_key, mandatory=False))
                 for event, message in items]
        _, late = await asyncio.wait(tasks, timeout=PUBLISH_TIMEOUT)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        errors: list[BaseException | None] = []
        for task in tasks:
            error = TimeoutError(f"no confirm within {PUBLISH_TIMEOUT:g}s") if task in late else task.exception()
            if error is not None and not isinstance(error, RETRIABLE):
                raise error
            errors.append(error)
        return errors

    async def _commit(self, consumer: AIOKafkaConsumer, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in polled.items() if records}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions: the new owner republishes them, with the same event ids.
            log.info("commit skipped after rebalance: %s", exc)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on stop."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass


def _message(event: LegacyEvent) -> aio_pika.Message:
    # Persistent JSON, as the legacy kombu publisher sent it; the event id doubles as the AMQP message id.
    return aio_pika.Message(
        event.body(),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.event_id,
        app_id="beat",
    )


def run_mirror(settings: Settings) -> None:
    async def main() -> None:
        runner = MirrorRunner(settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.stop)
        await runner.run()

    asyncio.run(main())
