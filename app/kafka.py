"""The plain aiokafka producer used outside Faust apps (facade, CLI, sink, reconciler)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from app.settings import Settings


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    assert settings.kafka_url
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_url, acks="all", linger_ms=2)
    await producer.start()
    return producer
