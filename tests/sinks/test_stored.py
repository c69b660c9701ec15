"""Stored counts: what a request's COMPLETE announced, and how much of it the sink wrote or refused.

Against the real Postgres through the writer (records decoded as the sink decodes them), and through the
running stack: raw records on its topics, and a normal request end to end.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid

import httpx
from aiokafka import AIOKafkaProducer

from core import pruning
from sinks import stored
from sinks.routing import decode
from sinks.writer import Written, write_batch
from tests.support import ROOT, beat_env, unique, wait_terminal
from topics import names
from topics.models import Platform, PostLog, ProfileLog, RequestStatus, Status, deterministic_id, utcnow

IG = Platform.INSTAGRAM
COUNTS = "status, stored, events_announced, events_written, events_refused, refused_reason"
# Beyond bigint: the model takes any integer, the instagram_account.followers column does not.
TOO_MANY = 10**20


def profile(request_id: str, n: int, *, attempt: int = 1, followers: int = 10, platform: Platform = IG) -> ProfileLog:
    return ProfileLog(
        event_id=deterministic_id(request_id, attempt, n),
        kind="profile",
        request_id=request_id,
        attempt=attempt,
        source="test",
        platform=platform,
        observed_at=utcnow(),
        profile_id=unique("sp"),
        metrics={"followers": followers},
    )


def status(request_id: str, state: Status, *, attempt: int = 1, announced: int | None = None) -> RequestStatus:
    result = None if announced is None else {"events": {names.PROFILE_LOG: announced}, "announced": announced}
    return RequestStatus(
        request_id=request_id,
        status=state,
        attempt=attempt,
        flow="refresh_profile_basic",
        params={"handle": "h"},
        result=result,
    )


def topic_of(event) -> str:
    return {ProfileLog: names.PROFILE_LOG, PostLog: names.POST_LOG, RequestStatus: names.STATUS}[type(event)]


async def sink(pool, *records: tuple[str, bytes]) -> Written:
    async with pool.acquire() as conn:
        return await write_batch(conn, decode(records))


def as_records(*events) -> list[tuple[str, bytes]]:
    return [(topic_of(e), e.to_bytes()) for e in events]


async def counts(pool, request_id: str) -> dict:
    return dict(await pool.fetchrow(f"SELECT {COUNTS} FROM scrape_request_log WHERE id = $1", request_id))


async def test_a_refused_row_counts_as_refused_whichever_arrives_first(pool, database_url):
    for events_first in (True, False):
        rid = str(uuid.uuid4())
        good, bad = profile(rid, 0), profile(rid, 1, followers=TOO_MANY)
        events = as_records(good, bad)
        complete = as_records(status(rid, Status.COMPLETE, announced=2))
        await sink(pool, *as_records(status(rid, Status.PROCESSING)))
        first, second = (events, complete) if events_first else (complete, events)
        refused_rows = (await sink(pool, *first)).poison
        if events_first:  # the events are in the ledger, but the request is not COMPLETE: nothing counted yet
            assert (await counts(pool, rid))["events_written"] is None
        refused_rows += (await sink(pool, *second)).poison
        row = await counts(pool, rid)
        assert (
            row["status"],
            row["stored"],
            row["events_announced"],
            row["events_written"],
            row["events_refused"],
        ) == ("COMPLETE", True, 2, 1, 1), (events_first, row)
        assert "instagram_account" in row["refused_reason"] and "range" in row["refused_reason"], row
        assert len(refused_rows) == 1  # and the refused row is still dead-lettered
    status_output = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "status", rid],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=beat_env(database_url=database_url, kafka_url="127.0.0.1:9"),
    )
    assert (
        f"stored: yes, 1 of 2 announced events written, 1 refused ({row['refused_reason']})"
        in status_output.stdout.splitlines()
    ), status_output.stdout + status_output.stderr


async def test_duplicates_and_other_attempts_do_not_change_the_counts(pool):
    rid = str(uuid.uuid4())
    events = [profile(rid, n, attempt=2) for n in range(3)]
    stale = [profile(rid, n, attempt=1) for n in range(5)]  # a failed first attempt's events
    await sink(pool, *as_records(*stale, events[0]))
    await sink(pool, *as_records(status(rid, Status.COMPLETE, attempt=2, announced=3), events[1]))
    row = await counts(pool, rid)
    assert (row["stored"], row["events_written"], row["events_refused"]) == (False, 2, 0)
    # Redelivered after a rebalance or a replay: in one batch twice, and again later.
    await sink(pool, *as_records(*events, *events, *stale))
    await sink(pool, *as_records(*events, status(rid, Status.COMPLETE, attempt=2, announced=3)))
    row = await counts(pool, rid)
    assert (
        row["stored"],
        row["events_announced"],
        row["events_written"],
        row["events_refused"],
        row["refused_reason"],
    ) == (True, 3, 3, 0, None)


async def test_a_stored_request_s_ledger_is_pruned_and_late_duplicates_change_nothing(pool):
    done, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    done_events = [profile(done, n) for n in range(2)]
    await sink(
        pool,
        *as_records(
            status(done, Status.COMPLETE, announced=2),
            *done_events,
            status(waiting, Status.COMPLETE, announced=2),
            profile(waiting, 0),
        ),
    )
    assert (await counts(pool, done))["stored"] and not (await counts(pool, waiting))["stored"]
    await pruning.prune(pool)
    ledger = "SELECT count(*) FROM scrape_request_stored WHERE request_id = $1"
    assert await pool.fetchval(ledger, done) == 0
    assert await pool.fetchval(ledger, waiting) == 1  # still needed: one event has not arrived
    await sink(pool, *as_records(done_events[0]))  # a duplicate after the prune
    row = await counts(pool, done)
    assert (row["stored"], row["events_written"], row["events_refused"]) == (True, 2, 0)


async def test_a_complete_and_its_events_written_at_once_by_two_sinks(pool):
    """Each recount reads only what was committed before it: two sinks writing a request's COMPLETE and its
    events at the same moment must not each miss the other's part."""
    rid = str(uuid.uuid4())
    await sink(pool, *as_records(status(rid, Status.PROCESSING)))
    async with pool.acquire() as blocker:
        held = blocker.transaction()
        await held.start()
        await blocker.execute("SELECT pg_advisory_xact_lock($1)", stored.RECOUNT_LOCK)
        both = asyncio.gather(
            sink(pool, *as_records(profile(rid, 0), profile(rid, 1))),
            sink(pool, *as_records(status(rid, Status.COMPLETE, announced=2))),
        )
        await asyncio.sleep(0.5)
        assert not both.done()  # both transactions are open, their first writes made, waiting to recount
        await held.rollback()
        await both
    row = await counts(pool, rid)
    assert (row["stored"], row["events_written"], row["events_refused"]) == (True, 2, 0), row


