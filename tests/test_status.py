"""Status ordering: the rule itself and the sink applying it against real Postgres."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from sinks.status import write_statuses
from topics.models import ErrorInfo, RequestStatus, Status, supersedes, utcnow

P, R, C, F = Status.PROCESSING, Status.PENDING, Status.COMPLETE, Status.FAILED


@pytest.mark.parametrize(
    ("new", "new_attempt", "old", "old_attempt", "expected"),
    [
        (P, 1, None, 1, True),
        (P, 1, R, 1, True),
        (R, 1, P, 1, False),
        (C, 1, P, 1, True),
        (P, 1, C, 1, False),   # a replayed PROCESSING after COMPLETE changes nothing
        (C, 1, F, 1, False),   # terminal is final
        (R, 2, P, 1, True),    # a re-drive starts the next attempt
        (P, 1, R, 2, False),   # the dead attempt's late PROCESSING loses
        (C, 1, R, 2, True),    # but its late COMPLETE is still an answer
    ],
)
def test_supersedes(new, new_attempt, old, old_attempt, expected):
    assert supersedes(new, new_attempt, old, old_attempt) is expected


def _event(request_id: str, status: Status, attempt: int = 1, offset_s: float = 0.0, **fields) -> RequestStatus:
    return RequestStatus(request_id=request_id, status=status, attempt=attempt, flow="refresh_profile_basic",
                         params={"handle": "h"}, at=utcnow() + timedelta(seconds=offset_s), **fields)


async def _row(pool, request_id):
    return await pool.fetchrow("SELECT status, attempt, picked_at, scraped_at, result FROM scrape_request_log "
                               "WHERE id = $1", request_id)


async def test_replayed_processing_after_complete_changes_nothing(pool):
    rid = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await write_statuses(conn, [_event(rid, R), _event(rid, P, offset_s=1), _event(rid, C, offset_s=2,
                                                                                       result={"events": 1})])
        before = await _row(pool, rid)
        await write_statuses(conn, [_event(rid, P, offset_s=3)])  # a replay, in a later batch
        await write_statuses(conn, [_event(rid, F, offset_s=4, error=ErrorInfo(type="X", message="late"))])
    after = await _row(pool, rid)
    assert before["status"] == after["status"] == "COMPLETE"
    assert dict(before) == dict(after)
    assert json.loads(after["result"]) == {"events": 1}
    events = await pool.fetchval("SELECT count(*) FROM scrape_request_event WHERE request_id = $1", rid)
    assert events == 4  # every distinct status event is kept for the timeline


async def test_out_of_order_within_a_batch_and_duplicates(pool):
    rid = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await write_statuses(conn, [_event(rid, C, offset_s=2), _event(rid, P, offset_s=1), _event(rid, P, offset_s=1)])
    row = await _row(pool, rid)
    assert row["status"] == "COMPLETE" and row["picked_at"] is not None and row["scraped_at"] is not None
    assert await pool.fetchval("SELECT count(*) FROM scrape_request_event WHERE request_id = $1", rid) == 2
