"""Beat's events as the legacy RabbitMQ messages (legacy-beat.md §8): exchange, routing key, payload.

Pure functions, one per event kind, and ``MIRRORED``, the registry from topic to
model and mapper that ``beat mirror`` subscribes from. Payload fields are the
legacy ones, name for name, so downstream consumers (event-grpc → ClickHouse)
do not change on cut-over. Deliberate differences from the legacy engine:

- ``event_id`` is Beat's own deterministic id, so a redelivered event carries the
  same id and consumers can drop the duplicate;
- timestamps are UTC in the legacy format ``%Y-%m-%d %H:%M:%S`` (the legacy
  engine wrote naive server-local time);
- the raw nested lists (recent_posts…) are not carried (contract §1);
- ``trace_log`` has no query string and no headers, so no key or token leaves Beat.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from topics import names
from topics.models import (
    ActivityLog,
    Model,
    OrderLog,
    PostLog,
    ProfileLog,
    RelationshipLog,
    RequestStatus,
    Status,
    TraceLog,
    TwoSidedEvent,
    YtActivityLog,
    YtRelationshipLog,
    deterministic_id,
)

BEAT_EXCHANGE = "beat.dx"
IDENTITY_EXCHANGE = "identity.dx"
EXCHANGES = (BEAT_EXCHANGE, IDENTITY_EXCHANGE)

LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Contract §1: the posts these lists held arrive as their own post events.
NOT_CARRIED = frozenset({"recent_posts", "recent_stories", "recent_videos"})

# TraceLog records no scheme; every real provider is called over HTTPS.
TRACE_SCHEME = "https"

# TraceLog does not say which worker made the call, so a trace names the host that mirrors it.
HOSTNAME = socket.gethostname()


@dataclass(frozen=True, slots=True)
class LegacyEvent:
    """One message for RabbitMQ; ``event_id`` is also sent as the AMQP message id."""

    exchange: str
    routing_key: str
    event_id: str
    payload: dict[str, Any]

    def body(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":"), default=str).encode()


def legacy_time(value: datetime | None) -> str | None:
    """``value`` in UTC, as ``%Y-%m-%d %H:%M:%S``; a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(LEGACY_TIME_FORMAT)


def _epoch_time(value: Any) -> str | None:
    """A ``taken_at_timestamp`` dimension (epoch seconds) in the legacy format, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return legacy_time(datetime.fromtimestamp(float(value), UTC))
    except (ValueError, OverflowError, OSError):
        return None


def _carried(dimensions: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in dimensions.items() if key not in NOT_CARRIED}


def _sides(event: TwoSidedEvent) -> dict[str, Any]:
    """Each account's metrics and dimensions of a relationship event, as the legacy payloads name them."""
    return {
        "source_metrics": event.source_metrics,
        "source_dimensions": _carried(event.source_dimensions),
        "target_metrics": event.target_metrics,
        "target_dimensions": _carried(event.target_dimensions),
    }


def status_event_id(request_id: str, attempt: int, status: Status) -> str:
    """The id of a status change: the same request, attempt and status always give the same id."""
    return deterministic_id(request_id, attempt, status.value)


def scrape_request_log_event(event: RequestStatus) -> LegacyEvent:
    event_id = status_event_id(event.request_id, event.attempt, event.status)
    return LegacyEvent(BEAT_EXCHANGE, "scrape_request_log_events", event_id, {
        "event_id": event_id,
        "scl_id": event.request_id,
        "flow": event.flow,
        "platform": event.platform.value if event.platform else None,
        "params": event.params,
        "status": event.status.value,
        "priority": event.priority,
        "reason": None,
        "event_timestamp": legacy_time(event.at),
        # A status event does not carry when its request was first picked up; from PROCESSING on,
        # the change itself is the latest pick-up time Beat knows.
        "picked_at": legacy_time(event.at) if event.status is not Status.PENDING else None,
        "expires_at": legacy_time(event.expires_at),
        "retry_count": event.attempt - 1,
    })


def profile_log_event(event: ProfileLog) -> LegacyEvent:
    return LegacyEvent(BEAT_EXCHANGE, "profile_log_events", event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "platform": event.platform.value,
        "profile_id": event.profile_id,
        "handle": event.handle or event.dimensions.get("handle"),
        "event_timestamp": legacy_time(event.observed_at),
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
    })


def post_log_event(event: PostLog) -> LegacyEvent:
    publish_time = legacy_time(event.publish_time) or _epoch_time(event.dimensions.get("taken_at_timestamp"))
    return LegacyEvent(BEAT_EXCHANGE, "post_log_events", event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "platform": event.platform.value,
        "profile_id": event.profile_id,
        "handle": event.handle or event.dimensions.get("handle"),
        "shortcode": event.shortcode,
        "publish_time": publish_time,
        "event_timestamp": legacy_time(event.observed_at),
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
    })


