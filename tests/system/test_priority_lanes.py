"""Priority lanes: every producing path routes a request by its priority, the reconciler finds a request on
the lane it was produced to, and a worker drains a flow's priority lane ahead of a bulk backlog."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.lanes import FlowSlots
from agents.retry import RetryConsumer, due_header
from core.reconciler import Reconciler
from core.redrive import reopen
from core.requests import prepare, produce_requests, submit
from core.settings import Settings, load_settings
from providers.sandbox import SandboxConfig
from tests.conftest import create_topics, isolated
from tests.support import migrated_database, unique, wait_terminal
from tests.support import produce_requests as produce_raw
from topics import names

FLOW = "refresh_profile_basic"
BULK, ON_DEMAND = 1, 10


async def ids_on(bootstrap: str, topic: str) -> set[str]:
    """The request ids of every record on ``topic`` so far."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: set[str] = set()
        quiet = 0
        while quiet < 3:
            batches = await consumer.getmany(timeout_ms=300)
            records = [record for batch in batches.values() for record in batch]
            quiet = 0 if records else quiet + 1
            found.update(json.loads(record.value)["id"] for record in records)
        return found
    finally:
        await consumer.stop()


class Lanes:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.bulk = settings.topic(names.scrape_topic(FLOW))
        self.priority = settings.topic(names.priority_topic(FLOW))

    def request(self, priority: int):
        return prepare(FLOW, {"handle": unique("lane")}, priority=priority)

    async def enqueued_topic(self, request_id: str) -> str:
        return await self.pool.fetchval("SELECT enqueued_topic FROM scrape_request_log WHERE id = $1", request_id)


@pytest_asyncio.fixture
async def lanes(broker) -> AsyncIterator[Lanes]:
    """A topic prefix and a database of their own, and no worker: what is produced stays where it landed."""
    prefix = f"lanes{uuid.uuid4().hex[:6]}."
    with migrated_database("beat_lanes") as url:
        settings = load_settings(kafka_url=broker, database_url=url, topic_prefix=prefix, reconcile_pending_after=0)
        await create_topics({"BEAT_KAFKA_URL": broker, "BEAT_TOPIC_PREFIX": prefix})
        pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            yield Lanes(settings, pool, producer)
        finally:
            await producer.stop()
            await pool.close()


async def test_submit_and_batches_route_by_priority(lanes: Lanes, broker) -> None:
    assert lanes.settings.bulk_priority == BULK  # the legacy default priority is bulk
    bulk_id = await submit(lanes.pool, lanes.producer, lanes.settings, lanes.request(BULK))
    urgent_id = await submit(lanes.pool, lanes.producer, lanes.settings, lanes.request(ON_DEMAND))
    batch = [lanes.request(p) for p in (BULK, ON_DEMAND, BULK + 1, 0)]
    placed = await produce_requests(lanes.producer, lanes.settings, batch)

    by_id = {p.request_id: p.topic for p in placed}
    assert [by_id[r.id] for r in batch] == [lanes.bulk, lanes.priority, lanes.priority, lanes.bulk]
    assert await lanes.enqueued_topic(bulk_id) == lanes.bulk
    assert await lanes.enqueued_topic(urgent_id) == lanes.priority
    assert await ids_on(broker, lanes.priority) == {urgent_id, batch[1].id, batch[2].id}
    assert await ids_on(broker, lanes.bulk) == {bulk_id, batch[0].id, batch[3].id}


async def test_a_reopened_request_goes_back_to_its_lane(lanes: Lanes, broker) -> None:
    urgent_id = await submit(lanes.pool, lanes.producer, lanes.settings, lanes.request(ON_DEMAND))
    await lanes.pool.execute(
        "UPDATE scrape_request_log SET status = 'FAILED', status_at = now() WHERE id = $1",
        urgent_id,
    )
    await reopen(lanes.pool, lanes.producer, lanes.settings, urgent_id)
    assert await lanes.enqueued_topic(urgent_id) == lanes.priority
    assert await ids_on(broker, lanes.bulk) == set()


async def test_the_retry_consumer_hands_a_request_back_to_its_lane(lanes: Lanes, broker) -> None:
    tier = lanes.settings.topic(names.retry_topic(next(iter(lanes.settings.retry_tiers))))
    bulk, urgent = lanes.request(BULK), lanes.request(ON_DEMAND)
    for request in (bulk, urgent):
        await lanes.producer.send_and_wait(tier, request.to_bytes(), headers=[due_header(time.time())])

    async def broken(exc: Exception) -> None:
        raise AssertionError(f"the retry consumer broke: {exc}")

    retries = RetryConsumer(lanes.settings, broken)
    await retries.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            on_priority, on_bulk = await ids_on(broker, lanes.priority), await ids_on(broker, lanes.bulk)
            if on_priority and on_bulk:
                break
            await asyncio.sleep(0.5)
    finally:
        await retries.stop()
    assert (on_priority, on_bulk) == ({urgent.id}, {bulk.id})


