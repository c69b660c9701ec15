"""The embedded broker and database, run for real in a temporary data dir."""

from __future__ import annotations

import asyncio
import json
import socket

import psutil
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    EmbeddedServiceError,
    write_endpoints,
)


@pytest.fixture
def broker(tmp_path):
    broker = EmbeddedBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


async def test_broker_round_trip(broker, tmp_path):
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("beat.test", num_partitions=2, replication_factor=1)])
        [described] = await admin.describe_topics(["beat.test"])
        assert len(described["partitions"]) == 2
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        sent = await producer.send_and_wait("beat.test", b"hello", key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        "beat.test",
        bootstrap_servers=broker.bootstrap,
        group_id="beat-test",
        auto_offset_reset="earliest",
        # Tansu holds a group join for half the session timeout.
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 15)
    finally:
        await consumer.stop()
    assert (record.key, record.value, record.partition) == (b"k", b"hello", sent.partition)
    assert (tmp_path / "logs" / "tansu.log").read_text()


def test_broker_stop_ends_the_process(tmp_path):
    broker = EmbeddedBroker(tmp_path)
    broker.start()
    pid = broker.pid
    broker.stop()
    assert broker.pid is None
    assert not psutil.pid_exists(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=1).close()


def test_broker_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = EmbeddedBroker(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(EmbeddedServiceError, match="already in use"):
            broker.start()
    assert broker.pid is None


def test_postgres_data_survives_restart(tmp_path):
    first = EmbeddedPostgres(tmp_path)
    first.start()
    try:
        assert first.url == f"postgresql://postgres@127.0.0.1:{first.port}/beat"
        with psycopg.connect(first.url) as conn:
            conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO kept VALUES (1, 'still here')")
    finally:
        first.stop()
    assert first.pid is None

    second = EmbeddedPostgres(tmp_path)
    second.start()
    try:
        assert second.url == first.url, "the previous port is reused when free"
        with psycopg.connect(second.url) as conn:
            assert conn.execute("SELECT note FROM kept WHERE id = 1").fetchone() == ("still here",)
    finally:
        second.stop()
    assert "ready to accept connections" in (tmp_path / "logs" / "postgres.log").read_text()


def test_postgres_takes_over_a_server_left_running(tmp_path):
    """A killed `beat up` leaves its server running; the next start must not be blocked by it."""
    leftover = EmbeddedPostgres(tmp_path)
    leftover.start()
    leftover_pid = leftover.pid
    fresh = EmbeddedPostgres(tmp_path)
    try:
        fresh.start()
        assert fresh.url == leftover.url
        assert not psutil.pid_exists(leftover_pid) or psutil.Process(leftover_pid).status() == psutil.STATUS_ZOMBIE
        with psycopg.connect(fresh.url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("beat",)
    finally:
        fresh.stop()
        leftover.stop()


def test_write_endpoints(tmp_path):
    data_dir = tmp_path / "beat"
    path = write_endpoints(data_dir, {"kafka": "127.0.0.1:1", "database": "postgresql://x"})
    assert path == data_dir / "endpoints.json"
    assert json.loads(path.read_text()) == {"kafka": "127.0.0.1:1", "database": "postgresql://x"}

    write_endpoints(data_dir, {"kafka": "127.0.0.1:2"})
    assert json.loads(path.read_text()) == {"kafka": "127.0.0.1:2"}
    assert [p.name for p in data_dir.iterdir()] == ["endpoints.json"]
