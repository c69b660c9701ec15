"""What the broker has of Beat's topics, compared with what the settings plan (``beat topics check``), and the
start-up check that names a missing topic instead of failing obscurely later.

Partitions and the replication factor come from a metadata request, the topic configs Beat sets
(``min.insync.replicas``, ``retention.ms``) from DescribeConfigs. Only the configs Beat plans are compared: a
broker reports every other config too, with its own defaults.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from core.kafka_security import client_options
from core.settings import Settings
from core.topic_admin import new_topic


@dataclass(frozen=True)
class TopicState:
    partitions: int
    replication: int
    configs: dict[str, str]


@dataclass(frozen=True)
class TopicDifference:
    """One way a topic differs from the plan; ``what`` is ``missing``, ``partitions``, ``replication`` or a
    config's name."""

    topic: str
    what: str
    planned: str
    found: str

    def __str__(self) -> str:
        if self.what == "missing":
            return f"{self.topic}: missing"
        return f"{self.topic}: {self.what} is {self.found}, planned {self.planned}"


class MissingTopics(Exception):
    """Topics a process reads or writes are not on the broker; ``beat topics create`` creates them."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        shown = ", ".join(topics[:10]) + (f" and {len(topics) - 10} more" if len(topics) > 10 else "")
        super().__init__(f"the broker has no topic {shown}; create them with `beat topics create`")


async def describe(settings: Settings, topics: list[str]) -> dict[str, TopicState]:
    """The state of those of ``topics`` the broker has (a missing one is left out, and not created)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_url, **client_options(settings))
    await admin.start()
    try:
        # Listing first: a metadata request naming a missing topic may create it on a broker that auto-creates.
        present = sorted(set(topics) & set(await admin.list_topics()))
        if not present:
            return {}
        states: dict[str, TopicState] = {}
        for described in await admin.describe_topics(present):
            partitions = described["partitions"]
            replication = max((len(p["replicas"]) for p in partitions), default=0)
            states[described["topic"]] = TopicState(len(partitions), replication, {})
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
        for response in await admin.describe_configs(resources):
            for _code, _message, _type, name, entries in response.resources:
                if name in states:
                    states[name].configs.update({entry[0]: entry[1] for entry in entries})
        return states
    finally:
        await admin.close()


def differences(settings: Settings, planned: dict[str, int], found: dict[str, TopicState]) -> list[TopicDifference]:
    """Every way the broker's topics differ from the plan, in the plan's order."""
    result = []
    for name, partitions in planned.items():
        state = found.get(name)
        if state is None:
            result.append(TopicDifference(name, "missing", "", ""))
            continue
        wanted = new_topic(settings, name, partitions)
        if state.partitions != partitions:
            result.append(TopicDifference(name, "partitions", str(partitions), str(state.partitions)))
        if state.replication != wanted.replication_factor:
            result.append(TopicDifference(name, "replication", str(wanted.replication_factor), str(state.replication)))
        for key, value in (wanted.topic_configs or {}).items():
            if state.configs.get(key) != value:
                result.append(TopicDifference(name, key, value, state.configs.get(key) or "(unset)"))
    return result


async def check_topics(settings: Settings, planned: dict[str, int]) -> list[TopicDifference]:
    return differences(settings, planned, await describe(settings, list(planned)))


async def require_topics(settings: Settings, topics: list[str], *, wait: float = 0.0) -> None:
    """Raise MissingTopics naming those of ``topics`` the broker does not have ``wait`` seconds from now. An
    in-memory broker that restarted empty gets its topics back from the sink's reconciler within seconds, so a
    role started meanwhile waits for them rather than exit."""
    deadline = time.monotonic() + wait
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_url, **client_options(settings))
        await admin.start()
        try:
            present = set(await admin.list_topics())
        finally:
            await admin.close()
        missing = [name for name in topics if name not in present]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise MissingTopics(missing)
        await asyncio.sleep(1.0)
