"""Beat's events as the legacy RabbitMQ messages (legacy-beat.md §8): exchange, routing key, payload.

Pure functions, one per legacy message, and ``MIRRORED``: every topic the registry
(``topics/registry.py``) gives legacy routes, each route with its model and mapper; ``beat mirror``
subscribes to exactly these. A message without an ``event_id`` field (the bulk page, Coffee's completions)
still has one: its event's id, sent as the AMQP message id. Payload fields are the
legacy ones, name for name, so downstream consumers (event-grpc → ClickHouse)
do not change on cut-over. Deliberate differences from the legacy engine:

- ``event_id`` is Beat's own deterministic id, so a redelivered event carries the
  same id and consumers can drop the duplicate;
- timestamps are naive, in the legacy format ``%Y-%m-%d %H:%M:%S``, in the zone
  ``BEAT_LEGACY_TIMEZONE`` (UTC by default; the legacy engine wrote its server's local time,
  so a deployment whose consumers read them as that sets the legacy server's zone);
- the raw nested lists (recent_posts…) are not carried (contract §1);
- ``trace_log`` has no query string and no headers, so no key or token leaves Beat.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from topics import registry
from topics.models import (
    ActivityLog,
    Model,
    OrderLog,
    Platform,
    PostLog,
    ProfileLog,
    RelationshipLog,
    RequestStatus,
    Status,
    TraceLog,
    TwoSided,
    YtActivityLog,
    YtRelationshipLog,
    deterministic_id,
)
from topics.registry import LegacyRoute
from topics.sentiment import ActivityPageLog, ReportLog, SentimentLog

LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# The AMQP app id of every message ``beat mirror`` publishes: ``beat listen`` knows Beat's own pages by it.
MIRROR_APP_ID = "beat"

# The kinds on post_activity_log: a single like or comment (topics.models.Activity), a page of them
# (topics.sentiment.ActivityPage).
ACTIVITY_KIND = "activity"
PAGE_KIND = "activity_page"
# ReportDone.report of the two collection reports, each with its own coffee.dx completion key.
KEYWORD_REPORT = "keyword_collection"
SENTIMENT_REPORT = "sentiment_collection"

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


# A legacy message's id and payload.
Mapped = tuple[str, dict[str, Any]]


def legacy_time(value: datetime | None, zone: tzinfo = UTC) -> str | None:
    """``value`` in ``zone``, naive, as ``%Y-%m-%d %H:%M:%S``; a naive datetime is taken to be UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime(LEGACY_TIME_FORMAT)


