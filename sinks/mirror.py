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

A record that cannot be mapped, for whatever reason, goes to the dead-letter topic and
costs nothing else. Any other failure keeps the batch in hand: it is logged (its traceback
once), waited out with backoff and tried again; an outage for as long as it lasts, anything
else a few times, after which the mirror exits non-zero rather than run on broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from zoneinfo import ZoneInfo

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from core.failures import LoopBroken, LoopFailures
from core.health import Health
from core.kafka import start_group_consumer, start_producer
from core.lag import LagGauge, observe_consumer
from core.metrics import MIRROR_PUBLISHED, MIRROR_RETRIES, child
from core.settings import Settings, mask_url
from core.tracing import TRACER, links_of
from sinks.amqp_exchanges import ExchangeUnusable, open_exchanges
from sinks.legacy_events import EXCHANGES, MIRROR_APP_ID, MIRRORED, LegacyEvent, legacy_event
from topics import names
from topics.dead_letter import RawRecord, bounded_key, dead_letter
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
# Failures in a row, other than RabbitMQ or the broker being away, before the mirror gives up on itself.
FATAL_AFTER = 5


def _is_outage(exc: BaseException) -> bool:
    return isinstance(exc, (*RETRIABLE, KafkaError))


class MirrorRunner:
    def __init__(self, settings: Settings, health: Health | None = None) -> None:
        self._health = health
        self._connection: AbstractRobustConnection | None = None
        assert settings.kafka_url and settings.amqp_url
        self.settings = settings
        self.topics = {settings.topic(topic): topic for topic in MIRRORED}
        self._url = settings.amqp_url.get_secret_value()
        self._stopping = asyncio.Event()
        self._zone = ZoneInfo(settings.legacy_timezone)

    def stop(self) -> None:
        """Finish the batch in hand (one more publish attempt if RabbitMQ is away), commit it, exit."""
        self._stopping.set()

    async def run(self) -> int:
        """Mirror until stopped; the exit status: 1 when the mirror stopped because it could not go on."""
        connection = self._connection = await self._connect()
        if connection is None:
            return 0
        try:
            exchanges = await self._exchanges(connection)
            if exchanges is not None:
                await self._consume(exchanges)
        except ExchangeUnusable as exc:
            # Retrying cannot create an exchange: say which one, once, and exit.
            log.critical("beat mirror cannot start: %s", exc)
            return 1
        except LoopBroken:
            log.critical("beat mirror cannot go on; exiting", exc_info=True)
            return 1
        finally:
            await connection.close()
        return 0

    async def _exchanges(self, connection: AbstractRobustConnection) -> dict[str, AbstractExchange] | None:
        failures = LoopFailures(
            log, "opening the RabbitMQ channel", RETRY_DELAYS, outage=_is_outage, fatal_after=FATAL_AFTER
        )
        while not self._stopping.is_set():
            try:
                channel = await connection.channel(publisher_confirms=True)
                return await open_exchanges(channel, self.settings, EXCHANGES)
            except ExchangeUnusable:
                raise
            except Exception as exc:  # noqa: BLE001 - LoopBroken ends it when waiting cannot help
                await self._sleep(failures.failed(exc))
        return None

    async def _connect(self) -> AbstractRobustConnection | None:
        """The first connection, retried with backoff; later drops are the robust connection's job."""
        failures = 0
        while not self._stopping.is_set():
            try:
                return await aio_pika.connect_robust(
                    self._url, timeout=CONNECT_TIMEOUT, reconnect_interval=RECONNECT_INTERVAL
                )
            except RETRIABLE as exc:
                wait = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "RabbitMQ at %s unreachable (%s: %s); retrying in %ss",
                    mask_url(self._url),
                    type(exc).__name__,
                    exc,
                    wait,
                )
                await self._sleep(wait)
        return None

    async def _consume(self, exchanges: dict[str, AbstractExchange]) -> None:
        settings = self.settings
        producer = await start_producer(settings)
        consumer = await start_group_consumer(settings, self.topics, "mirror")
        observer = None
        if self._health is not None:
            # Ready: RabbitMQ's robust connection is up, the broker answers, partitions are assigned.
            probes = {"amqp": lambda: _answering(self._connection), "broker": producer.client.force_metadata_update}
            gauge = LagGauge(settings.group("mirror"))
            observer = asyncio.create_task(observe_consumer(self._health, gauge, consumer, probes))
        log.info(
            "mirror consuming %s into %s at %s",
            ", ".join(self.topics),
            ", ".join(exchange.name for exchange in exchanges.values()),
            mask_url(self._url),
        )
        failures = LoopFailures(log, "mirroring a batch", RETRY_DELAYS, outage=_is_outage, fatal_after=FATAL_AFTER)
        # The batch in hand and its mapped events: kept across a failure, so nothing is skipped.
        polled: dict[TopicPartition, list[ConsumerRecord]] | None = None
        events: list[LegacyEvent] | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if polled is None:
                        polled = (
                            await consumer.getmany(
                                timeout_ms=int(settings.sink_batch_timeout * 1000) or 100,
                                max_records=settings.sink_batch_size,
                            )
                            or None
                        )
                        if polled is None:
                            continue
                    if events is None:
                        events = await self._map(polled, producer)
                    if not await self._publish_traced(exchanges, events, polled):
                        log.warning(
                            "stopped with %d records unconfirmed; their offsets stay uncommitted",
                            sum(map(len, polled.values())),
                        )
                        return
                    await self._commit(consumer, polled)
                except Exception as exc:  # noqa: BLE001 - LoopBroken ends it when waiting cannot help
                    await self._sleep(failures.failed(exc))
                    continue
                polled = events = None
                failures.succeeded()
        finally:
            if observer is not None:
                observer.cancel()
            await consumer.stop()
            await producer.stop()
            log.info("mirror stopped")

    async def _map(
        self, polled: dict[TopicPartition, list[ConsumerRecord]], producer: AIOKafkaProducer
    ) -> list[LegacyEvent]:
        """The batch's legacy messages; a record that cannot be mapped goes to the dead-letter topic instead, and
        one that no routing key takes (a report of another kind) is passed over."""
        events = []
        for tp, records in polled.items():
            topic = self.topics[tp.topic]
            for record in records:
                try:
                    event = legacy_event(topic, record.value, self._zone)
                except Exception as exc:  # noqa: BLE001 - mapping reads this record alone: whatever it raises is its own
                    error = ErrorInfo(type=type(exc).__name__, message=f"beat mirror: {exc}"[:2000])
                    await producer.send_and_wait(
                        self.settings.topic(names.DEAD_LETTER),
                        dead_letter(
                            RawRecord.from_kafka(record), error, max_bytes=self.settings.max_message_bytes
                        ).to_bytes(),
                        key=bounded_key(record.key),
                    )
                    continue
                if event is not None:
                    events.append(event)
        return events

    async def _publish_traced(
        self,
        exchanges: dict[str, AbstractExchange],
        events: list[LegacyEvent],
        polled: dict[TopicPartition, list[ConsumerRecord]],
    ) -> bool:
        """``_publish_all`` in a span linked to the spans that produced the batch's records."""
        links = links_of(record.headers for records in polled.values() for record in records)
        with TRACER.start_as_current_span("mirror publish", links=links, attributes={"beat.messages": len(events)}):
            return await self._publish_all(exchanges, events)

    async def _publish_all(self, exchanges: dict[str, AbstractExchange], events: list[LegacyEvent]) -> bool:
        """Publish until RabbitMQ confirmed every message; False when stopped before that.

        Only the messages still unconfirmed are sent again. A confirm lost with the connection
        means RabbitMQ may have the message anyway: that retry is the at-least-once duplicate.
        """
        pending = [(event, _message(event)) for event in events]
        failures = 0
        while True:
            errors = await self._attempt(exchanges, pending)
            failed = [(item, error) for item, error in zip(pending, errors, strict=True) if error is not None]
            if not failed:
                for event in events:
                    child(MIRROR_PUBLISHED, event.routing_key).inc()
                if failures:
                    log.info(
                        "RabbitMQ confirms again; batch of %d published after %d failed attempts", len(events), failures
                    )
                return True
            if self._stopping.is_set():
                return False
            pending = [item for item, _ in failed]
            wait = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
            failures += 1
            MIRROR_RETRIES.inc()
            error = failed[0][1]
            log.warning(
                "RabbitMQ did not confirm %d of %d messages (%s: %s); Kafka paused, retrying in %ss",
                len(pending),
                len(events),
                type(error).__name__,
                error,
                wait,
            )
            await self._sleep(wait)

    @staticmethod
    async def _attempt(
        exchanges: dict[str, AbstractExchange], items: list[tuple[LegacyEvent, aio_pika.Message]]
    ) -> list[BaseException | None]:
        """Publish every message at once and wait up to PUBLISH_TIMEOUT for the confirms; each one's error."""
        # The robust channel waits for a reconnect before sending, outside publish's own timeout,
        # so the attempt as a whole is bounded here.
        tasks = [
            asyncio.ensure_future(exchanges[event.exchange].publish(message, event.routing_key, mandatory=False))
            for event, message in items
        ]
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _message(event: LegacyEvent) -> aio_pika.Message:
    # Persistent JSON, as the legacy kombu publisher sent it; the event id doubles as the AMQP message id.
    return aio_pika.Message(
        event.body(),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.event_id,
        app_id=MIRROR_APP_ID,
    )


async def _answering(connection: AbstractRobustConnection | None) -> bool:
    return connection is not None and not connection.is_closed and connection.connected.is_set()


def run_mirror(settings: Settings, health: Health | None = None) -> int:
    """Run the mirror until SIGTERM/SIGINT; the process's exit status."""

    async def main() -> int:
        runner = MirrorRunner(settings, health)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.stop)
        return await runner.run()

    return asyncio.run(main())
