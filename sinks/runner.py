"""``beat sink``: batch consumers from Kafka into Postgres, plus the reconciler.

A plain aiokafka consumer group rather than Faust agents: it fetches thousands of
records per call (Faust caps a sink at ~11k msg/s here, environment.md). Records
are gathered until ``BEAT_SINK_BATCH_SIZE`` or ``BEAT_SINK_BATCH_TIMEOUT`` after
the first, decoded while the previous batch is being written, and written in one
transaction (``sinks.writer``). After the commit come the dead letters (records
that do not decode, rows Postgres refuses) and the asset requests; only then are
the offsets committed. A database outage blocks the sink, which retries the same
batch until Postgres answers; it never turns an outage into a dead letter. Any other
failure of a batch (or of reading one) is logged with its traceback once and the same
batch is tried again with backoff; when it keeps failing, or when the reconciler stops,
the sink exits 1 rather than run on without them (``core.failures``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from core.failures import LoopBroken, LoopFailures
from core.health import Health
from core.kafka import start_group_consumer, start_producer
from core.lag import LagGauge, observe_consumer
from core.metrics import DEAD_LETTERS, SINK_BATCH_SIZE, SINK_ROWS, child
from core.outage import is_outage
from core.producing import send_batched
from core.reconciler import Reconciler
from core.requests import produce_requests, record_enqueued
from core.settings import Settings
from core.tracing import TRACER, links_of
from sinks import routing
from sinks.routing import Decoded, decode
from sinks.writer import Written, write_batch
from topics import names
from topics.dead_letter import RawRecord, dead_letter
from topics.errors import BeatError, Decision
from topics.models import ErrorInfo

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 1, 2, 5, 10)
# Anything but a refused value: lost connections, a restarting server, timeouts, a failed-over replica.
OUTAGE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
# Times in a row a batch (or reading one) may fail on something other than an outage before the sink exits:
# past that it is a bug that would fail every retry, and the process is better restarted, loudly.
FATAL_AFTER = 5
# The first poll of a batch waits this long for records before the loop looks at its other work.
IDLE_POLL = 0.1
PARTITION_FETCH_BYTES = 256 * 1024


class Stopped(BeatError):
    """The sink was asked to stop while it waited on an outage; the batch stays uncommitted."""

    decision = Decision.OUTAGE


@dataclass
class Batch:
    records: list[ConsumerRecord]
    offsets: dict[TopicPartition, int]
    decoded: Decoded


class SinkRunner:
    def __init__(self, settings: Settings, health: Health | None = None) -> None:
        self.settings = settings
        self._health = health
        self.topics = {settings.topic(t): t for t in routing.TOPICS}
        self._stopping = asyncio.Event()
        self.failed = False

    def stop(self) -> None:
        self._stopping.set()

    def _reconciler_done(self, task: asyncio.Task) -> None:
        # The reconciler ends only when cancelled: otherwise the terminal-state guarantee has lost its backstop,
        # and a sink without it must not look healthy.
        if task.cancelled():
            return
        log.critical(
            "the reconciler stopped; beat sink exits so that it is restarted with one", exc_info=task.exception()
        )
        self.failed = True
        self.stop()

    async def run(self) -> int:
        """Consume until stopped; the exit status: 1 when the sink stopped because it could not go on."""
        settings = self.settings
        assert settings.kafka_url and settings.database_url
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=5, command_timeout=60)
        producer = await start_producer(settings)
        # A fetch takes a slice of every partition rather than a megabyte of one: a batch then holds
        # the same stretch of time from each, as the flows produced it, so the accounts whose derived
        # columns it recomputes are the few that stretch touched.
        consumer = await start_group_consumer(
            settings,
            self.topics,
            "sink",
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            fetch_max_wait_ms=settings.sink_fetch_wait_ms,
        )
        reconciler = asyncio.create_task(Reconciler(settings, pool, producer).run_forever())
        reconciler.add_done_callback(self._reconciler_done)
        observer = self._observe(pool, producer, consumer)
        log.info("sink consuming %s", ", ".join(self.topics))
        pending: asyncio.Task | None = None
        reading = LoopFailures(log, "reading a batch", RETRY_DELAYS, outage=is_outage, fatal_after=FATAL_AFTER)
        try:
            while not self._stopping.is_set():
                try:
                    batch = await self._collect(consumer)
                except Exception as exc:  # noqa: BLE001 - _collect has rewound the consumer: nothing is skipped
                    await self._pause(reading.failed(exc))
                    continue
                reading.succeeded()
                # Decoding (above) overlapped the previous batch's write; batches are written one after another.
                if pending is not None and (batch is not None or pending.done()):
                    await pending
                    pending = None
                if batch is not None:
                    pending = asyncio.create_task(self._settle(batch, pool, producer, consumer))
            if pending is not None:
                await pending
        except Stopped:
            log.info("sink stopped during a database outage; the batch will be read again")
        except LoopBroken:
            log.critical("beat sink cannot go on; exiting", exc_info=True)
            self.failed = True
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
            if observer is not None:
                observer.cancel()
            reconciler.cancel()
            await consumer.stop()
            await producer.stop()
            await pool.close()
        return 1 if self.failed else 0

    def _observe(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer
    ) -> asyncio.Task | None:
        """Readiness and lag on the metrics port, sampled beside the batches."""
        if self._health is None:
            return None
        probes = {"postgres": lambda: pool.fetchval("SELECT 1"), "broker": producer.client.force_metadata_update}
        gauge = LagGauge(self.settings.group("sink"))
        return asyncio.create_task(observe_consumer(self._health, gauge, consumer, probes))

    async def _collect(self, consumer: AIOKafkaConsumer) -> Batch | None:
        records: list[ConsumerRecord] = []
        try:
            return await self._gather(consumer, records)
        except BaseException:
            # The records read so far are neither written nor committed: the next read starts at them again,
            # or the batch after them would commit past them.
            firsts: dict[TopicPartition, int] = {}
            for record in records:
                firsts.setdefault(TopicPartition(record.topic, record.partition), record.offset)
            for tp, offset in firsts.items():
                if tp in consumer.assignment():
                    consumer.seek(tp, offset)
            raise

    async def _gather(self, consumer: AIOKafkaConsumer, records: list[ConsumerRecord]) -> Batch | None:
        loop = asyncio.get_running_loop()
        size = self.settings.sink_batch_size
        offsets: dict[TopicPartition, int] = {}
        deadline: float | None = None
        while len(records) < size and not self._stopping.is_set():
            timeout = IDLE_POLL if deadline is None else deadline - loop.time()
            if timeout < 0:
                break
            polled = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=size - len(records))
            for tp, part in polled.items():
                if part:
                    records.extend(part)
                    offsets[tp] = part[-1].offset + 1
            if not records:
                return None
            if deadline is None:
                deadline = loop.time() + self.settings.sink_batch_timeout
        if not records:
            return None
        decoded = decode((self.topics[record.topic], record.value) for record in records)
        return Batch(records, offsets, decoded)

    async def _process(
        self, batch: Batch, pool: asyncpg.Pool, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer
    ) -> None:
        links = links_of(record.headers for record in batch.records)
        with TRACER.start_as_current_span("sink write", links=links, attributes={"beat.records": len(batch.records)}):
            written = await self._write(batch.decoded, pool)
        await self._after_commit(batch, written, pool, producer)
        await self._commit(consumer, batch.offsets)
        _count(batch, written)
        if batch.decoded.poison or written.poison:
            log.warning(
                "batch of %d records: %d dead-lettered",
                len(batch.records),
                len(batch.decoded.poison) + len(written.poison),
            )

    async def _settle(
        self, batch: Batch, pool: asyncpg.Pool, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer
    ) -> None:
        """Process ``batch`` until it is committed. Outages are waited out inside ``_process``; any other failure
        is logged (its traceback once), waited out and tried again (every write is idempotent), and ends the
        sink (``LoopBroken``) when it keeps happening."""
        failures = LoopFailures(
            log, f"a batch of {len(batch.records)} records", RETRY_DELAYS, outage=is_outage, fatal_after=FATAL_AFTER
        )
        while True:
            try:
                await self._process(batch, pool, producer, consumer)
            except Stopped:
                raise
            except Exception as exc:  # noqa: BLE001 - nothing one batch does may end the sink at once
                await self._pause(failures.failed(exc))
                continue
            failures.succeeded()
            return

    async def _retry_wait(self, failures: int, what: str, exc: BaseException) -> None:
        wait = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
        # The first failure with its traceback; its retries, an outage's minutes, one line each.
        log.warning(
            "%s (%s: %s); retrying in %ss", what, type(exc).__name__, exc, wait, exc_info=exc if failures == 0 else None
        )
        await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``; raise Stopped at once if the sink is asked to stop meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise Stopped

    async def _write(self, decoded: Decoded, pool: asyncpg.Pool) -> Written:
        failures = 0
        while True:
            try:
                async with pool.acquire() as conn:
                    return await write_batch(conn, decoded)
            except OUTAGE_ERRORS as exc:
                if not is_outage(exc):
                    raise  # a schema the sink does not fit: _settle retries a few times, then the sink exits
                # An outage blocks the sink: the batch is retried, never dead-lettered or committed.
                await self._retry_wait(failures, "database unavailable", exc)
                failures += 1

    async def _after_commit(
        self, batch: Batch, written: Written, pool: asyncpg.Pool, producer: AIOKafkaProducer
    ) -> None:
        dead = [*batch.decoded.poison, *written.poison]
        failures = 0
        while True:
            try:
                await self._dead_letter(producer, batch.records, dead)
                placed = await produce_requests(producer, self.settings, written.asset_requests)
                break
            except KafkaError as exc:
                if not is_outage(exc):
                    raise  # a record the producer refuses: _settle retries a few times, then the sink exits
                await self._retry_wait(failures, "broker unavailable after a commit", exc)
                failures += 1
        try:
            await record_enqueued(pool, placed)
        except OUTAGE_ERRORS as exc:
            # They are on the broker; the reconciler would produce them again under the same ids.
            log.warning("could not mark %d asset requests enqueued: %s", len(written.asset_requests), exc)

    async def _dead_letter(
        self, producer: AIOKafkaProducer, records: list[ConsumerRecord], dead: list[tuple[int, ErrorInfo]]
    ) -> None:
        await send_batched(
            producer,
            self.settings.topic(names.DEAD_LETTER),
            [
                (
                    records[origin].key,
                    dead_letter(
                        RawRecord.from_kafka(records[origin]), error, max_bytes=self.settings.max_message_bytes
                    ).to_bytes(),
                )
                for origin, error in dead
            ],
        )

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions; their records are written and will be re-read (idempotently).
            log.info("commit skipped after rebalance: %s", exc)


def _count(batch: Batch, written: Written) -> None:
    """A committed batch in the metrics: its size, the rows per table, its dead letters by reason."""
    SINK_BATCH_SIZE.observe(len(batch.records))
    decoded = batch.decoded
    if decoded.statuses:
        child(SINK_ROWS, "scrape_request_event").inc(len(decoded.statuses))
    if decoded.letters:
        child(SINK_ROWS, "dead_letter").inc(len(decoded.letters))
    for table, rows in decoded.rows.items():
        if rows:
            child(SINK_ROWS, table.name).inc(len(rows))
    for _, error in (*decoded.poison, *written.poison):
        child(DEAD_LETTERS, error.type).inc()


def run_sink(settings: Settings, health: Health | None = None) -> int:
    """Run the sink until SIGTERM/SIGINT; the process's exit status."""

    async def main() -> int:
        runner = SinkRunner(settings, health)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.stop)
        return await runner.run()

    return asyncio.run(main())
