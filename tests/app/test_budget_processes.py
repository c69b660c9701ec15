"""A daily budget that runs out across two real ``beat worker`` processes sharing Redis, in both modes; the
spend they counted; and ``beat costs``."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from providers.budgets import KEY_PREFIX
from providers.sandbox.config import SandboxConfig
from providers.sources import SOURCES
from tests.conftest import isolated
from tests.support import REDIS_URL, BeatProcess, beat_env, partition_owners, produce_requests, run_beat
from topics import names

BASIC = "refresh_profile_basic"
BUDGET = 5
REQUESTS = 12


async def _each_owns(workers: list[BeatProcess], topic: str, timeout: float) -> None:
    """Once every worker owns some of ``topic``'s partitions: both take part in what follows."""
    deadline = time.monotonic() + timeout
    while True:
        owners = [partition_owners(w.log_path.read_text(errors="replace"), topic) for w in workers]
        if all(owner.get(w.pid) for owner, w in zip(owners, workers, strict=True)):
            return
        for worker in workers:
            assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"not every worker owns {topic}: {owners}"
        await asyncio.sleep(0.25)


async def _settled(pool, ids: list[str], ends: set[str], timeout: float) -> dict[str, tuple[str, str | None]]:
    """id -> (status, error type) once every request is in one of ``ends``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await pool.fetch("SELECT id, status, error_type FROM scrape_request_log WHERE id = ANY($1)", ids)
        found = {row["id"]: (row["status"], row["error_type"]) for row in rows}
        if len(found) == len(ids) and all(status in ends for status, _ in found.values()):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.25)


def _spent(rows) -> tuple[int, float]:
    return sum(r["calls"] for r in rows), sum(r["cost"] for r in rows)


@pytest.mark.parametrize("mode", ["retry", "fail"])
async def test_a_flow_budget_runs_out_across_two_processes(broker, database_url, session_dir, pool, mode) -> None:
    settings = {
        "redis_url": REDIS_URL,
        "budgets": {f"flow:{BASIC}": BUDGET},
        "source_costs": dict.fromkeys(SOURCES, 1),
        "budget_mode": mode,
        # The budget resets at UTC midnight: a retry waits for it without giving up.
        "retry_max_wait": "90000",
        "flow_concurrency": {BASIC: 3},
    }
    spend_query = "SELECT source, credential_id, calls, cost FROM provider_spend WHERE flow = $1 AND day = $2"
    today = datetime.now(UTC).date()
    before = _spent(await pool.fetch(spend_query, BASIC, today))
    async with isolated(broker, database_url, session_dir, SandboxConfig(), f"bud{mode}", **settings) as (
        prefix,
        spawn,
        sandbox,
    ):
        try:
            topic = f"{prefix}{names.scrape_topic(BASIC)}"
            workers = [spawn("worker", "--flows", BASIC) for _ in range(2)]
            await _each_owns(workers, topic, timeout=60)
            bodies = [{"params": {"handle": f"bud_{uuid.uuid4().hex[:8]}"}} for _ in range(REQUESTS)]
            ids = await produce_requests(broker, topic, bodies, key_field="handle")
            stopped = "RETRYING" if mode == "retry" else "FAILED"
            outcome = await _settled(pool, ids, {"COMPLETE", stopped}, timeout=60)

            # Together the two processes made exactly the budget's calls, one unit each; the rest were held.
            arrivals = httpx.get(f"{sandbox.url}/_sandbox/stats").json()["total"]["arrivals"]
            assert arrivals == BUDGET
            completed = [i for i, (status, _) in outcome.items() if status == "COMPLETE"]
            held = {i: error for i, (status, error) in outcome.items() if status == stopped}
            assert 1 <= len(completed) <= BUDGET and len(held) >= REQUESTS - BUDGET, outcome
            if mode == "fail":
                assert set(held.values()) == {"BudgetExhausted"}, held
            else:
                # Due when the budget resets, holding no worker slot meanwhile, and no attempt spent.
                midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
                rows = await pool.fetch(
                    "SELECT due_at, retries_spent, error_message FROM scrape_request_log WHERE id = ANY($1)",
                    list(held),
                )
                for row in rows:
                    assert abs((row["due_at"] - midnight).total_seconds()) < 60, row
                    assert row["retries_spent"] == 0 and "BudgetWait" in row["error_message"], row

            # The spend both counted, written in batches: per source and credential, under the flow, today.
            deadline = time.monotonic() + 15
            while _spent(rows := await pool.fetch(spend_query, BASIC, today)) != (
                before[0] + BUDGET,
                before[1] + BUDGET,
            ):
                assert time.monotonic() < deadline, [tuple(r) for r in rows]
                await asyncio.sleep(0.25)
            assert all(r["source"] in SOURCES and r["credential_id"] for r in rows), [tuple(r) for r in rows]
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            try:
                for key in client.scan_iter(f"{KEY_PREFIX}{prefix}*"):
                    client.delete(key)
            finally:
                client.close()


async def test_beat_costs_prints_spend_by_source_flow_or_credential(broker, database_url, pool) -> None:
    flow = f"costs_{uuid.uuid4().hex[:6]}"
    today = datetime.now(UTC).date()
    await pool.executemany(
        "INSERT INTO provider_spend (day, source, credential_id, flow, calls, cost) VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (today, "ytapitoken", "11", flow, 3, 201.0),
            (today, "ytapitoken", "12", flow, 2, 2.0),
            (today - timedelta(days=3), "rocketapi", "13", flow, 7, 0.5),
        ],
    )
    env = beat_env(kafka_url=broker, database_url=database_url)

    def costs(*args: str) -> str:
        done = run_beat(env, "costs", *args, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    by_flow = costs("--by", "flow")
    assert f"{today}  ytapitoken / {flow}" in by_flow
    line = next(line for line in by_flow.splitlines() if flow in line)
    assert line.split()[-2:] == ["5", "203"], by_flow
    by_credential = costs("--by", "credential", "--since", "7d")
    lines = {tuple(line.split()[:4]): line.split()[4:] for line in by_credential.splitlines()}
    assert lines[(str(today), "ytapitoken", "/", "11")] == ["3", "201"], by_credential
    assert lines[(str(today - timedelta(days=3)), "rocketapi", "/", "13")] == ["7", "0.5"], by_credential
    assert by_credential.splitlines()[0].split() == ["day", "source", "/", "credential", "calls", "cost"]