def _epoch_time(value: Any, zone: tzinfo) -> str | None:
    """A ``taken_at_timestamp`` dimension (epoch seconds) in the legacy format, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return legacy_time(datetime.fromtimestamp(float(value), UTC), zone)
    except (ValueError, OverflowError, OSError):
        return None


def _publish_time(publish_time: datetime | None, dimensions: dict[str, Any], zone: tzinfo) -> str | None:
    return legacy_time(publish_time, zone) or _epoch_time(dimensions.get("taken_at_timestamp"), zone)


def _carried(dimensions: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in dimensions.items() if key not in NOT_CARRIED}


def _profile_dimensions(dimensions: dict[str, Any]) -> dict[str, Any]:
    carried = _carried(dimensions)
    # The legacy GPT flow sent its categories as Python's str() of the list, and consumers parse that.
    if isinstance(carried.get("categories"), list):
        carried["categories"] = str(carried["categories"])
    return carried


def _pairs(values: dict[str, Any]) -> list[dict[str, Any]]:
    # The legacy bulk rows held metrics and dimensions as lists of {key, value}, in the row's order.
    return [{"key": key, "value": value} for key, value in values.items()]


def _sides(event: TwoSided) -> dict[str, Any]:
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


# Statuses the legacy engine did not have, as its consumers knew them: a retry was a PENDING row again with
# the next retry_count, and a request that will not run again was FAILED.
LEGACY_STATUS = {
    Status.RETRYING: Status.PENDING,
    Status.REDRIVEN: Status.PENDING,
    Status.EXPIRED: Status.FAILED,
    Status.DEAD_LETTERED: Status.FAILED,
}


def scrape_request_log_event(event: RequestStatus, zone: tzinfo = UTC) -> Mapped:
    event_id = status_event_id(event.request_id, event.attempt, event.status)
    status = LEGACY_STATUS.get(event.status, event.status)
    return event_id, {
        "event_id": event_id,
        "scl_id": event.request_id,
        "flow": event.flow,
        "platform": event.platform.value if event.platform else None,
        "params": event.params,
        "status": status.value,
        "priority": event.priority,
        "reason": None,
        "event_timestamp": legacy_time(event.at, zone),
        # A status event does not carry when its request was first picked up; from PROCESSING on,
        # the change itself is the latest pick-up time Beat knows.
        "picked_at": legacy_time(event.at, zone) if status is not Status.PENDING else None,
        "expires_at": legacy_time(event.expires_at, zone),
        # The legacy rows counted attempts from 1, and its retry path set the row PENDING with the count of the
        # attempt to come: RETRYING is attempt n waiting for n + 1 (REDRIVEN already carries the new attempt).
        "retry_count": event.attempt + 1 if event.status is Status.RETRYING else event.attempt,
    }


def profile_log_event(event: ProfileLog, zone: tzinfo = UTC) -> Mapped:
    # The legacy YouTube profile events named the channel by its id in both fields; the custom URL
    # (@name) stays in the dimensions.
    youtube = event.platform is Platform.YOUTUBE
    handle = event.profile_id if youtube else event.handle or event.dimensions.get("handle")
    return event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "platform": event.platform.value,
        "profile_id": event.profile_id,
        "handle": handle,
        "event_timestamp": legacy_time(event.observed_at, zone),
        "metrics": event.metrics,
        "dimensions": _profile_dimensions(event.dimensions),
    }


def post_log_event(event: PostLog, zone: tzinfo = UTC) -> Mapped:
    publish_time = _publish_time(event.publish_time, event.dimensions, zone)
    return event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "platform": event.platform.value,
        "profile_id": event.profile_id,
        "handle": event.handle or event.dimensions.get("handle"),
        "shortcode": event.shortcode,
        "publish_time": publish_time,
        "event_timestamp": legacy_time(event.observed_at, zone),
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
    }


def post_activity_log_event(event: ActivityLog, zone: tzinfo = UTC) -> Mapped | None:
    # Only a single like or comment is a post_activity_log_events message: the topic's other records (a
    # page of them, the legacy's post_activity_log_bulk) are not this key's.
    if event.kind != ACTIVITY_KIND:
        return None
    publish_time = _publish_time(event.publish_time, event.dimensions, zone)
    return event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "activity_type": event.activity_type,
        "platform": event.platform.value,
        "actor_profile_id": event.actor_profile_id,
        "shortcode": event.shortcode,
        "publish_time": publish_time,
        "event_timestamp": legacy_time(event.observed_at, zone),
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
    }


def post_activity_log_bulk(event: ActivityPageLog, zone: tzinfo = UTC) -> Mapped | None:
    """A page of likes or comments as the legacy's bulk message: the rows it inserted, metrics and dimensions
    as ``[{key, value}]`` lists, each row stamped with the time the page was read."""
    if event.kind != PAGE_KIND:
        return None
    timestamp = legacy_time(event.observed_at, zone)
    rows = [
        {
            "activity_type": activity.activity_type,
            "platform": activity.platform.value,
            "platform_post_id": activity.shortcode,
            "actor_profile_id": activity.actor_profile_id,
            "dimensions": _pairs(_carried(activity.dimensions)),
            "metrics": _pairs(activity.metrics),
            "source": activity.source,
            "timestamp": timestamp,
        }
        for activity in event.activities
    ]
    return event.event_id, {
        "platform": event.platform.value,
        "activity_type": event.activity_type,
        "post_activity_logs": rows,
    }


def sentiment_log_event(event: SentimentLog, zone: tzinfo = UTC) -> Mapped:
    return event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "platform": event.platform.value,
        "shortcode": event.shortcode,
        "comment_id": event.comment_id,
        "event_timestamp": legacy_time(event.observed_at, zone),
        "comment": event.comment,
        "sentiment": event.sentiment,
        "score": event.score,
        "metrics": event.metrics,
        "dimensions": event.dimensions,
    }


def _asset(event: ReportLog, role: str) -> dict[str, str | None]:
    return {"path": event.paths.get(role), "bucket": event.bucket}


def keyword_collection_report_completion(event: ReportLog, zone: tzinfo = UTC) -> Mapped | None:
    if event.report != KEYWORD_REPORT:
        return None
    return event.event_id, {
        "job_id": event.job_id,
        "report_asset": _asset(event, "report"),
        "demographic_report_asset": _asset(event, "demographic"),
    }


def sentiment_collection_report_out_rk(event: ReportLog, zone: tzinfo = UTC) -> Mapped | None:
    if event.report != SENTIMENT_REPORT:
        return None
    return event.event_id, {
        "collectionType": event.collection_type,
        "collectionId": event.collection_id,
        "sentimentReportPath": event.paths.get("report"),
        "sentimentReportBucket": event.bucket,
    }


def profile_relationship_log_event(event: RelationshipLog, zone: tzinfo = UTC) -> Mapped:
    return event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "relationship_type": event.relationship_type,
        "platform": event.platform.value,
        "source_profile_id": event.source_profile_id,
        "target_profile_id": event.target_profile_id,
        "event_timestamp": legacy_time(event.observed_at, zone),
        **_sides(event),
    }


def order_log_event(event: OrderLog, zone: tzinfo = UTC) -> Mapped:
    return event.event_id, {
        "event_id": event.event_id,
        "source": event.source,
        "platform": event.platform.value,
        "platform_order_id": event.platform_order_id,
        "store": event.store or event.dimensions.get("store"),
        "event_timestamp": legacy_time(event.observed_at, zone),
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
    }


def yt_activity_log_event(event: YtActivityLog, zone: tzinfo = UTC) -> Mapped:
    return event.event_id, {
        "event_id": event.event_id,
        "activity_id": event.activity_id,
        "activity_type": event.activity_type,
        "source": event.source,
        "platform": event.platform.value,
        "actor_channel_id": event.actor_channel_id,
        "metrics": event.metrics,
        "dimensions": _carried(event.dimensions),
        "event_timestamp": legacy_time(event.observed_at, zone),
    }


def yt_profile_relationship_log_event(event: YtRelationshipLog, zone: tzinfo = UTC) -> Mapped:
    return event.event_id, {
        "event_id": event.event_id,
        "relationship_id": event.relationship_id,
        "relationship_type": event.relationship_type,
        "source": event.source,
        "platform": event.platform.value,
        "source_channel_id": event.source_channel_id,
        "target_channel_id": event.target_channel_id,
        **_sides(event),
        "subscribed_on": legacy_time(event.subscribed_on, zone),
        "event_timestamp": legacy_time(event.observed_at, zone),
    }


def trace_log_event(event: TraceLog, zone: tzinfo = UTC, hostname: str = HOSTNAME) -> Mapped:
    """The legacy trace shape without the legacy leaks: the URI stops at the path and headers stay empty.

    ``timestamp`` is ISO 8601 with its offset, as the legacy sent it, so it needs no zone."""
    uri = f"{TRACE_SCHEME}://{event.host}{event.path}"
    return event.id, {
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
    }


Mapper = Callable[[Any, tzinfo], Mapped | None]


@dataclass(frozen=True, slots=True)
class Mirrored:
    """How the records of one topic become legacy messages: each route with the model its mapper reads.

    A topic with several routes (a page of activities beside the single ones, two kinds of report) offers each
    record to its routes' mappers in order; the first that returns a message publishes it on its route."""

    routes: tuple[tuple[LegacyRoute, type[Model], Mapper], ...]


