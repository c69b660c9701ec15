"""Which table a record feeds: by its topic, then by the event's platform and ``kind`` (contract §2).

The routes are data, from the topic registry (``topics/registry.py``): a (topic,
platform, kind) it gives no table is a valid event this sink has no table for (a
sentiment result, a YouTube activity) and is skipped, not dead-lettered. A record that does not decode, or
whose values cannot be read into its table's columns, is poison; a status record is poison only when
it names no request (``sinks.status.decode_status``). Every record of a stored
topic that names its request and event id is counted for that request
(``sinks.stored``), poison included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from sinks import history, instagram, logs, pictures, sentiment, shopify, stored, youtube
from sinks.dead_letters import decode_letter
from sinks.status import Unreadable, decode_status
from sinks.upsert import UpsertTable
from topics import names, registry
from topics.dead_letter import error_info as bounded_error
from topics.models import ErrorInfo, Model, Platform, RequestStatus
from topics.registry import ANY_PLATFORM


@dataclass(frozen=True, slots=True)
class Route:
    table: UpsertTable
    row: Callable[[Any], dict[str, Any]]


# Each table this sink writes events to, with how an event becomes its row; the registry says which
# (topic, platform, kind) feeds which table, by name.
WRITERS: dict[str, Route] = {
    route.table.name: route
    for route in (
        Route(instagram.ACCOUNT, instagram.account_row),
        Route(instagram.PROFILE_INSIGHTS, instagram.profile_insights_row),
        Route(instagram.GPT_ENRICHMENT, instagram.gpt_row),
        Route(instagram.POST, instagram.post_row),
        Route(youtube.ACCOUNT, youtube.account_row),
        Route(youtube.PROFILE_INSIGHTS, youtube.profile_insights_row),
        Route(youtube.POST, youtube.post_row),
        Route(logs.ACTIVITY, logs.activity_row),
        Route(logs.RELATIONSHIP, logs.relationship_row),
        Route(shopify.ORDER, shopify.order_row),
        Route(pictures.ASSET_LOG, pictures.asset_log_row),
        Route(sentiment.SENTIMENT, sentiment.sentiment_row),
    )
}


@dataclass(frozen=True, slots=True)
class AlsoRoute:
    """A second table an entity table's events feed; ``row`` may say None (nothing for it in this event)."""

    table: UpsertTable
    row: Callable[[Any], dict[str, Any] | None]


# The daily history the CSV exports read is kept from the same events as the entity rows (``sinks.history``).
ALSO: dict[str, tuple[AlsoRoute, ...]] = {
    youtube.ACCOUNT.name: (AlsoRoute(history.ACCOUNT_DAILY, history.account_daily_row),),
    youtube.POST.name: (AlsoRoute(history.POST_DAILY, history.post_daily_row),),
}

ROUTES: dict[tuple[str, Platform | None, str], Route] = {
    (spec.name, platform, kind): WRITERS[table]
    for spec in registry.TOPICS
    for (platform, kind), table in spec.tables.items()
}

# The status records go to scrape_request_log (``sinks.status``), the stored topics' events to their
# tables, and the dead letters to their own table (``sinks.dead_letters``), for ``beat dlq``.
TOPIC_MODELS: dict[str, type[Model]] = {
    names.STATUS: RequestStatus,
    **{spec.name: spec.event for spec in registry.TOPICS if spec.tables},
}
TOPICS = (*TOPIC_MODELS, names.DEAD_LETTER)


def route_of(topic: str, platform: Platform, kind: str) -> Route | None:
    return ROUTES.get((topic, platform, kind)) or ROUTES.get((topic, ANY_PLATFORM, kind))


@dataclass
class Decoded:
    """A batch sorted by destination; every entry keeps the index of the record it came from."""

    statuses: list[tuple[int, RequestStatus]] = field(default_factory=list)
    letters: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rows: dict[UpsertTable, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    poison: list[tuple[int, ErrorInfo]] = field(default_factory=list)
    skipped: int = 0
    # The events of stored topics, by record, for the request's stored counts.
    counted: dict[int, stored.Counted] = field(default_factory=dict)


def error_info(exc: BaseException) -> ErrorInfo:
    # Bounded and cleaned as every error Beat records (a refused value may be quoted in the message).
    return bounded_error(type(exc).__name__, str(exc))


def decode(records: Iterable[tuple[str, bytes | None]]) -> Decoded:
    """``records`` are (topic without its prefix, value) in batch order."""
    decoded = Decoded()
    for origin, (topic, value) in enumerate(records):
        if topic == names.STATUS:
            try:
                decoded.statuses.append((origin, decode_status(value)))
            except Unreadable as exc:
                decoded.poison.append((origin, error_info(exc)))
            continue
        if topic == names.DEAD_LETTER:
            try:
                decoded.letters.append((origin, decode_letter(value)))
            except (ValidationError, ValueError) as exc:
                decoded.poison.append((origin, error_info(exc)))
            continue
        try:
            event: Any = TOPIC_MODELS[topic].model_validate_json(value or b"")
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            decoded.poison.append((origin, error_info(exc)))
            _count(decoded, origin, topic, stored.named_in(value))
            continue
        _count(decoded, origin, topic, stored.counted(event.request_id, event.attempt, event.event_id))
        try:
            route = route_of(topic, event.platform, event.kind)
            if route is None:
                decoded.skipped += 1
                continue
            # Only the values an event carries: a missing one must not look like a column to clear.
            row = {column: value for column, value in route.row(event).items() if value is not None}
            if any(key not in row for key in route.table.key):
                raise ValueError(f"{route.table.name}: the event has no {', '.join(route.table.key)}")
            decoded.rows.setdefault(route.table, []).append((origin, row))
            for also in ALSO.get(route.table.name, ()):
                if (extra := also.row(event)) is not None:
                    decoded.rows.setdefault(also.table, []).append((origin, extra))
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            decoded.poison.append((origin, error_info(exc)))
    return decoded


def _count(decoded: Decoded, origin: int, topic: str, event: stored.Counted | None) -> None:
    if event is not None and topic in names.STORED_TOPICS:
        decoded.counted[origin] = event
