"""The status sink: every RequestStatus into ``scrape_request_event``, the winner into ``scrape_request_log``.

The ordering rule is ``topics.models.supersedes``: it is applied to the events of
one batch in Python and, against what is already stored, in the upsert's WHERE.

Status records are read leniently: a status row is how a request exists for its
callers, so a record is recorded with whatever Postgres could not hold cleaned
(NUL, lone surrogates, numbers beyond the columns, impossible times) and fields
it cannot read dropped. Only a record that names no request is refused.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from sinks.stored import MAX_KEY_BYTES
from topics.errors import BeatError, Decision
from topics.limits import INT32_MAX, INT32_MIN, MAX_TEXT, clamp, clean_json, clean_text, json_problem, text_problem
from topics.models import TERMINAL, RequestStatus, Status, supersedes, utcnow

log = logging.getLogger(__name__)

_FIELDS = frozenset(RequestStatus.model_fields)
# Without them there is nothing to record the event under.
_ESSENTIAL = frozenset({"request_id", "status"})
# Indexed text columns, cut so that their index entries always fit.
_INDEXED_TEXT = ("flow", "account_id")
_OPTIONAL_TIMES = ("created_at", "expires_at", "due_at")
# Python's datetime cannot shift a time within a day of its own range to UTC.
_EARLIEST, _LATEST = datetime(2, 1, 1, tzinfo=UTC), datetime(9998, 12, 31, tzinfo=UTC)


class Unreadable(BeatError, ValueError):
    """A status record that names no request (or is not JSON): there is nothing to record it under."""

    decision = Decision.POISON


def _key_problem(value: str) -> str | None:
    if not value.strip():
        return "is empty"
    if len(value) > MAX_TEXT or len(value.encode()) > MAX_KEY_BYTES:
        return f"is longer than {MAX_TEXT} characters or {MAX_KEY_BYTES} bytes"
    return None


def _cut(value: str, limit: int = MAX_TEXT) -> str:
    # By bytes, as the index limit counts them; a character cut in half is dropped.
    return value.encode()[:limit].decode(errors="ignore")


def _bounded_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # a producer without a zone meant UTC, as Beat's own events are
    return value if _EARLIEST <= value <= _LATEST else None


def _validated(data: dict[str, Any]) -> tuple[RequestStatus, list[str]]:
    """The status, after dropping each optional field it cannot read (a required flow becomes empty)."""
    dropped: list[str] = []
    while True:
        try:
            return RequestStatus.model_validate(data), dropped
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            if not bad or bad & _ESSENTIAL:
                raise Unreadable(
                    f"unreadable {', '.join(sorted(bad & _ESSENTIAL) or ['record'])}: {str(exc)[:500]}"
                ) from None
            for name in bad:
                if name == "flow":
                    data["flow"] = ""
                else:
                    data.pop(name, None)
                dropped.append(name)


def _storable(status: RequestStatus) -> bool:
    """Whether a status needs no cleaning: what ``_lenient`` would return for it unchanged."""
    texts = [status.source, *((status.error.type, status.error.message) if status.error else ())]
    return (
        _key_problem(status.request_id) is None
        and all(text is None or text_problem(text, max_length=None) is None for text in texts)
        and all(
            text is None or (text_problem(text, max_length=None) is None and len(text.encode()) <= MAX_TEXT)
            for text in (status.flow, status.account_id)
        )
        and 1 <= status.attempt <= INT32_MAX
        and INT32_MIN <= status.priority <= INT32_MAX
        and all(
            time is None or (time.tzinfo is not None and _EARLIEST <= time <= _LATEST)
            for time in (status.at, status.created_at, status.expires_at, status.due_at)
        )
        and json_problem(status.params) is None
        and json_problem(status.result) is None
    )


def decode_status(value: bytes | None) -> RequestStatus:
    """A status record as Postgres can hold it; raises ``Unreadable`` when it names no request."""
    try:
        status = RequestStatus.model_validate_json(value or b"")
    except ValidationError:
        return _lenient(value)
    # Beat's own statuses take this way; checking is several times cheaper than cleaning.
    return status if _storable(status) else _lenient(value)


def _lenient(value: bytes | None) -> RequestStatus:
    try:
        # json, not pydantic's parser: that one refuses a lone surrogate escape outright.
        data = json.loads((value or b"").decode("utf-8", "replace"))
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise Unreadable(f"not a JSON object but a {type(data).__name__}")
    request_id = data.get("request_id")
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        request_id = str(request_id)
    if not isinstance(request_id, str):
        raise Unreadable("no request_id")
    data = clean_json({key: item for key, item in data.items() if key in _FIELDS})
    data["request_id"] = clean_text(request_id)
    problem = _key_problem(data["request_id"])
    if problem:
        raise Unreadable(f"request_id {problem}")
    if isinstance(data.get("status"), str):
        data["status"] = data["status"].upper()
    if not isinstance(data.get("flow"), str):
        data["flow"] = ""
    status, dropped = _validated(data)
    status.attempt = clamp(status.attempt, 1, INT32_MAX)
    status.priority = clamp(status.priority, INT32_MIN, INT32_MAX)
    for name in _INDEXED_TEXT:
        if getattr(status, name) is not None:
            setattr(status, name, _cut(getattr(status, name)))
    status.at = _bounded_time(status.at) or utcnow()
    for name in _OPTIONAL_TIMES:
        setattr(status, name, _bounded_time(getattr(status, name)))
    if dropped:
        log.warning(
            "status %s of request %s recorded without its unreadable %s",
            status.status.value,
            status.request_id,
            ", ".join(sorted(set(dropped))),
        )
    return status


def announced_of(event: RequestStatus) -> int | None:
    """How many events a COMPLETE says it produced to the stored topics; None when it does not say."""
    announced = (event.result or {}).get("announced") if event.status is Status.COMPLETE else None
    if isinstance(announced, int) and not isinstance(announced, bool) and 0 <= announced <= INT32_MAX:
        return announced
    return None


_TERMINAL_SQL = ", ".join(f"'{status.value}'" for status in sorted(TERMINAL, key=lambda status: status.value))
_RANK_SQL = (
    "(CASE {col} WHEN 'PENDING' THEN 0 WHEN 'REDRIVEN' THEN 0 WHEN 'PROCESSING' THEN 1 "
    "WHEN 'RETRYING' THEN 2 ELSE 3 END)"
)
_STORED_RANK = _RANK_SQL.format(col="t.status")
_NEW_RANK = _RANK_SQL.format(col="EXCLUDED.status")
# ``supersedes`` against the stored row: a terminal row reopens only for a later attempt's REDRIVEN; a terminal
# event ends any attempt it is not older than; otherwise (attempt, rank) moves forward.
_SUPERSEDES = f"""CASE
    WHEN t.status IN ({_TERMINAL_SQL}) THEN EXCLUDED.status = 'REDRIVEN' AND EXCLUDED.attempt > t.attempt
    WHEN EXCLUDED.status IN ({_TERMINAL_SQL}) THEN EXCLUDED.attempt >= t.attempt
    ELSE (EXCLUDED.attempt, {_NEW_RANK}) > (t.attempt, {_STORED_RANK})
