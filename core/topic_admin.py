"""Create Beat's topics up front, so producers never depend on broker auto-creation, and put them back when
the broker has lost them.

An in-memory broker (the embedded Tansu) restarted keeps nothing: until the topics exist again, Tansu
acknowledges records produced to them and keeps none where a reader can see them, and a client asking
for a missing topic by name gets it created with the broker's default partition count. ``TopicKeeper``
looks at the broker's topic list (a metadata request for every topic, which creates none) and creates
whatever is missing, so that window stays short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import TopicAlreadyExistsError

from core.kafka_security import client_options
from core.settings import Settings
from topics import names
from topics.flows import FLOWS

log = logging.getLogger(__name__)

# A partition is what one worker process owns of a flow. Every partition costs the broker and each consumer
# a fetch slot even while idle (36 flows x 8 partitions kept the broker at about 0.2 cores doing nothing),
# so a flow's request topic gets one per CONCURRENCY_PER_PARTITION of its concurrency, and at least
# MIN_REQUEST_PARTITIONS so that two worker processes share even a quiet flow.
CONCURRENCY_PER_PARTITION = 5
MIN_REQUEST_PARTITIONS = 2


def request_partitions(settings: Settings, flow: str) -> int:
    """The partitions of a flow's request topic: sized to its concurrency, at most ``request_partitions``."""
    concurrency = settings.concurrency_of(FLOWS[flow])
    wanted = max(MIN_REQUEST_PARTITIONS, math.ceil(concurrency / CONCURRENCY_PER_PARTITION))
    return min(settings.request_partitions, wanted)


def all_topics(settings: Settings, flows: Iterable[str]) -> dict[str, int]:
    """Every topic name (prefixed) with its partition count."""
    topics = {}
    for flow in flows:
        topics[settings.topic(names.scrape_topic(flow))] = request_partitions(settings, flow)
        topics[settings.topic(names.priority_topic(flow))] = settings.priority_partitions
    for name in (names.STATUS, *names.LOG_TOPICS, names.DEAD_LETTER, names.TRACE_LOG):
        topics[settings.topic(name)] = settings.log_partitions
    for tier in settings.retry_tiers:
        topics[settings.topic(names.retry_topic(tier))] = settings.request_partitions
    return topics


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """The topic-level configs Beat sets on a (prefixed) topic: ``min.insync.replicas`` and its kind's
    ``retention.ms``, where configured."""
    configs = {}
    if settings.topic_min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(settings.topic_min_insync_replicas)
    retention = settings.topic_retention_ms.get(names.topic_kind(name.removeprefix(settings.topic_prefix)))
    if retention is not None:
        configs["retention.ms"] = str(retention)
    return configs


def new_topic(settings: Settings, name: str, partitions: int) -> NewTopic:
    return NewTopic(name, partitions, settings.topic_replication, topic_configs=topic_configs(settings, name))


async def ensure_topics(bootstrap: str, topics: dict[str, int], settings: Settings | None = None) -> list[str]:
    """Create those of ``topics`` the broker does not have; the names created. With ``settings``, through its
    security options and with its replication and topic configs (every caller outside the tests passes them)."""
    settings = settings or Settings(kafka_url=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [new_topic(settings, name, partitions) for name, partitions in topics.items() if name not in existing]
        if not missing:
            return []
        with contextlib.suppress(TopicAlreadyExistsError):  # another process created it first
            await admin.create_topics(missing)
        log.info("created %d topics", len(missing))
        return [topic.name for topic in missing]
    finally:
        await admin.close()


class TopicKeeper:
    """Checks that the broker still has Beat's topics and creates any it lost."""

    def __init__(self, settings: Settings, client: AIOKafkaClient, topics: dict[str, int]) -> None:
        self._settings = settings
        self._client = client
        self._topics = topics
        self._short: set[str] = set()
        # One check at a time: two would both find the topics missing and both create them.
        self._checking = asyncio.Lock()

    async def check(self) -> list[str]:
        """The topics created because the broker did not have them (none, almost always)."""
        async with self._checking:
            return await self._check()

    async def _check(self) -> list[str]:
        metadata = await self._client.fetch_all_metadata()
        present = metadata.topics()
        self._warn_short(metadata, present)
        missing = {name: partitions for name, partitions in self._topics.items() if name not in present}
        if not missing:
            return []
        created = await ensure_topics(self._settings.kafka_url or "", missing, self._settings)
        log.warning(
            "the broker had lost %d of Beat's topics (an in-memory broker restarted?); created %d again",
            len(missing),
            len(created),
        )
        return created

    def _warn_short(self, metadata: ClusterMetadata, present: set[str]) -> None:
        # A client that asked for a missing topic by name got it with the broker's default partition count,
        # which cannot be raised here (Tansu has no CreatePartitions). Said once per topic.
        for name in present & self._topics.keys():
            count = len(metadata.partitions_for_topic(name) or ())
            if count < self._topics[name] and name not in self._short:
                self._short.add(name)
                log.warning(
                    "topic %s has %d partitions, not %d: it was created by a client's request before "
                    "Beat could create it",
                    name,
                    count,
                    self._topics[name],
                )