# Legacy routing key -> the model it decodes a record as, and the mapper that writes its payload (None: the
# record is not a message of that key).
MAPPERS: dict[str, tuple[type[Model], Mapper]] = {
    "scrape_request_log_events": (RequestStatus, scrape_request_log_event),
    "profile_log_events": (ProfileLog, profile_log_event),
    "post_log_events": (PostLog, post_log_event),
    "post_activity_log_events": (ActivityLog, post_activity_log_event),
    "post_activity_log_bulk": (ActivityPageLog, post_activity_log_bulk),
    "sentiment_log_events": (SentimentLog, sentiment_log_event),
    "profile_relationship_log_events": (RelationshipLog, profile_relationship_log_event),
    "order_log_events": (OrderLog, order_log_event),
    "yt_activity_log_events": (YtActivityLog, yt_activity_log_event),
    "yt_profile_relationship_log_events": (YtRelationshipLog, yt_profile_relationship_log_event),
    "trace_log": (TraceLog, trace_log_event),
    "keyword_collection_report_completion": (ReportLog, keyword_collection_report_completion),
    "sentiment_collection_report_out_rk": (ReportLog, sentiment_collection_report_out_rk),
}

# Topic (unprefixed) -> its routes and mappers: every topic the registry gives a legacy route. Never
# mirrored: asset_log (the legacy engine published no asset event, legacy-beat.md §7) and the dead letters.
MIRRORED: dict[str, Mirrored] = {
    spec.name: Mirrored(tuple((route, *MAPPERS[route.routing_key]) for route in spec.legacy))
    for spec in registry.TOPICS
    if spec.legacy
}
EXCHANGES = tuple(dict.fromkeys(route.exchange for mirrored in MIRRORED.values() for route, _, _ in mirrored.routes))


def legacy_event(topic: str, value: bytes | None, zone: tzinfo = UTC) -> LegacyEvent | None:
    """Decode one record of a mirrored topic (unprefixed name) and map it, its times in ``zone``; None when
    none of the topic's routing keys takes it.

    Raises ``KeyError`` for a topic that is not mirrored and ``ValueError`` (pydantic's
    ``ValidationError`` included) for a value that is not a valid event of that topic.
    """
    mirrored = MIRRORED[topic]
    if value is None:
        raise ValueError("record has no value")
    for route, model, mapper in mirrored.routes:
        mapped = mapper(model.model_validate_json(value), zone)
        if mapped is not None:
            event_id, payload = mapped
            return LegacyEvent(route.exchange, route.routing_key, event_id, payload)
    return None
