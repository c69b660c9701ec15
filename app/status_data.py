"""What the status page shows, read from Postgres: each query cheap enough to run on every poll.

* The open work (backlog and in flight) comes from ``scrape_request_log``'s partial indexes on PENDING,
  PROCESSING and RETRYING, so it costs what is open, not what was ever stored.
* Everything "over the last minutes" is an index range on ``scrape_request_event (at)`` (migration 0015):
  a window's events, each joined to its request's row by primary key for the flow.
* A source's attempts and errors are the attempts the status events record with that source: provider calls
  themselves are counted by the Prometheus metrics, not stored.
* Breaker states are the last recorded change of each circuit (``source_breaker``, what ``beat sources``
  prints); credentials are counted from ``credential``, a table of a few rows per source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import asyncpg
from pydantic import BaseModel

from providers.breaker import recorded_states
from providers.crawler import DRIFT_NOTE

# The latest failures the page lists; the classes are counted over the whole window.
FAILURES_SHOWN = 30
MESSAGE_SHOWN = 300
# The outcome of an attempt, as its status event says (EXPIRED is no attempt: no source was called).
_ATTEMPT_ENDS = ("COMPLETE", "FAILED", "DEAD_LETTERED", "RETRYING")
_FAILED_ENDS = ("FAILED", "DEAD_LETTERED", "RETRYING")

# Two arms, one per partial index: a single IN list over both would be a pass over every row.
_OPEN_WORK = """
SELECT flow, status, count(*) AS n FROM scrape_request_log
WHERE status IN ('PENDING', 'PROCESSING') GROUP BY flow, status
UNION ALL
SELECT flow, status, count(*) AS n FROM scrape_request_log WHERE status = 'RETRYING' GROUP BY flow, status
"""
_WINDOW_BY_FLOW = """
SELECT l.flow, e.status, count(*) AS n
FROM scrape_request_event e JOIN scrape_request_log l ON l.id = e.request_id
WHERE e.at >= now() - make_interval(mins => $1) AND e.status IN ('COMPLETE', 'FAILED', 'DEAD_LETTERED', 'EXPIRED',
    'RETRYING')
GROUP BY l.flow, e.status
"""
_WINDOW_BY_SOURCE = """
SELECT e.source, count(*) AS attempts, count(*) FILTER (WHERE e.status <> 'COMPLETE') AS errors
FROM scrape_request_event e
WHERE e.at >= now() - make_interval(mins => $1) AND e.status = ANY($2::text[]) AND e.source IS NOT NULL
GROUP BY e.source
"""
_FAILURE_CLASSES = """
SELECT COALESCE(e.error->>'type', 'unknown') AS error_type, count(*) AS n, max(e.at) AS latest
FROM scrape_request_event e
WHERE e.at >= now() - make_interval(mins => $1) AND e.status = ANY($2::text[])
GROUP BY 1 ORDER BY latest DESC
"""
_LATEST_FAILURES = """
SELECT e.request_id, l.flow, e.status, e.attempt, e.source, COALESCE(e.error->>'type', 'unknown') AS error_type,
    left(e.error->>'message', $3) AS message, e.at
FROM scrape_request_event e JOIN scrape_request_log l ON l.id = e.request_id
WHERE e.at >= now() - make_interval(mins => $1) AND e.status = ANY($2::text[])
ORDER BY e.at DESC, e.id DESC LIMIT $4
"""
# Today's provider calls and their cost (UTC day), as the workers count them (providers/costs.py).
_SPEND_TODAY = """
SELECT source, sum(calls)::bigint AS calls, sum(cost)::float8 AS cost
FROM provider_spend WHERE day = (now() AT TIME ZONE 'UTC')::date GROUP BY source
"""
_CREDENTIALS = """
SELECT source,
    count(*) FILTER (WHERE enabled AND NOT data_access_expired AND (disabled_till IS NULL OR disabled_till <= now()))
        AS usable,
    count(*) FILTER (WHERE enabled AND NOT data_access_expired AND disabled_till > now()) AS resting,
    count(*) FILTER (WHERE data_access_expired) AS expired,
    count(*) FILTER (WHERE NOT enabled AND NOT data_access_expired) AS disabled
