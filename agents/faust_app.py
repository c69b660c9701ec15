"""The Faust app factory: one app (and consumer group) per role, tuned for Tansu and for safety."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Set
from typing import Any

import faust
from faust.types import TP

from agents import offsets
from core.kafka_security import faust_credentials
from core.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, role: str) -> faust.App:
    assert settings.kafka_url, "the broker address must be resolved before the app is built"
    datadir = settings.data_dir / "faust" / role
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.group(role),
        # One URL per bootstrap server: faust reads a comma-separated list as one host.
        broker=[f"kafka://{server}" for server in settings.kafka_url.split(",")],
        broker_credentials=faust_credentials(settings),
        autodiscover=False,
        web_enabled=False,
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_commit_interval=1.0,
        topic_partitions=settings.request_partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        # A full buffer pauses only that partition's fetching (faust's pressure
        # mechanism), so a stalled flow cannot block the other flows' topics.
        # The pressure threshold (maxsize / 1.25) leaves room for one whole poll.
        stream_buffer_maxsize=1024,
        broker_max_poll_records=200,
        producer_acks=-1,
        producer_linger=0.002,
        # Beat sizes what it produces to max_message_bytes (faust's own default is below it).
        producer_max_request_size=settings.max_message_bytes,
        loghandlers=[],
    )
    offsets.install(app)
    app.on_partitions_assigned.connect(_log_assignment)
    return app


def owned_partitions(assigned: Set[TP]) -> str:
    """``topic[0,2,4] other[1]``: what a member of the group owns, sorted."""
    by_topic: defaultdict[str, list[int]] = defaultdict(list)
    for tp in assigned:
        by_topic[tp.topic].append(tp.partition)
    return " ".join(f"{topic}[{','.join(map(str, sorted(by_topic[topic])))}]" for topic in sorted(by_topic))


async def _log_assignment(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    assigned: Set[TP] = args[0]  # faust sends the new assignment as the signal's one argument
    # With several processes in one group (`beat worker --processes N`), which one owns what; the pid
    # tells them apart in a shared log.
    log.info("pid %d owns %d partitions: %s", os.getpid(), len(assigned), owned_partitions(assigned) or "none")
