"""The reconciler against the running stack: re-drive, give up, and produce what was never handed over;
a request it can never produce ends DEAD_LETTERED without stopping the others; a reconciler that cannot
go on takes ``beat sink`` down with it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
from aiokafka import AIOKafkaProducer

from core.reconciler import Reconciler
from core.settings import load_settings
from tests.conftest import create_topics, stack_env
from tests.support import (
    BeatProcess,
    EventCollector,
    migrated_database,
    unique,
    wait_terminal,
)
from topics import names

MIB = 1024 * 1024


async def _insert(
    pool,
    *,
    status: str,
    age_s: float,
    redrives: int = 0,
    enqueued: bool = True,
    handle: str | None = None,
    params: dict | None = None,
    flow: str = "refresh_profile_basic",
    expires_at: str | None = None,
) -> str:
    rid = str(uuid.uuid4())
    await pool.execute(
        """
        INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, created_at, status_at,
                                        enqueued, redrives, expires_at)
        VALUES ($1, $7, 'INSTAGRAM', $2::jsonb, $3, 1,
                now() - make_interval(secs => $4), now() - make_interval(secs => $4), $5, $6, $8::text::timestamptz)
        """,
        rid,
        json.dumps(params or {"handle": handle or unique("recon")}),
        status,
        age_s,
        enqueued,
        redrives,
        flow,
        expires_at,
    )
    return rid


async def test_processing_left_by_a_dead_worker_is_redriven_and_completes(stack, pool):
    # As if a worker took the request, said PROCESSING and died: no record remains on the topic.
    rid = await _insert(pool, status="PROCESSING", age_s=3600)
    statuses = await wait_terminal(pool, [rid], timeout=60)
    assert statuses[rid] == "COMPLETE"
    row = await pool.fetchrow("SELECT attempt, redrives FROM scrape_request_log WHERE id = $1", rid)
    assert (row["attempt"], row["redrives"]) == (2, 1)
    timeline = [
        tuple(r)
        for r in await pool.fetch(
            "SELECT attempt, status FROM scrape_request_event WHERE request_id = $1 ORDER BY at, id", rid
        )
    ]
    assert timeline == [(2, "PENDING"), (2, "PROCESSING"), (2, "COMPLETE")]


async def test_gives_up_after_the_bounded_number_of_redrives(stack, pool):
    rid = await _insert(pool, status="PROCESSING", age_s=3600, redrives=2)
    statuses = await wait_terminal(pool, [rid], timeout=30)
    assert statuses[rid] == "FAILED"
    error = await pool.fetchval("SELECT error_message FROM scrape_request_log WHERE id = $1", rid)
    assert "after 2 re-drives" in error


async def test_pending_never_handed_to_the_broker_is_produced(stack, pool):
    rid = await _insert(pool, status="PENDING", age_s=10, enqueued=False)
    statuses = await wait_terminal(pool, [rid], timeout=60)
    assert statuses[rid] == "COMPLETE"
    assert await pool.fetchval("SELECT redrives FROM scrape_request_log WHERE id = $1", rid) == 0


async def test_a_backlog_is_never_redriven(stack, pool):
    # PENDING and handed over: it is waiting in a topic, and only a worker may move it.
    rid = await _insert(pool, status="PENDING", age_s=3600, enqueued=True)
    await wait_terminal(pool, [rid], timeout=4)
    row = await pool.fetchrow("SELECT status, redrives FROM scrape_request_log WHERE id = $1", rid)
    assert (row["status"], row["redrives"]) == ("PENDING", 0)


async def test_a_request_too_large_to_produce_is_dead_lettered_and_the_others_go_on(stack, pool, events):
    # Recorded PENDING (as a facade without the size check would have) with params over the message limit.
    big = await _insert(
        pool, status="PENDING", age_s=10, enqueued=False, params={"handle": unique("big"), "padding": "x" * (MIB + 1)}
    )
    normal = await _insert(pool, status="PENDING", age_s=10, enqueued=False)
    statuses = await wait_terminal(pool, [big, normal], timeout=60)
    assert statuses == {big: "DEAD_LETTERED", normal: "COMPLETE"}
    row = await pool.fetchrow(
        "SELECT error_type, error_message, octet_length(params::text) AS size FROM scrape_request_log WHERE id = $1",
        big,
    )
    assert row["error_type"] == "MessageTooLarge"
    assert row["error_message"].endswith("1048576-byte message limit (BEAT_MAX_MESSAGE_BYTES)"), row["error_message"]
    assert row["size"] > MIB, "the status table keeps the stored params"
    [letter] = await events.events(big, stack.topic(names.DEAD_LETTER))
    assert letter["error"]["type"] == "MessageTooLarge" and letter["original_truncated"]
    assert letter["original_size"] > MIB
    assert letter["original_topic"] == stack.topic("beat.scrape.refresh_profile_basic")
    # The reconciler is still at work.
    later = await _insert(pool, status="PENDING", age_s=10, enqueued=False)
    assert await wait_terminal(pool, [later], timeout=60) == {later: "COMPLETE"}


async def test_a_producer_refusal_and_unreadable_rows_cost_only_their_own_request(broker):
    """Beat allows 4 MiB here while the producer (aiokafka's default) refuses more than 1 MiB: the oversized
    request meets the producer's MessageSizeTooLargeError. Beside it a row Python cannot read (a year past
    9999) and a row of a flow Beat does not have. The normal request is produced all the same."""
    prefix = f"recon{uuid.uuid4().hex[:6]}."
    with migrated_database("beat_recon") as url:
        settings = load_settings(
            kafka_url=broker,
            database_url=url,
            topic_prefix=prefix,
            reconcile_pending_after=0,
            max_message_bytes=4 * MIB,
        )
        await create_topics({"BEAT_KAFKA_URL": broker, "BEAT_TOPIC_PREFIX": prefix})
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        collector = EventCollector(broker, [settings.topic(t) for t in (names.STATUS, names.DEAD_LETTER)])
        await collector.start()
        try:
            big = await _insert(
                pool,
                status="PENDING",
                age_s=10,
                enqueued=False,
                params={"handle": unique("big"), "padding": "x" * (MIB + 1)},
            )
            unreadable = await _insert(
                pool, status="PENDING", age_s=10, enqueued=False, expires_at="20000-01-01T00:00:00Z"
            )
            ghost = await _insert(pool, status="PROCESSING", age_s=10**6, flow="no_such_flow")
            normal = await _insert(pool, status="PENDING", age_s=10, enqueued=False)
            reconciler = Reconciler(settings, pool, producer)

            assert await reconciler.run_once() == {
                "redriven": 0,
                "abandoned": 0,
                "enqueued": 1,
                "reproduced": 0,
                "dead_lettered": 3,
                "pruned": 0,
            }
            # Done with: a second pass finds nothing to do, and fails on nothing.
            assert await reconciler.run_once() == {
                "redriven": 0,
                "abandoned": 0,
                "enqueued": 0,
                "reproduced": 0,
                "dead_lettered": 0,
                "pruned": 0,
            }

            status_topic = settings.topic(names.STATUS)
            ended = {}
            for rid in (big, unreadable, ghost, normal):
                found = await collector.events(rid, status_topic)
                ended[rid] = [(event["status"], (event["error"] or {}).get("type")) for event in found]
            assert ended == {
                big: [("DEAD_LETTERED", "MessageTooLarge")],
                unreadable: [("DEAD_LETTERED", "InvalidRequest")],
                ghost: [("DEAD_LETTERED", "UnknownFlow")],
                normal: [("PENDING", None)],
            }
            [big_status] = await collector.events(big, status_topic)
            assert "max_request_size" in big_status["error"]["message"] and big_status["params"] == {}
            [unreadable_status] = await collector.events(unreadable, status_topic)
            assert "the stored row cannot be read" in unreadable_status["error"]["message"]
            letters = {
                rid: (await collector.events(rid, settings.topic(names.DEAD_LETTER)))[0]["error"]["type"]
                for rid in (big, unreadable, ghost)
            }
            assert letters == {big: "MessageTooLarge", unreadable: "InvalidRequest", ghost: "UnknownFlow"}
            assert await pool.fetchval("SELECT count(*) FROM scrape_request_log WHERE enqueued") == 4
        finally:
            await collector.stop()
            await producer.stop()
            await pool.close()


async def test_a_reconciler_that_cannot_work_takes_beat_sink_down_loudly(broker, session_dir):
    """A schema the reconciler's queries do not fit (a column renamed under it) fails every pass the same way:
    after a few, the reconciler stops and ``beat sink`` exits 1 with the traceback in its log."""
    prefix = f"recondead{uuid.uuid4().hex[:6]}."
    with migrated_database("beat_recon") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ALTER TABLE scrape_request_log RENAME COLUMN redrives TO redrives_elsewhere")
        finally:
            await conn.close()
        env = stack_env(broker, url, prefix, "http://127.0.0.1:9", session_dir / prefix, reconcile_interval="0.1")
        await create_topics(env)
        sink = BeatProcess("sink", env, session_dir / "logs" / prefix / "sink.log").start()
        try:
            deadline = time.monotonic() + 45
            while sink.alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert not sink.alive(), f"beat sink kept running without its reconciler:\n{sink.log_tail()}"
            log = sink.log_path.read_text(errors="replace")
            assert sink.proc.returncode == 1, log[-3000:]
            assert "the reconciler stopped; beat sink exits" in log
            assert "Traceback" in log and "UndefinedColumnError" in log and "redrives" in log
            # Each failed pass left one traceback at most for the same failure, not one per retry.
            assert log.count("reconciler pass failed (") == 1, log[-3000:]
        finally:
            sink.kill()


async def _insert_retrying(pool, *, attempt: int, retries_spent: int, overdue_s: float) -> str:
    """A RETRYING request whose retry record was lost: its due time passed ``overdue_s`` ago."""
    rid = str(uuid.uuid4())
    await pool.execute(
        """
        INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, retry_count, retries_spent,
                                        due_at, error_type, error_message, created_at, status_at, enqueued)
        VALUES ($1, 'refresh_profile_basic', 'INSTAGRAM', $2::jsonb, 'RETRYING', $3, $3 - 1, $4,
                now() - make_interval(secs => $5), 'ProviderUnavailable', 'lama: 503', now() - interval '1 hour',
                now() - make_interval(secs => $5), true)
        """,
        rid,
        json.dumps({"handle": unique("lost")}),
        attempt,
        retries_spent,
        overdue_s,
    )
    return rid


async def test_retrying_long_past_its_due_time_is_redriven_spending_an_attempt(stack, pool):
    rid = await _insert_retrying(pool, attempt=2, retries_spent=1, overdue_s=3600)
    # Waiting in a tier and not yet past its due time plus the grace: left alone.
    waiting = await _insert_retrying(pool, attempt=2, retries_spent=1, overdue_s=10)
    assert await wait_terminal(pool, [rid], timeout=60) == {rid: "COMPLETE"}
    row = await pool.fetchrow(
        "SELECT attempt, retries_spent, redrives, due_at FROM scrape_request_log WHERE id = $1", rid
    )
    assert tuple(row) == (3, 2, 1, None)
    timeline = [
        tuple(r)
        for r in await pool.fetch(
            "SELECT attempt, status FROM scrape_request_event WHERE request_id = $1 ORDER BY at, id", rid
        )
    ]
    assert timeline == [(3, "PENDING"), (3, "PROCESSING"), (3, "COMPLETE")]
    assert await pool.fetchval("SELECT status FROM scrape_request_log WHERE id = $1", waiting) == "RETRYING"


async def test_a_lost_retry_with_its_attempts_spent_ends_failed(stack, pool):
    # BEAT_RETRY_MAX_ATTEMPTS is 4: the re-drive would be the fifth counted attempt.
    rid = await _insert_retrying(pool, attempt=4, retries_spent=3, overdue_s=3600)
    assert await wait_terminal(pool, [rid], timeout=30) == {rid: "FAILED"}
    row = await pool.fetchrow(
        "SELECT attempt, error_type, error_message, redrives FROM scrape_request_log WHERE id = $1", rid
    )
    assert (row["attempt"], row["error_type"], row["redrives"]) == (4, "ProviderUnavailable", 0)
    assert row["error_message"].startswith("gave up after 4 attempts"), row["error_message"]
    assert "never came back" in row["error_message"]
