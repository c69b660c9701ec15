"""Status ordering and lenient status decoding: the rules, and the sink applying them against real Postgres."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from sinks.routing import decode
from sinks.status import write_statuses
from sinks.writer import write_batch
from topics import names
from topics.limits import clean_text
from topics.models import ErrorInfo, RequestStatus, Status, supersedes, utcnow

P, R, C, F = Status.PROCESSING, Status.PENDING, Status.COMPLETE, Status.FAILED
T, D = Status.RETRYING, Status.REDRIVEN


@pytest.mark.parametrize(
    ("new", "new_attempt", "old", "old_attempt", "expected"),
    [
        (P, 1, None, 1, True),
        (P, 1, R, 1, True),
        (R, 1, P, 1, False),
        (C, 1, P, 1, True),
        (P, 1, C, 1, False),  # a replayed PROCESSING after COMPLETE changes nothing
        (C, 1, F, 1, False),  # terminal is final
        (R, 2, P, 1, True),  # a re-drive starts the next attempt
        (P, 1, R, 2, False),  # the dead attempt's late PROCESSING loses
        (C, 1, R, 2, False),  # and so does its late COMPLETE: a stale terminal of an older attempt
        (C, 2, R, 2, True),
        (T, 1, P, 1, True),  # a transient failure waits for its retry
        (P, 1, T, 1, False),  # a replayed PROCESSING after RETRYING changes nothing
        (P, 2, T, 1, True),  # the retry's PROCESSING moves on
        (F, 1, T, 1, True),  # the attempt that was retrying may still end it
        (F, 1, T, 2, False),
        (D, 2, C, 1, True),  # an operator's re-drive reopens a terminal request
        (D, 1, F, 1, False),  # only as a later attempt
        (P, 2, D, 2, True),
        (D, 2, P, 2, False),
    ],
)
def test_supersedes(new, new_attempt, old, old_attempt, expected):
    assert supersedes(new, new_attempt, old, old_attempt) is expected


def _event(request_id: str, status: Status, attempt: int = 1, offset_s: float = 0.0, **fields) -> RequestStatus:
    return RequestStatus(
        request_id=request_id,
        status=status,
        attempt=attempt,
        flow="refresh_profile_basic",
        params={"handle": "h"},
        at=utcnow() + timedelta(seconds=offset_s),
        **fields,
    )


async def _row(pool, request_id):
    return await pool.fetchrow(
        "SELECT status, attempt, picked_at, scraped_at, result FROM scrape_request_log WHERE id = $1", request_id
    )


async def test_the_upsert_applies_supersedes_exactly(pool):
    """Every (stored, arriving) pair of statuses and attempts: what Postgres keeps is what ``supersedes`` says."""
    cases = {}
    for old, old_attempt, new, new_attempt in itertools.product(Status, (1, 2), Status, (1, 2)):
        cases[str(uuid.uuid4())] = (old, old_attempt, new, new_attempt)
    async with pool.acquire() as conn:
        await write_statuses(conn, [_event(rid, old, old_attempt) for rid, (old, old_attempt, _, _) in cases.items()])
        await write_statuses(
            conn, [_event(rid, new, new_attempt, offset_s=1) for rid, (_, _, new, new_attempt) in cases.items()]
        )
    rows = {
        r["id"]: (Status(r["status"]), r["attempt"])
        for r in await pool.fetch("SELECT id, status, attempt FROM scrape_request_log WHERE id = ANY($1)", list(cases))
    }
    wrong = [
        (old.value, old_attempt, new.value, new_attempt, rows[rid])
        for rid, (old, old_attempt, new, new_attempt) in cases.items()
        if rows[rid] != ((new, new_attempt) if supersedes(new, new_attempt, old, old_attempt) else (old, old_attempt))
    ]
    assert wrong == []
    assert len({supersedes(*case[2:], *case[:2]) for case in cases.values()}) == 2


async def test_retrying_records_when_the_retry_is_due_and_the_attempts_spent(pool):
    rid = str(uuid.uuid4())
    due = utcnow() + timedelta(seconds=30)
    async with pool.acquire() as conn:
        await write_statuses(
            conn,
            [
                _event(rid, P),
                _event(
                    rid,
                    T,
                    offset_s=1,
                    due_at=due,
                    retries_spent=1,
                    error=ErrorInfo(type="ProviderUnavailable", message="5xx"),
                ),
            ],
        )
        row = await pool.fetchrow(
            "SELECT status, due_at, retries_spent, error_type FROM scrape_request_log WHERE id = $1", rid
        )
        assert tuple(row) == ("RETRYING", due, 1, "ProviderUnavailable")
        await write_statuses(conn, [_event(rid, P, attempt=2, offset_s=2, retries_spent=1)])
    row = await pool.fetchrow(
        "SELECT status, attempt, retry_count, due_at, retries_spent, error_type FROM scrape_request_log WHERE id = $1",
        rid,
    )
    assert tuple(row) == ("PROCESSING", 2, 1, None, 1, None)


async def test_a_redrive_reopens_a_stored_request_and_its_counts_start_again(pool):
    rid = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await write_statuses(conn, [_event(rid, C, result={"announced": 2})])
        # As the sink records once both events are written.
        await conn.execute(
            "UPDATE scrape_request_log SET events_written = 1, events_refused = 1, "
            "refused_reason = 'x', stored = true WHERE id = $1",
            rid,
        )
        await write_statuses(conn, [_event(rid, D, attempt=2, offset_s=1)])
    row = await pool.fetchrow(
        "SELECT status, attempt, events_announced, events_written, events_refused, "
        "refused_reason, stored, scraped_at FROM scrape_request_log WHERE id = $1",
        rid,
    )
    assert tuple(row) == ("REDRIVEN", 2, None, None, None, None, False, None)


async def test_a_redrive_and_its_attempt_s_end_in_one_batch_reopen_then_end_the_request(pool):
    rid = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await write_statuses(conn, [_event(rid, F)])
        # A fast worker: the re-drive, its PROCESSING and its end reach the sink in one batch.
        await write_statuses(
            conn,
            [
                _event(rid, D, attempt=2, offset_s=1),
                _event(rid, P, attempt=2, offset_s=2),
                _event(rid, C, attempt=2, offset_s=3, result={"announced": 0}),
            ],
        )
    row = await pool.fetchrow("SELECT status, attempt FROM scrape_request_log WHERE id = $1", rid)
    assert tuple(row) == ("COMPLETE", 2)


async def test_replayed_processing_after_complete_changes_nothing(pool):
    rid = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await write_statuses(
            conn, [_event(rid, R), _event(rid, P, offset_s=1), _event(rid, C, offset_s=2, result={"events": 1})]
        )
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


# Lenient status decoding: a status row is how a request exists for its callers, so the sink records every
# status record it can attribute to a request, cleaning what Postgres cannot hold.


def _raw(request_id: str, **fields) -> bytes:
    return json.dumps(
        {
            "request_id": request_id,
            "status": "PENDING",
            "flow": "refresh_profile_basic",
            "params": {"handle": "h"},
            **fields,
        }
    ).encode()


async def _sink(pool, *values: bytes):
    async with pool.acquire() as conn:
        return await write_batch(conn, decode((names.STATUS, value) for value in values))


async def _recorded(pool, request_id: str) -> tuple:
    row = await pool.fetchrow("SELECT * FROM scrape_request_log WHERE id = $1", request_id)
    events = await pool.fetch(
        "SELECT status, attempt, source, error, result FROM scrape_request_event WHERE request_id = $1", request_id
    )
    return row, events


async def test_a_status_with_a_nul_is_recorded_without_it(pool):
    rid = str(uuid.uuid4())
    value = _raw(
        rid,
        status="FAILED",
        source="la\x00ma",
        params={"handle": "a\x00b", "k\x00": ["\x00"]},
        error={"type": "Bad\x00", "message": "no \x00 here"},
        account_id="acct\x00",
    )
    assert b"\\u0000" in value
    written = await _sink(pool, value)
    assert written.poison == []
    row, events = await _recorded(pool, rid)
    assert (row["status"], row["source"], row["error_type"], row["error_message"], row["account_id"]) == (
        "FAILED",
        "lama",
        "Bad",
        "no  here",
        "acct",
    )
    assert json.loads(row["params"]) == {"handle": "ab", "k": [""]}
    assert [(e["status"], e["source"], json.loads(e["error"])) for e in events] == [
        ("FAILED", "lama", {"type": "Bad", "message": "no  here"})
    ]


async def test_numbers_beyond_the_columns_are_clamped(pool):
    rid = str(uuid.uuid4())
    written = await _sink(pool, _raw(rid, status="PROCESSING", priority=2**40, attempt=2**40, params={"count": 10**20}))
    assert written.poison == []
    row, events = await _recorded(pool, rid)
    assert (row["status"], row["priority"], row["attempt"], row["retry_count"]) == (
        "PROCESSING",
        2**31 - 1,
        2**31 - 1,
        2**31 - 2,
    )
    assert json.loads(row["params"]) == {"count": str(10**20)}  # jsonb could hold it; the bigint columns not
    assert [(e["status"], e["attempt"]) for e in events] == [("PROCESSING", 2**31 - 1)]


async def test_a_lone_surrogate_is_recorded_replaced(pool):
    rid = str(uuid.uuid4())
    # Escaped as a JSON producer writes it; pydantic's own JSON parser refuses the whole record.
    value = (
        b'{"request_id": "%s", "status": "COMPLETE", "flow": "refresh_profile_basic", '
        b'"params": {"handle": "x\\ud800y"}, "source": "\\udfff", "result": {"\\ud83d": 1}}' % rid.encode()
    )
    with pytest.raises(ValidationError):
        RequestStatus.model_validate_json(value)
    written = await _sink(pool, value)
    assert written.poison == []
    row, events = await _recorded(pool, rid)
    assert (row["status"], json.loads(row["params"]), row["source"], json.loads(row["result"])) == (
        "COMPLETE",
        {"handle": clean_text("x\ud800y")},
        clean_text("\udfff"),
        {clean_text("\ud83d"): 1},
    )
    assert [(e["status"], json.loads(e["result"])) for e in events] == [("COMPLETE", {clean_text("\ud83d"): 1})]


async def test_a_raw_producer_s_pending_is_recorded_and_completed_later(pool):
    """An upstream producer may emit PENDING itself, with fields of its own and without Beat's."""
    rid = str(uuid.uuid4())
    pending = json.dumps(
        {
            "request_id": rid,
            "status": "pending",
            "retry_count": 0,
            "origin": "crm",
            "at": "not a time",
            "platform": "TIKTOK",
            "result": ["x"],
        }
    ).encode()
    processing = RequestStatus(request_id=rid, status=P, flow="refresh_profile_basic", params={"handle": "h"})
    assert (await _sink(pool, pending)).poison == []
    row, _ = await _recorded(pool, rid)
    assert (row["status"], row["flow"], row["platform"], row["result"]) == ("PENDING", "", None, None)
    assert (await _sink(pool, processing.to_bytes())).poison == []
    row, events = await _recorded(pool, rid)
    assert (row["status"], row["flow"], json.loads(row["params"])) == (
        "PROCESSING",
        "refresh_profile_basic",
        {"handle": "h"},
    )
    assert sorted(e["status"] for e in events) == ["PENDING", "PROCESSING"]


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"status": "PENDING", "flow": "f"}',
        b'{"request_id": "", "status": "PENDING"}',
        b'{"request_id": "r", "status": "NOPE"}',
        b'{"request_id": "' + b"x" * 5000 + b'", "status": "PENDING"}',
    ],
)
def test_only_a_status_naming_no_request_is_poison(value):
    decoded = decode([(names.STATUS, value)])
    assert decoded.statuses == [] and [origin for origin, _ in decoded.poison] == [0]


async def test_the_api_answers_for_a_request_whose_only_status_held_a_nul(stack, pool):
    """Through the running stack: a raw status event on the status topic, then ``GET /requests/{id}``."""
    rid = str(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            stack.topic(names.STATUS), _raw(rid, params={"handle": "nul\x00"}, priority=2**40), key=rid.encode()
        )
    finally:
        await producer.stop()
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        deadline = time.monotonic() + 30
        while (answer := await client.get(f"/requests/{rid}")).status_code == 404 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["params"], body["priority"], body["stored"]) == (
            "PENDING",
            {"handle": "nul"},
            2**31 - 1,
            False,
        )
        timeline = (await client.get(f"/requests/{rid}/timeline")).json()
        assert [e["status"] for e in timeline["events"]] == ["PENDING"]