END"""

_STATUS_COLUMNS = "request_id, status, attempt, at, source, error, result"

_INSERT_EVENTS = f"""
INSERT INTO scrape_request_event ({_STATUS_COLUMNS})
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::jsonb[], $7::jsonb[])
ON CONFLICT (request_id, attempt, status) DO NOTHING
"""

_UPSERT_LOG = f"""
INSERT INTO scrape_request_log AS t (id, flow, platform, params, status, attempt, source, error_type, error_message,
    result, priority, retry_count, account_id, created_at, expires_at, picked_at, scraped_at, status_at,
    updated_at, enqueued, events_announced, due_at, retries_spent)
SELECT u.id, u.flow, u.platform, u.params, u.status, u.attempt, u.source, u.error_type, u.error_message, u.result,
    u.priority, u.attempt - 1, u.account_id, COALESCE(u.created_at, u.at), u.expires_at, u.picked_at,
    CASE WHEN u.status IN ({_TERMINAL_SQL}) THEN u.at END, now(), now(), true,
    u.announced, u.due_at, u.retries_spent
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::int[], $7::text[], $8::text[],
            $9::text[], $10::jsonb[], $11::int[], $12::text[], $13::timestamptz[], $14::timestamptz[],
            $15::timestamptz[], $16::timestamptz[], $17::int[], $18::timestamptz[], $19::int[])
    AS u(id, flow, platform, params, status, attempt, source, error_type, error_message, result, priority,
         account_id, created_at, expires_at, picked_at, at, announced, due_at, retries_spent)
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status,
    -- A status from a producer that did not name the flow created the row with an empty one.
    flow = CASE WHEN t.flow = '' THEN EXCLUDED.flow ELSE t.flow END,
    events_announced = EXCLUDED.events_announced,
    -- A re-drive reopens a request that may have been stored: its counts start again with the new attempt.
    events_written = CASE WHEN EXCLUDED.status = 'REDRIVEN' THEN NULL ELSE t.events_written END,
    events_refused = CASE WHEN EXCLUDED.status = 'REDRIVEN' THEN NULL ELSE t.events_refused END,
    refused_reason = CASE WHEN EXCLUDED.status = 'REDRIVEN' THEN NULL ELSE t.refused_reason END,
    stored = CASE WHEN EXCLUDED.status = 'REDRIVEN' THEN false ELSE t.stored END,
    attempt = EXCLUDED.attempt,
    retry_count = EXCLUDED.retry_count,
    due_at = EXCLUDED.due_at,
    retries_spent = EXCLUDED.retries_spent,
    source = COALESCE(EXCLUDED.source, t.source),
    error_type = EXCLUDED.error_type,
    error_message = EXCLUDED.error_message,
    result = COALESCE(EXCLUDED.result, t.result),
    params = CASE WHEN t.params = '{{}}'::jsonb THEN EXCLUDED.params ELSE t.params END,
    picked_at = COALESCE(t.picked_at, EXCLUDED.picked_at),
    scraped_at = EXCLUDED.scraped_at,
    status_at = now(),
    updated_at = now(),
    enqueued = CASE WHEN EXCLUDED.status = 'REDRIVEN' THEN t.enqueued ELSE true END
