"""Reading a request's status and timeline: one place for the facade and ``beat status``."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

# How much of a request's data the sink stored (contract §2, *stored*): the COMPLETE's announced events,
# those written and refused, why, and whether every announced event is accounted for.
STORED_COLUMNS = "stored, events_announced, events_written, events_refused, refused_reason"
STATUS_COLUMNS = (
    "id, flow, platform, params, status, attempt, source, error_type, error_message, result, priority, "
    f"retry_count, account_id, created_at, expires_at, picked_at, scraped_at, updated_at, redrives, {STORED_COLUMNS}"
)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def status_view(row: asyncpg.Record) -> dict[str, Any]:
    """A status row with params and result as the JSON they are and the error as one object."""
    view = dict(row)
    view["params"] = _loads(view["params"])
    view["result"] = _loads(view["result"])
    error_type, error_message = view.pop("error_type"), view.pop("error_message")
    view["error"] = {"type": error_type, "message": error_message} if error_type else None
    return view


async def read_status(db: asyncpg.Pool | asyncpg.Connection, request_id: str) -> dict[str, Any] | None:
    """The request's latest status, or None when no request has this id."""
    row = await db.fetchrow(f"SELECT {STATUS_COLUMNS} FROM scrape_request_log WHERE id = $1", request_id)
    return None if row is None else status_view(row)


async def read_timeline(db: asyncpg.Pool | asyncpg.Connection, request_id: str) -> list[dict[str, Any]]:
    """Every status event of the request, oldest first (empty when it has none)."""
    rows = await db.fetch(
        "SELECT status, attempt, at, source, error, result FROM scrape_request_event "
        "WHERE request_id = $1 ORDER BY at, attempt, id",
        request_id,
    )
    return [{**dict(r), "error": _loads(r["error"]), "result": _loads(r["result"])} for r in rows]


async def read_stored(db: asyncpg.Pool | asyncpg.Connection, request_id: str) -> dict[str, Any]:
    """The stored counts of the request (all None while it has no status row)."""
    counts = await db.fetchrow(f"SELECT {STORED_COLUMNS} FROM scrape_request_log WHERE id = $1", request_id)
    return {
        **(dict(counts) if counts else dict.fromkeys(STORED_COLUMNS.split(", "), None)),
        "stored": bool(counts and counts["stored"]),
    }