async def test_the_reconciler_finds_a_waiting_request_on_its_priority_lane(lanes: Lanes, broker) -> None:
    """Waiting unconsumed on the lane it was produced to, the request is neither lost nor produced again."""
    urgent_id = await submit(lanes.pool, lanes.producer, lanes.settings, lanes.request(ON_DEMAND))
    reconciler = Reconciler(lanes.settings, lanes.pool, lanes.producer)
    counts = await reconciler.run_once()
    assert (counts["reproduced"], counts["enqueued"]) == (0, 0)
    assert await ids_on(broker, lanes.priority) == {urgent_id}


async def test_the_facade_puts_on_demand_work_on_the_priority_lane(stack, pool) -> None:
    """POST /requests without a priority is on demand; a bulk caller names its priority; the legacy route,
    which batch DAGs call, keeps legacy's default of 1."""
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        on_demand = await client.post("/requests", json={"flow": FLOW, "params": {"handle": unique("od")}})
        bulk = await client.post("/requests", json={"flow": FLOW, "params": {"handle": unique("bk")}, "priority": 1})
        legacy = await client.post(f"/scrape_request_log/flow/{FLOW}", json={"params": {"handle": unique("lg")}})
    ids = [on_demand.json()["id"], bulk.json()["id"], legacy.json()["scrape_id"]]
    assert set((await wait_terminal(pool, ids, timeout=60)).values()) == {"COMPLETE"}
    rows = {
        row["id"]: (row["priority"], row["enqueued_topic"])
        for row in await pool.fetch(
            "SELECT id, priority, enqueued_topic FROM scrape_request_log WHERE id = ANY($1)", ids
        )
    }
    bulk_topic, lane = stack.topic(names.scrape_topic(FLOW)), stack.topic(names.priority_topic(FLOW))
    assert [rows[i] for i in ids] == [(10, lane), (BULK, bulk_topic), (BULK, bulk_topic)]


async def test_a_freed_slot_goes_to_a_waiting_priority_record_first() -> None:
    slots = FlowSlots(1)
    order: list[str] = []

    async def run(name: str, urgent: bool) -> None:
        async with slots.slot(urgent):
            order.append(name)
            await asyncio.sleep(0.01)

    first = asyncio.ensure_future(run("bulk0", False))
    await asyncio.sleep(0)
    bulk = [asyncio.ensure_future(run(f"bulk{n}", False)) for n in (1, 2)]
    gone = asyncio.ensure_future(run("cancelled", True))
    await asyncio.sleep(0)
    urgent = asyncio.ensure_future(run("urgent", True))
    gone.cancel()
    await asyncio.gather(first, urgent, *bulk)
    assert order == ["bulk0", "urgent", "bulk1", "bulk2"]
    assert slots.free == 1  # the cancelled waiter took none with it


async def test_a_worker_drains_the_priority_lane_ahead_of_a_bulk_backlog(broker, database_url, session_dir, pool):
    concurrency, latency = 2, 0.3
    async with isolated(
        broker,
        database_url,
        session_dir,
        SandboxConfig(latency=latency),
        "lanew",
        flow_concurrency=f'{{"{FLOW}": {concurrency}}}',
    ) as (prefix, spawn, _):
        spawn("worker", "--flows", FLOW, "--processes", "1")
        warm = await produce_raw(broker, f"{prefix}{names.scrape_topic(FLOW)}", [{"params": {"handle": unique("w")}}])
        assert await wait_terminal(pool, warm, timeout=60) == {warm[0]: "COMPLETE"}

        backlog = [{"params": {"handle": unique("bulk")}} for _ in range(30)]
        bulk_ids = await produce_raw(broker, f"{prefix}{names.scrape_topic(FLOW)}", backlog)
        await asyncio.sleep(4 * latency)  # the backlog is under way
        urgent_body = [{"params": {"handle": unique("urgent")}, "priority": ON_DEMAND} for _ in range(4)]
        arrived = time.time()
        urgent_ids = await produce_raw(broker, f"{prefix}{names.priority_topic(FLOW)}", urgent_body)

        assert set((await wait_terminal(pool, urgent_ids, timeout=60)).values()) == {"COMPLETE"}
        last_urgent = await pool.fetchval(
            "SELECT max(scraped_at) FROM scrape_request_log WHERE id = ANY($1)", urgent_ids
        )
        # A bulk request the worker has not started has no row yet.
        finished = [
            row["scraped_at"].timestamp()
            for row in await pool.fetch(
                "SELECT scraped_at FROM scrape_request_log WHERE id = ANY($1) AND scraped_at <= $2",
                bulk_ids,
                last_urgent,
            )
        ]
        meanwhile = [at for at in finished if at > arrived]
        # Only bulk records already holding a slot (or taking one before the lane's records were fetched) finish
        # while the priority lane drains; the rest of the backlog waits.
        assert len(meanwhile) <= 2 * concurrency, (arrived, meanwhile)
        assert len(bulk_ids) - len(finished) >= 15, (arrived, finished)
        assert set((await wait_terminal(pool, bulk_ids, timeout=90)).values()) == {"COMPLETE"}