WHERE {_SUPERSEDES}
"""


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def latest_per_request(events: list[RequestStatus]) -> tuple[dict[str, RequestStatus], dict[str, datetime]]:
    """The winning event of each request in a batch, and when each was first picked up."""
    winners: dict[str, RequestStatus] = {}
    picked: dict[str, datetime] = {}
    for event in events:
        current = winners.get(event.request_id)
        if current is None or supersedes(event.status, event.attempt, current.status, current.attempt):
            winners[event.request_id] = event
        if event.status.value == "PROCESSING":
            first = picked.get(event.request_id)
            picked[event.request_id] = event.at if first is None else min(first, event.at)
    return winners, picked


def _arrays(rows: list[tuple]) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)]


async def write_statuses(conn: asyncpg.Connection, events: list[RequestStatus]) -> None:
    """Every distinct event into ``scrape_request_event``, each request's winner into ``scrape_request_log``:
    one statement each, however many events the batch holds."""
    if not events:
        return
    distinct = {(e.request_id, e.attempt, e.status): e for e in reversed(events)}  # the first of duplicates
    await conn.execute(
        _INSERT_EVENTS,
        *_arrays(
            [
                (
                    e.request_id,
                    e.status.value,
                    e.attempt,
                    e.at,
                    e.source,
                    _json(e.error.model_dump() if e.error else None),
                    _json(e.result),
                )
                for e in distinct.values()
            ]
        ),
    )
    winners, picked = latest_per_request(events)
    # A re-drive reopens a terminal row, and only then may its attempt's own statuses follow: when the batch
    # holds both, the newest REDRIVEN of each request is written first, then the winner.
    reopened = [e for e in _latest_redriven(events).values() if winners[e.request_id] is not e]
    for batch in (reopened, list(winners.values())):
        if batch:
            await conn.execute(
                _UPSERT_LOG,
                *_arrays(
                    [
                        (
                            e.request_id,
                            e.flow,
                            e.platform.value if e.platform else None,
                            _json(e.params),
                            e.status.value,
                            e.attempt,
                            e.source,
                            e.error.type if e.error else None,
                            e.error.message if e.error else None,
                            _json(e.result),
                            e.priority,
                            e.account_id,
                            e.created_at,
                            e.expires_at,
                            picked.get(e.request_id),
                            e.at,
                            announced_of(e),
                            e.due_at,
                            e.retries_spent,
                        )
                        for e in batch
                    ]
                ),
            )


def _latest_redriven(events: list[RequestStatus]) -> dict[str, RequestStatus]:
    latest: dict[str, RequestStatus] = {}
    for event in events:
        if event.status is Status.REDRIVEN and event.attempt > getattr(latest.get(event.request_id), "attempt", 0):
            latest[event.request_id] = event
    return latest
