"""A broker restart loses no accepted request (issue 12), on a Tansu of each test's own restarted empty on its
port, as the embedded broker is: the reconciler reads each waiting request's record back where it was produced,
leaves a backlog alone, and produces again exactly what the restart lost; the sink and the facade carry on."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import psutil
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from app.embedded import EmbeddedBroker
from core.kafka import start_producer
from core.outage import is_outage
from core.reconciler import Reconciler
from core.requests import prepare, submit
from core.settings import load_settings
from tests.conftest import create_topics
from tests.outage_support import FLOW, own_stack, seeded_database
from tests.support import (
    ROOT,
    EventCollector,
    beat_env,
    failures,
    unique,
    wait_terminal,
)
from topics import names


@pytest.fixture
def own_broker(session_dir) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(session_dir / f"broker-{uuid.uuid4().hex[:6]}")
    broker.start()
    yield broker
    broker.stop()


@pytest_asyncio.fixture
async def database() -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with seeded_database("beat_restart") as (url, pool):
        yield url, pool


async def _records(bootstrap: str, topic: str) -> list[bytes]:
    """Every record on ``topic``, read up to each partition's high watermark."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        values: list[bytes] = []
        deadline = time.monotonic() + 10
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values += [record.value for record in records]
            ends = [consumer.highwater(tp) for tp in partitions]
            positions = [await consumer.position(tp) for tp in partitions]
            if None not in ends and all(position >= end for position, end in zip(positions, ends, strict=True)):
                return values
            assert time.monotonic() < deadline, "the topic was not read to its end"
    finally:
        await consumer.stop()