async def test_events_without_a_table_count_as_written_and_undecodable_ones_as_refused(pool):
    rid = str(uuid.uuid4())
    # A Shopify profile is a valid event this sink has no table for: there is nothing more to store.
    tableless = profile(rid, 0, platform=Platform.SHOPIFY)
    broken = json.loads(profile(rid, 1).to_bytes())
    broken["observed_at"] = "yesterday"
    nameless = {**broken, "request_id": None}
    decoded = decode(
        [
            *as_records(status(rid, Status.COMPLETE, announced=2), tableless),
            (names.PROFILE_LOG, json.dumps(broken).encode()),
            (names.PROFILE_LOG, json.dumps(nameless).encode()),
            (names.PROFILE_LOG, b"\x00garbage"),
        ]
    )
    assert sorted(origin for origin, _ in decoded.poison) == [2, 3, 4]  # dead-lettered by the runner
    async with pool.acquire() as conn:
        assert (await write_batch(conn, decoded)).poison == []
    row = await counts(pool, rid)
    assert (row["stored"], row["events_written"], row["events_refused"]) == (True, 1, 1), row
    assert row["refused_reason"].startswith("ValidationError") and "observed_at" in row["refused_reason"]


async def test_a_complete_without_events_is_stored_and_one_without_announced_is_not(pool):
    empty, unannounced = str(uuid.uuid4()), str(uuid.uuid4())
    await sink(pool, *as_records(status(empty, Status.COMPLETE, announced=0), status(unannounced, Status.COMPLETE)))
    assert {k: v for k, v in (await counts(pool, empty)).items() if k != "status"} == {
        "stored": True,
        "events_announced": 0,
        "events_written": 0,
        "events_refused": 0,
        "refused_reason": None,
    }
    row = await counts(pool, unannounced)
    assert (row["stored"], row["events_announced"], row["events_written"]) == (False, None, 0)


# Through the running stack


async def _eventually_stored(client: httpx.AsyncClient, request_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.get(f"/requests/{request_id}")
        if (answer.status_code == 200 and answer.json()["stored"]) or time.monotonic() > deadline:
            return answer.json()
        await asyncio.sleep(0.2)


async def test_the_api_shows_a_refused_row_in_the_request_s_counts(stack):
    rid = str(uuid.uuid4())
    events = [profile(rid, 0), profile(rid, 1, followers=TOO_MANY)]
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for event in (status(rid, Status.PROCESSING), *events, status(rid, Status.COMPLETE, announced=2)):
            key = event.request_id if isinstance(event, RequestStatus) else event.key
            await producer.send_and_wait(stack.topic(topic_of(event)), event.to_bytes(), key=key.encode())
    finally:
        await producer.stop()
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        body = await _eventually_stored(client, rid)
        assert (
            body["status"],
            body["stored"],
            body["events_announced"],
            body["events_written"],
            body["events_refused"],
        ) == ("COMPLETE", True, 2, 1, 1), body
        assert "instagram_account" in body["refused_reason"]
        timeline = (await client.get(f"/requests/{rid}/timeline")).json()
        assert (timeline["stored"], timeline["events_written"], timeline["events_refused"]) == (True, 1, 1)


async def test_a_normal_request_ends_stored_with_every_announced_event_written(stack, pool):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        created = await client.post(
            "/requests", json={"flow": "refresh_profile_by_handle", "params": {"handle": unique("stored")}}
        )
        request_id = created.json()["id"]
        assert (await wait_terminal(pool, [request_id], timeout=60)) == {request_id: "COMPLETE"}
        body = await _eventually_stored(client, request_id)
    announced = body["result"]["announced"]
    assert announced == sum(n for topic, n in body["result"]["events"].items() if topic in names.STORED_TOPICS)
    assert announced > 1 and (body["stored"], body["events_written"], body["events_refused"]) == (True, announced, 0), (
        body
    )
    # Every announced event has its ledger row, unless the reconciler has already pruned the ledger of this
    # stored request (its counts are final): a partial ledger is what must never be seen.
    ledger = await pool.fetchval(
        "SELECT count(*) FROM scrape_request_stored WHERE request_id = $1 AND attempt = $2",
        request_id,
        body["attempt"],
    )
    assert ledger in (announced, 0), (ledger, announced)
