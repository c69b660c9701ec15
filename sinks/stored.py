"""How much of each request's data is stored: a ledger of the events the sink met, and counts on the request.

Every event on a stored topic names its request, attempt and event id. The sink
records each once in ``scrape_request_stored`` (written, or refused with the
reason) in the transaction that writes the event, so a redelivered event — after
a rebalance, a re-drive, a replay — is never counted twice. The counts of the
requests a batch touched are then recomputed from the ledger, for the attempt of
their COMPLETE only, whichever of the events and the COMPLETE arrived first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from topics.limits import INT32_MAX, clamp, clean_text

# A b-tree entry holds at most about 2.7 kB; an id longer than this belongs to no request Beat could record.
MAX_KEY_BYTES = 2000
MAX_REASON = 500
# Serializes the recount between sink processes (see ``record``); the value is arbitrary but fixed.
RECOUNT_LOCK = 0x62656174_636E7400

_INSERT = """
INSERT INTO scrape_request_stored (request_id, attempt, event_id, refused)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[])
ON CONFLICT (request_id, attempt, event_id) DO NOTHING
"""

# Counts only the COMPLETE's attempt: the ledger may also hold events of an attempt that failed or was re-driven.
# A stored request's counts are final, so its ledger rows can be pruned and a late duplicate changes nothing.
_RECOUNT = """
UPDATE scrape_request_log AS t
SET events_written = c.written, events_refused = c.refused, refused_reason = c.reason,
    stored = COALESCE(c.written + c.refused >= t.events_announced, false)
FROM (
    SELECT r.id, count(s.event_id) FILTER (WHERE s.refused IS NULL) AS written, count(s.refused) AS refused,
        min(s.refused) AS reason
    FROM scrape_request_log AS r
    LEFT JOIN scrape_request_stored AS s ON s.request_id = r.id AND s.attempt = r.attempt
    WHERE r.id = ANY($1::text[]) AND r.status = 'COMPLETE' AND NOT r.stored
    GROUP BY r.id
) AS c
WHERE t.id = c.id
  AND (t.events_written, t.events_refused, t.refused_reason, t.stored) IS DISTINCT FROM
      (c.written, c.refused, c.reason, COALESCE(c.written + c.refused >= t.events_announced, false))
"""


@dataclass(frozen=True, slots=True)
class Counted:
    """An event as the ledger knows it."""

    request_id: str
    attempt: int
    event_id: str


def counted(request_id: object, attempt: object, event_id: object) -> Counted | None:
    """The ledger key of an event, cleaned as the key columns can hold it; None when it names nothing countable."""
    if not isinstance(request_id, str) or not isinstance(event_id, str):
        return None
    request_id, event_id = clean_text(request_id), clean_text(event_id)
    if not request_id or not event_id or len(request_id.encode()) + len(event_id.encode()) > MAX_KEY_BYTES:
        return None
    number = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 1
    return Counted(request_id, clamp(number, 1, INT32_MAX), event_id)


def named_in(value: bytes | None) -> Counted | None:
    """The ledger key of a record that did not decode, if its JSON can still be read for one."""
    try:
        data = json.loads((value or b"").decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    return counted(data.get("request_id"), data.get("attempt", 1), data.get("event_id"))


def reason(error_type: str, message: str) -> str:
    return clean_text(f"{error_type}: {message}")[:MAX_REASON]


async def record(
    conn: asyncpg.Connection, events: Iterable[tuple[Counted, str | None]], completed: Iterable[str]
) -> None:
    """Put the batch's events in the ledger (refused: the reason, or None when written) and recount the
    requests they belong to and the requests the batch completed. Called inside the batch's transaction,
    holding the lock ``lock`` takes."""
    outcomes: dict[Counted, str | None] = {}
    for event, refused in events:
        # Within one batch a written copy of an event wins over a refused one: its data is stored.
        if event not in outcomes or outcomes[event] is not None:
            outcomes[event] = refused
    if outcomes:
        await conn.execute(
            _INSERT,
            [e.request_id for e in outcomes],
            [e.attempt for e in outcomes],
            [e.event_id for e in outcomes],
            list(outcomes.values()),
        )
    touched = {e.request_id for e in outcomes} | set(completed)
    if touched:
        await conn.execute(_RECOUNT, sorted(touched))


async def lock(conn: asyncpg.Connection) -> None:
    """Take the recount lock until the transaction ends.

    Two sink processes may write a request's COMPLETE and its events at the same time; each recount reads
    only what was committed before it, so without this each could miss the other's part. With it, the
    second recount starts after the first commit and sees both. Taken before the batch writes any status
    row, so no sink holds a row another one's recount waits for while it waits for the lock.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1)", RECOUNT_LOCK)