def post_activity_log_event(event: ActivityLog) -> LegacyEvent:
    publish_time = legacy_time(event.publish_time) or _epoch_time(event.dimensions.get("taken_at_timestamp"))
    return LegacyEvent(BEAT_EXCHANGE, "post_activity_log_events", event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "activity_type": event.activity_type,
        "platform": event.platform.value,
        "actor_profile_id": event.actor_profile_id,
        "shortcode": event.shortcode,
        "publish_time": publish_time,
        "event_timestamp": legacy_time(event.observed_at),
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
    })


def profile_relationship_log_event(event: RelationshipLog) -> LegacyEvent:
    return LegacyEvent(BEAT_EXCHANGE, "profile_relationship_log_events", event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "relationship_type": event.relationship_type,
        "platform": event.platform.value,
        "source_profile_id": event.source_profile_id,
        "target_profile_id": event.target_profile_id,
        "event_timestamp": legacy_time(event.observed_at),
        **_sides(event),
    })


def order_log_event(event: OrderLog) -> LegacyEvent:
    return LegacyEvent(BEAT_EXCHANGE, "order_log_events", event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "platform": event.platform.value,
        "platform_order_id": event.platform_order_id,
        "store": event.store or event.dimensions.get("store"),
        "event_timestamp": legacy_time(event.observed_at),
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
    })


def yt_activity_log_event(event: YtActivityLog) -> LegacyEvent:
    return LegacyEvent(BEAT_EXCHANGE, "yt_activity_log_events", event.event_id, {
        "event_id": event.event_id,
        "activity_id": event.activity_id,
        "activity_type": event.activity_type,
        "source": event.source,
        "platform": event.platform.value,
        "actor_channel_id": event.actor_channel_id,
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
        "event_timestamp": legacy_time(event.observed_at),
    })


def yt_profile_relationship_log_event(event: YtRelationshipLog) -> LegacyEvent:
    return LegacyEvent(BEAT_EXCHANGE, "yt_profile_relationship_log_events", event.event_id, {
        "event_id": event.event_id,
        "relationship_id": event.relationship_id,
        "relationship_type": event.relationship_type,
        "source": event.source,
        "platform": event.platform.value,
        "source_channel_id": event.source_channel_id,
        "target_channel_id": event.target_channel_id,
        **_sides(event),
        "subscribed_on": legacy_time(event.subscribed_on),
        "event_timestamp": legacy_time(event.observed_at),
    })


def trace_log_event(event: TraceLog, hostname: str = HOSTNAME) -> LegacyEvent:
    """The legacy trace shape without the legacy leaks: the URI stops at the path and headers stay empty."""
    uri = f"{TRACE_SCHEME}://{event.host}{event.path}"
    return LegacyEvent(IDENTITY_EXCHANGE, "trace_log", event.id, {
        "id": event.id,
        "hostname": hostname,
        "serviceName": "beat",
        "timestamp": event.at.isoformat(),
        "timeTaken": int(event.latency_ms // 1000),
        "method": event.method,
        "uri": uri,
        "headers": {},
        "responseStatus": event.status,
        "remoteAddress": uri,
        "onlyRequest": False,
        "requestBody": "",
        "responseBody": "",
    })


@dataclass(frozen=True, slots=True)
class Mirrored:
    """How the records of one topic become legacy messages."""

    model: type[Model]
    mapper: Callable[[Any], LegacyEvent]


# Topic (unprefixed) -> model and mapper. `beat mirror` subscribes to exactly these topics.
# Never mirrored: asset_log (the legacy engine published no asset event, legacy-beat.md §7) and the
# dead-letter topic.
MIRRORED: dict[str, Mirrored] = {
    names.STATUS: Mirrored(RequestStatus, scrape_request_log_event),
    names.PROFILE_LOG: Mirrored(ProfileLog, profile_log_event),
    names.POST_LOG: Mirrored(PostLog, post_log_event),
    names.POST_ACTIVITY_LOG: Mirrored(ActivityLog, post_activity_log_event),
    names.PROFILE_RELATIONSHIP_LOG: Mirrored(RelationshipLog, profile_relationship_log_event),
    names.ORDER_LOG: Mirrored(OrderLog, order_log_event),
    names.YT_ACTIVITY_LOG: Mirrored(YtActivityLog, yt_activity_log_event),
    names.YT_PROFILE_RELATIONSHIP_LOG: Mirrored(YtRelationshipLog, yt_profile_relationship_log_event),
    names.TRACE_LOG: Mirrored(TraceLog, trace_log_event),
}


def legacy_event(topic: str, value: bytes | None) -> LegacyEvent:
    """Decode one record of a mirrored topic (unprefixed name) and map it.

    Raises ``KeyError`` for a topic that is not mirrored and ``ValueError`` (pydantic's
    ``ValidationError`` included) for a value that is not a valid event of that topic.
    """
    mirrored = MIRRORED[topic]
    if value is None:
        raise ValueError("record has no value")
    return mirrored.mapper(mirrored.model.model_validate_json(value))