async def _pass_once_reachable(reconciler: Reconciler) -> dict[str, int]:
    """A reconciler pass, tried again while the restarted broker is not reachable yet (as the sink's loop does)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return await reconciler.run_once()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_a_backlog_is_left_alone_and_what_a_restart_lost_is_produced_once(own_broker, database):
    url, pool = database
    prefix = f"probe{uuid.uuid4().hex[:6]}."
    settings = load_settings(
        kafka_url=own_broker.bootstrap,
        database_url=url,
        topic_prefix=prefix,
        broker_durable=False,
        reconcile_pending_after=0,
    )
    await create_topics({"BEAT_KAFKA_URL": own_broker.bootstrap, "BEAT_TOPIC_PREFIX": prefix})
    producer = await start_producer(settings)
    try:
        ids = [await submit(pool, producer, settings, prepare(FLOW, {"handle": unique("backlog")})) for _ in range(20)]
        placed = await pool.fetchval(
            "SELECT count(*) FROM scrape_request_log WHERE id = ANY($1) AND enqueued AND enqueued_offset IS NOT NULL",
            ids,
        )
        assert placed == 20
        topic = settings.topic(names.scrape_topic(FLOW))
        reconciler = Reconciler(settings, pool, producer)

        # No worker: all twenty wait in their topic, past pending_after. Each is read back, found, and left alone.
        assert (await reconciler.run_once())["reproduced"] == 0
        assert (await reconciler.run_once())["reproduced"] == 0
        assert sorted(Counter(await _records(own_broker.bootstrap, topic)).values()) == [1] * 20

        own_broker.restart()
        # The pass puts the topics back first, then produces each lost request again, and only once.
        assert (await _pass_once_reachable(reconciler))["reproduced"] == 20
        assert (await reconciler.run_once())["reproduced"] == 0
        on_topic = [value.decode() for value in await _records(own_broker.bootstrap, topic)]
        assert len(on_topic) == 20 and all(any(rid in value for value in on_topic) for rid in ids)
        statuses = await pool.fetch("SELECT DISTINCT status FROM scrape_request_log WHERE id = ANY($1)", ids)
        assert [row["status"] for row in statuses] == ["PENDING"]
    finally:
        await producer.stop()


async def _topics_back(bootstrap: str, wanted: set[str], timeout: float = 20) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while not wanted <= set(await admin.list_topics()):
            assert time.monotonic() < deadline, "the sink did not give the broker its topics back"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _submit_all(api_url: str, count: int, tag: str) -> list[str]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        answers = [
            await client.post("/requests", json={"flow": FLOW, "params": {"handle": f"{tag}_{n}"}})
            for n in range(count)
        ]
    assert [answer.status_code for answer in answers] == [202] * count, [
        a.text for a in answers if a.status_code != 202
    ]
    return [answer.json()["id"] for answer in answers]


async def test_a_broker_restart_with_100_accepted_requests_loses_none_and_runs_none_twice(
    own_broker, database, session_dir
):
    """100 requests accepted by the facade wait in their topic (no worker yet) when the broker restarts empty. The
    sink puts the topics back and produces the 100 again; a worker started afterwards completes each once, and the
    facade and the sink go on without a restart."""
    url, pool = database
    async with own_stack(own_broker.bootstrap, url, session_dir, "restart", broker_durable="false") as stack:
        sink = stack.spawn("sink")
        api = await stack.api()
        accepted = await _submit_all(stack.api_url, 100, unique("restart"))

        own_broker.restart()
        prefix = stack.env["BEAT_TOPIC_PREFIX"]
        trace_topic = prefix + names.TRACE_LOG
        await _topics_back(own_broker.bootstrap, {trace_topic, prefix + names.scrape_topic(FLOW)})
        traces = EventCollector(own_broker.bootstrap, [trace_topic])
        await traces.start()
        try:
            stack.spawn("worker", "--flows", FLOW)
            statuses = await wait_terminal(pool, accepted, timeout=120)
            assert Counter(statuses.values()) == {"COMPLETE": 100}, (await failures(pool, accepted), stack.tails())

            # Submitted after the restart, through the same facade and sink.
            later = await _submit_all(stack.api_url, 10, unique("after"))
            assert Counter((await wait_terminal(pool, later, timeout=60)).values()) == {"COMPLETE": 10}

            # Each request was worked on once: one provider call each (the sandbox fails none).
            calls = Counter()
            for rid in accepted + later:
                calls[len(await traces.events(rid, trace_topic, at_least=1, timeout=10))] += 1
            assert calls == {1: 110}, calls
        finally:
            await traces.stop()
        assert sink.alive() and api.alive(), stack.tails()
        reproduced = sink.log_path.read_text(errors="replace").count("again: the broker no longer has its record")
        assert reproduced >= 100, stack.tails()


def test_beat_up_starts_its_broker_again_with_the_topics_when_it_dies(tmp_path):
    """The embedded broker killed under ``beat up``: it is started again on its port, with Beat's topics, and a
    submission goes through."""
    data_dir = tmp_path / "beat"
    env = beat_env(data_dir=str(data_dir), api_port="0", broker_session_timeout="6", log_level="INFO")
    log_path = tmp_path / "up.log"
    with open(log_path, "ab") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        endpoints = data_dir / "endpoints.json"
        deadline = time.monotonic() + 120
        while not endpoints.exists():
            assert up.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        bootstrap = json.loads(endpoints.read_text())["kafka"]
        [tansu] = [p for p in psutil.Process(up.pid).children(recursive=True) if "--storage-engine" in p.cmdline()]
        tansu.kill()
        tansu.wait(10)

        status_topic = names.STATUS  # `beat up` runs without a topic prefix
        deadline = time.monotonic() + 30
        while status_topic not in asyncio.run(_topic_names(bootstrap)):
            assert up.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert "the embedded broker exited; starting it again" in log_path.read_text()
        submitted = subprocess.run(
            [sys.executable, "-m", "app.cli", "submit", FLOW, "handle=after_broker_death"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert submitted.returncode == 0, submitted.stderr
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(120) == 0, log_path.read_text()[-3000:]


async def _topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        return set(await admin.list_topics())
    except KafkaError:
        return set()  # not listening yet
    finally:
        await admin.close()
