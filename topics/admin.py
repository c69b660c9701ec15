"""Create Beat's topics up front, so producers never depend on broker auto-creation."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.settings import Settings
from topics import names

log = logging.getLogger(__name__)


def all_topics(settings: Settings, flows: Iterable[str]) -> dict[str, int]:
    """Every topic name (prefixed) with its partition count."""
    topics = {settings.topic(names.scrape_topic(flow)): settings.request_partitions for flow in flows}
    for name in (names.STATUS, *names.LOG_TOPICS, names.DEAD_LETTER, names.TRACE_LOG):
        topics[settings.topic(name)] = settings.log_partitions
    for tier in settings.retry_tiers:
        topics[settings.topic(names.retry_topic(tier))] = settings.request_partitions
    return topics


async def ensure_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, 1) for name, partitions in topics.items() if name not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(missing)
        except TopicAlreadyExistsError:
            pass  # another process created it first
        log.info("created %d topics", len(missing))
    finally:
        await admin.close()
