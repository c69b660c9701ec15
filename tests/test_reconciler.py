"""The reconciler against the running stack: re-drive, give up, and produce what was never handed over."""

from __future__ import annotations

import json
import uuid

from tests.support import unique, wait_terminal


async def _insert(pool, *, status: str, age_s: float, redrives: int = 0, enqueued: bool = True,
                  handle: str | None = None) -> str:
    rid = str(uuid.uuid4())
    await pool.execute(
        """
        INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, created_at, status_at,
                                        enqueued, redrives)
        VALUES ($1, 'refresh_profile_basic', 'INSTAGRAM', $2::jsonb, $3, 1,
                now() - make_interval(secs => $4), now() - make_interval(secs => $4), $5, $6)
        """,
        rid, json.dumps({"handle": handle or unique("recon")}), status, age_s, enqueued, redrives,
    )
    return rid


async def test_processing_left_by_a_dead_worker_is_redriven_and_completes(stack, pool):
    # As if a worker took the request, said PROCESSING and died: no record remains on the topic.
    rid = await _insert(pool, status="PROCESSING", age_s=3600)
    statuses = await wait_terminal(pool, [rid], timeout=60)
    assert statuses[rid] == "COMPLETE"
    row = await pool.fetchrow("SELECT attempt, redrives FROM scrape_request_log WHERE id = $1", rid)
    assert (row["attempt"], row["redrives"]) == (2, 1)
    timeline = [tuple(r) for r in await pool.fetch(
        "SELECT attempt, status FROM scrape_request_event WHERE request_id = $1 ORDER BY at, id", rid)]
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
