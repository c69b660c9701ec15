"""The plain aiokafka clients used outside Faust apps: the producer (facade, CLI, sink, reconciler) and the
batch consumers of `beat sink` and `beat mirror`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.settings import Settings


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    assert settings.kafka_url
    # Beat bounds a record's key and value by max_message_bytes; the request adds a batch's headers.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_url, acks="all", linger_ms=2,
                                max_request_size=settings.max_message_bytes + 4096)
    try:
        await producer.start()
    except BaseException:
        # A producer that never connected still holds its client; unstopped, it is reported at exit.
        await producer.stop()
        raise
    return producer


async def start_group_consumer(settings: Settings, topics: Iterable[str], role: str, **options: Any) -> AIOKafkaConsumer:
    """A started consumer in the role's group that commits by hand, from the earliest offset, with the
    configured session and heartbeat (Tansu holds a join for half the session)."""
    assert settings.kafka_url
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_url,
        group_id=settings.group(role),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
        max_poll_interval_ms=300_000,
        **options,
    )
    await consumer.start()
    return consumer
