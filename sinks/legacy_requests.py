"""The legacy ``scrape_request_log`` (legacy §1.2, §11.7) as Beat request history.

Each legacy row becomes the status event it ended in, written by the status sink's own code
(``sinks.status.write_statuses``): the request's row keeps the legacy bigint id as text, so
``GET /scrape_request_log/flow/{id}`` finds it, and its timeline holds that one event. A request the
legacy left PENDING or PROCESSING (or in the unused RETRIEVING/PARSING) is imported FAILED with
"not migrated; re-submit": Beat never ran it, and the reconciler must not fire it. The legacy
``retry_count`` is the attempt number (a new row has 1), so it becomes the attempt; ``data`` is the
flow's result text (COMPLETE) or the exception message (FAILED).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from sinks.legacy_tables import INT, JSON, TEXT, TIME, Refused
from sinks.status import write_statuses
from topics.dead_letter import error_info as bounded_error
from topics.limits import INT32_MAX, INT32_MIN, clamp, clean_json, clean_text
from topics.models import ErrorInfo, Platform, RequestStatus, Status, utcnow

COLUMNS = {
    "source": TEXT,
    "platform": TEXT,
    "data": TEXT,
    "flow": TEXT,
    "idempotency_key": TEXT,
    "status": TEXT,
    "params": JSON,
    "priority": INT,
    "scraped_at": TIME,
    "created_at": TIME,
    "expires_at": TIME,
    "account_id": TEXT,
    "picked_at": TIME,
    "retry_count": INT,
}

NOT_MIGRATED = ErrorInfo(type="NotMigrated", message="not migrated; re-submit")
_UNFINISHED = frozenset({"PENDING", "PROCESSING", "RETRIEVING", "PARSING"})
_PLATFORMS = {platform.value for platform in Platform}

# What write_statuses does not carry: the legacy idempotency key (a re-submission with it after the cut-over
# names the imported request, as it did in the legacy; one a Beat request already holds is left off) and when
# the legacy worker picked the request up.
_EXTRAS = """
UPDATE scrape_request_log AS t
SET idempotency_key = COALESCE(t.idempotency_key, u.key), picked_at = COALESCE(t.picked_at, u.picked_at)
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id, key, picked_at)
WHERE t.id = u.id
  AND ((t.idempotency_key IS NULL AND u.key IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM scrape_request_log o WHERE o.idempotency_key = u.key))
       OR (t.picked_at IS NULL AND u.picked_at IS NOT NULL))
"""


def _text(value: str | None) -> str | None:
    return clean_text(value) if value else None


def status_of(legacy_id: int, row: dict[str, Any], now: datetime) -> RequestStatus:
    """The status event a legacy row ended in; raises Refused when it names no known status."""
    status = (row.get("status") or "").upper()
    data = _text(row.get("data"))
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    if status in _UNFINISHED:
        outcome, error, at = Status.FAILED, NOT_MIGRATED, now
    elif status == "COMPLETE":
        outcome, at = Status.COMPLETE, row.get("scraped_at") or row.get("created_at") or now
        result = {"legacy_data": data} if data and data != "None" else None
    elif status == "FAILED":
        outcome, at = Status.FAILED, row.get("scraped_at") or row.get("created_at") or now
        error = bounded_error("LegacyFailure", data or "failed in the legacy engine")
    else:
        raise Refused(f"unknown status {status[:40]!r}")
    platform = (row.get("platform") or "").upper()
    params = row.get("params")
    try:
        return RequestStatus(
            request_id=str(legacy_id),
            status=outcome,
            attempt=clamp(max(row.get("retry_count") or 1, 1), 1, INT32_MAX),
            source=_text(row.get("source")),
            error=error,
            result=result,
            at=at,
            flow=_text(row.get("flow")) or "",
            platform=Platform(platform) if platform in _PLATFORMS else None,
            params=clean_json(params) if isinstance(params, dict) else {},
            priority=clamp(row.get("priority") or 1, INT32_MIN, INT32_MAX),
            account_id=_text(row.get("account_id")),
            created_at=row.get("created_at"),
            expires_at=row.get("expires_at"),
        )
    except ValidationError as exc:
        raise Refused(f"unreadable {', '.join(str(e['loc'][0]) for e in exc.errors() if e['loc'])}") from None


async def write_requests(conn: asyncpg.Connection, rows: list[tuple[int, dict[str, Any]]]) -> tuple[int, list[str]]:
    """Write the legacy rows (by legacy id); how many requests were new, and the reasons of those refused."""
    now = utcnow()
    events: list[RequestStatus] = []
    extras: list[tuple[str, str | None, datetime | None]] = []
    refused: list[str] = []
    for legacy_id, row in rows:
        try:
            events.append(status_of(legacy_id, row, now))
        except Refused as exc:
            refused.append(str(exc))
            continue
        extras.append((str(legacy_id), _text(row.get("idempotency_key")), row.get("picked_at")))
    if not events:
        return 0, refused
    ids = [event.request_id for event in events]
    known = {r["id"] for r in await conn.fetch("SELECT id FROM scrape_request_log WHERE id = ANY($1::text[])", ids)}
    await write_statuses(conn, events)
    await conn.execute(_EXTRAS, *[list(column) for column in zip(*extras, strict=True)])
    return len(set(ids) - known), refused