FROM credential GROUP BY source
"""


class FlowRow(BaseModel):
    flow: str
    completed: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    rate_per_minute: float = 0.0
    backlog: int = 0
    in_flight: int = 0


class SourceRow(BaseModel):
    source: str
    attempts: int = 0
    errors: int = 0
    breaker: str = "closed"
    breaker_failures: int = 0
    next_probe_at: datetime | None = None
    last_error: str | None = None
    open_credential_circuits: int = 0
    calls_today: int = 0
    cost_today: float = 0.0
    # Its circuit was opened by the drift alarm: its answers changed shape (providers/drift.py).
    drift: bool = False
    usable: int = 0
    resting: int = 0
    expired: int = 0
    disabled: int = 0


class FailureClass(BaseModel):
    error_type: str
    count: int
    latest: datetime


class Failure(BaseModel):
    request_id: str
    flow: str
    status: str
    attempt: int
    source: str | None
    error_type: str
    message: str | None
    at: datetime
    timeline: str


class BudgetRow(BaseModel):
    """One of ``BEAT_BUDGETS`` today: what is left of it, and when it resets."""

    budget: str
    limit: float
    spent: float
    remaining: float
    resets_at: datetime


class StatusSnapshot(BaseModel):
    """``GET /status``: what Beat is doing and what is failing, over the last ``window_minutes``."""

    at: datetime
    window_minutes: int
    flows: list[FlowRow]
    sources: list[SourceRow]
    budgets: list[BudgetRow] = []
    failure_classes: list[FailureClass]
    failures: list[Failure]


_WINDOW_FIELDS = {"COMPLETE": "completed", "FAILED": "failed", "DEAD_LETTERED": "failed", "RETRYING": "retried"}


def _flows(open_rows: list[Any], window_rows: list[Any], minutes: int) -> list[FlowRow]:
    flows: dict[str, FlowRow] = {}
    for row in open_rows:
        flow = flows.setdefault(row["flow"], FlowRow(flow=row["flow"]))
        if row["status"] == "PROCESSING":
            flow.in_flight += row["n"]
        else:
            flow.backlog += row["n"]
    for row in window_rows:
        flow = flows.setdefault(row["flow"], FlowRow(flow=row["flow"]))
        field = _WINDOW_FIELDS.get(row["status"], "expired")
        setattr(flow, field, getattr(flow, field) + row["n"])
    for flow in flows.values():
        flow.rate_per_minute = round((flow.completed + flow.failed + flow.expired) / minutes, 2)
    return sorted(flows.values(), key=lambda flow: flow.flow)


def _sources(
    attempt_rows: list[Any], breaker_rows: list[Any], credential_rows: list[Any], spend_rows: list[Any]
) -> list[SourceRow]:
    sources: dict[str, SourceRow] = {}

    def of(name: str) -> SourceRow:
        return sources.setdefault(name, SourceRow(source=name))

    for row in attempt_rows:
        of(row["source"]).attempts, of(row["source"]).errors = row["attempts"], row["errors"]
    for row in breaker_rows:
        source = of(row["source"])
        if row["credential_id"] is None:
            source.breaker, source.breaker_failures = row["state"], row["failures"]
            source.next_probe_at, source.last_error = row["next_probe_at"], row["last_error"]
            source.drift = row["state"] != "closed" and DRIFT_NOTE in (row["last_error"] or "")
        elif row["state"] != "closed":
            source.open_credential_circuits += 1
    for row in spend_rows:
        source = of(row["source"])
        source.calls_today, source.cost_today = row["calls"], row["cost"]
    for row in credential_rows:
        source = of(row["source"])
        source.usable, source.resting = row["usable"], row["resting"]
        source.expired, source.disabled = row["expired"], row["disabled"]
    return sorted(sources.values(), key=lambda source: source.source)


def timeline_path(request_id: str) -> str:
    return f"/requests/{quote(request_id, safe='')}/timeline"


async def snapshot(pool: asyncpg.Pool, minutes: int, budgets: list[BudgetRow] | None = None) -> StatusSnapshot:
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        now = await conn.fetchval("SELECT now()")
        open_rows = await conn.fetch(_OPEN_WORK)
        window_rows = await conn.fetch(_WINDOW_BY_FLOW, minutes)
        attempt_rows = await conn.fetch(_WINDOW_BY_SOURCE, minutes, list(_ATTEMPT_ENDS))
        classes = await conn.fetch(_FAILURE_CLASSES, minutes, list(_FAILED_ENDS))
        latest = await conn.fetch(_LATEST_FAILURES, minutes, list(_FAILED_ENDS), MESSAGE_SHOWN, FAILURES_SHOWN)
        credential_rows = await conn.fetch(_CREDENTIALS)
        spend_rows = await conn.fetch(_SPEND_TODAY)
        breaker_rows = await recorded_states(conn)
    return StatusSnapshot(
        at=now,
        window_minutes=minutes,
        flows=_flows(open_rows, window_rows, minutes),
        sources=_sources(attempt_rows, breaker_rows, credential_rows, spend_rows),
        budgets=budgets or [],
        failure_classes=[FailureClass(error_type=r["error_type"], count=r["n"], latest=r["latest"]) for r in classes],
        failures=[
            Failure(**dict(row), timeline=f"/requests/{quote(row['request_id'], safe='')}/timeline") for row in latest
        ],
    )
