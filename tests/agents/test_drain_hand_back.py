"""A worker stopped while its flows are still running waits ``BEAT_DRAIN_TIMEOUT``, then hands their requests
back to their topics in the same attempt: a deploy's stop grace covers the drain, and nothing long-running
is cut off and redone as a failure."""

from __future__ import annotations

import asyncio
import time
import uuid

from providers.sandbox.config import SandboxConfig
from tests.conftest import isolated
from tests.support import SandboxKnobs, produce_requests, wait_terminal
from topics import names

BASIC = "refresh_profile_basic"


async def test_a_drain_out_of_time_hands_its_requests_back_in_the_same_attempt(broker, database_url, session_dir, pool):
    settings = {
        "drain_timeout": "1",
        "flow_timeout": f'{{"{BASIC}": 120}}',
        "flow_concurrency": f'{{"{BASIC}": 5}}',
    }
    # Every provider answer takes a minute: the flows are still running when the worker is told to stop.
    slow = SandboxConfig(latency=60)
    async with isolated(broker, database_url, session_dir, slow, "handback", **settings) as (prefix, spawn, sandbox):
        first = spawn("worker", "--flows", BASIC)
        ids = await produce_requests(
            broker,
            f"{prefix}{names.scrape_topic(BASIC)}",
            [{"params": {"handle": f"hb_{uuid.uuid4().hex[:8]}"}} for _ in range(5)],
            key_field="handle",
        )
        deadline = time.monotonic() + 60
        while await pool.fetchval(
            "SELECT count(*) FROM scrape_request_log WHERE id = ANY($1) AND status = 'PROCESSING'", ids
        ) < len(ids):
            assert time.monotonic() < deadline, first.log_tail()
            await asyncio.sleep(0.2)

        stopping = time.monotonic()
        assert first.terminate(timeout=60) == 0, first.log_tail()
        assert time.monotonic() - stopping < 30, "the drain waited for the flows instead of handing them back"
        log = first.log_path.read_text()
        assert "drain: 5 requests handed back to their topics in the same attempt" in log, first.log_tail()
        rows = await pool.fetch("SELECT status, attempt FROM scrape_request_log WHERE id = ANY($1)", ids)
        assert {(row["status"], row["attempt"]) for row in rows} == {("PROCESSING", 1)}

        SandboxKnobs(sandbox.url).set(latency=0)
        second = spawn("worker", "--flows", BASIC)
        statuses = await wait_terminal(pool, ids, timeout=90)
        assert list(statuses.values()) == ["COMPLETE"] * len(ids), second.log_tail()
        attempts = await pool.fetch("SELECT attempt, redrives FROM scrape_request_log WHERE id = ANY($1)", ids)
        assert {(row["attempt"], row["redrives"]) for row in attempts} == {(1, 0)}
