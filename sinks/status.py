"""The status sink: every RequestStatus into ``scrape_request_event``, the winner into ``scrape_request_log``.

The ordering rule is ``topics.models.supersedes``: it is applied to the events of
one batch in Python and, against what is already stored, in the upsert's WHERE.
"""

from __future__ import annotations

import json

import asyncpg

from topics.models import RequestStatus, supersedes

_RANK_SQL = "(CASE {col} WHEN 'PENDING' THEN 0 WHEN 'PROCESSING' THEN 1 ELSE 2 END)"
_STORED_RANK = _RANK_SQL.format(col="t.status")
_NEW_RANK = _RANK_SQL.format(col="EXCLUDED.status")

_STATUS_COLUMNS = "request_id, status, attempt, at, source, error, result"

_INSERT_EVENTS = f"""
INSERT INTO scrape_request_event ({_STATUS_COLUMNS})
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::jsonb[], $7::jsonb[])
ON CONFLICT (request_id, attempt, status) DO NOTHING
"""

_UPSERT_LOG = f"""
INSERT INTO scrape_request_log AS t (id, flow, platform, params, status, attempt, source, error_type, error_message,
    result, priority, retry_count, account_id, created_at, expires_at, picked_at, scraped_at, status_at,
    updated_at, enqueued)
SELECT u.id, u.flow, u.platform, u.params, u.status, u.attempt, u.source, u.error_type, u.error_message, u.result,
    u.priority, u.attempt - 1, u.account_id, COALESCE(u.created_at, u.at), u.expires_at, u.picked_at,
    CASE WHEN u.status IN ('COMPLETE', 'FAILED', 'EXPIRED', 'DEAD_LETTERED') THEN u.at END, now(), now(), true
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::int[], $7::text[], $8::text[],
            $9::text[], $10::jsonb[], $11::int[], $12::text[], $13::timestamptz[], $14::timestamptz[],
            $15::timestamptz[], $16::timestamptz[])
    AS u(id, flow, platform, params, status, attempt, source, error_type, error_message, result, priority,
         account_id, created_at, expires_at, picked_at, at)
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status,
    attempt = EXCLUDED.attempt,
    retry_count = EXCLUDED.retry_count,
    source = COALESCE(EXCLUDED.source, t.source),
    error_type = EXCLUDED.error_type,
    error_message = EXCLUDED.error_message,
    result = COALESCE(EXCLUDED.result, t.result),
    params = CASE WHEN t.params = '{{}}'::jsonb THEN EXCLUDED.params ELSE t.params END,
    picked_at = COALESCE(t.picked_at, EXCLUDED.picked_at),
    scraped_at = EXCLUDED.scraped_at,
    status_at = now(),
    updated_at = now(),
    enqueued = true
WHERE {_STORED_RANK} < 2
  AND ({_NEW_RANK} = 2 OR (EXCLUDED.attempt, {_NEW_RANK}) > (t.attempt, {_STORED_RANK}))
"""


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def latest_per_request(events: list[RequestStatus]) -> tuple[dict[str, RequestStatus], dict[str, object]]:
    """The winning event of each request in a batch, and when each was first picked up."""
    winners: dict[str, RequestStatus] = {}
    picked: dict[str, object] = {}
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
    await conn.execute(_INSERT_EVENTS, *_arrays([
        (e.request_id, e.status.value, e.attempt, e.at, e.source,
         _json(e.error.model_dump() if e.error else None), _json(e.result))
        for e in distinct.values()
    ]))
    winners, picked = latest_per_request(events)
    await conn.execute(_UPSERT_LOG, *_arrays([
        (
            e.request_id, e.flow, e.platform.value if e.platform else None, _json(e.params), e.status.value,
            e.attempt, e.source, e.error.type if e.error else None, e.error.message if e.error else None,
            _json(e.result), e.priority, e.account_id, e.created_at, e.expires_at, picked.get(e.request_id), e.at,
        )
        for e in winners.values()
    ]))
