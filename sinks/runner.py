"""``beat sink``: batch consumers from Kafka into Postgres, plus the reconciler.

A plain aiokafka consumer group rather than Faust agents: it fetches thousands of
records per call (Faust caps a sink at ~11k msg/s here, environment.md). Offsets
are committed only after the batch's transaction commits; a database outage
blocks and retries the same batch; an undecodable record goes to the dead-letter
topic and the rest of its batch is written.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError

from app.kafka import start_producer
from app.settings import Settings
from sinks import instagram
from sinks.reconciler import Reconciler
from sinks.status import write_statuses
from sinks.upsert import upsert
from topics import names
from topics.dead_letter import RawRecord, dead_letter
from topics.models import ErrorInfo, Platform, PostLog, ProfileLog, RequestStatus

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 1, 2, 5, 10)


class Batch:
    """One poll's records, decoded and sorted by destination."""

    def __init__(self) -> None:
        self.statuses: list[RequestStatus] = []
        self.accounts: list[dict] = []
        self.posts: list[dict] = []
        self.poison: list[tuple[ConsumerRecord, ErrorInfo]] = []

    def add(self, topic: str, record: ConsumerRecord) -> None:
        try:
            if topic == names.STATUS:
                self.statuses.append(RequestStatus.model_validate_json(record.value))
            elif topic == names.PROFILE_LOG:
                event = ProfileLog.model_validate_json(record.value)
                if event.kind == "profile" and event.platform is Platform.INSTAGRAM:
                    self.accounts.append(instagram.account_row(event))
            elif topic == names.POST_LOG:
                event = PostLog.model_validate_json(record.value)
                if event.kind == "post" and event.platform is Platform.INSTAGRAM:
                    self.posts.append(instagram.post_row(event))
        except (ValidationError, ValueError, TypeError) as exc:
            self.poison.append((record, ErrorInfo(type=type(exc).__name__, message=str(exc)[:2000])))


class SinkRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = {settings.topic(t): t for t in (names.STATUS, names.PROFILE_LOG, names.POST_LOG)}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        settings = self.settings
        assert settings.kafka_url and settings.database_url
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=5)
        producer = await start_producer(settings)
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=settings.kafka_url,
            group_id=settings.group("sink"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
            max_poll_interval_ms=300_000,
        )
        await consumer.start()
        reconciler = asyncio.create_task(Reconciler(settings, pool, producer).run_forever())
        log.info("sink consuming %s", ", ".join(self.topics))
        try:
            while not self._stopping.is_set():
                polled = await consumer.getmany(
                    timeout_ms=int(settings.sink_batch_timeout * 1000) or 100, max_records=settings.sink_batch_size
                )
                if polled:
                    await self._handle(polled, pool, producer)
                    await self._commit(consumer, polled)
        finally:
            reconciler.cancel()
            await consumer.stop()
            await producer.stop()
            await pool.close()

    async def _handle(self, polled: dict[TopicPartition, list[ConsumerRecord]], pool: asyncpg.Pool,
                      producer) -> None:
        batch = Batch()
        for tp, records in polled.items():
            topic = self.topics[tp.topic]
            for record in records:
                batch.add(topic, record)
        for record, error in batch.poison:
            await producer.send_and_wait(self.settings.topic(names.DEAD_LETTER), dead_letter(RawRecord.from_kafka(record), error).to_bytes(),
                                         key=record.key)
        failures = 0
        while True:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await write_statuses(conn, batch.statuses)
                    await upsert(conn, instagram.ACCOUNT, batch.accounts)
                    await upsert(conn, instagram.POST, batch.posts)
                return
            except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                    asyncpg.CannotConnectNowError) as exc:
                # An outage blocks the sink: the batch is retried, never dropped or committed.
                wait = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                log.warning("database unavailable (%s); retrying the batch in %ss", type(exc).__name__, wait)
                await asyncio.sleep(wait)

    async def _commit(self, consumer: AIOKafkaConsumer, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in polled.items() if records}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions; their records are written and will be re-read (idempotently).
            log.info("commit skipped after rebalance: %s", exc)


def run_sink(settings: Settings) -> None:
    async def main() -> None:
        runner = SinkRunner(settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.stop)
        await runner.run()

    asyncio.run(main())
