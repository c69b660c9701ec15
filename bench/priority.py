"""On-demand requests under a saturated provider budget: how long they wait behind a bulk backlog.

    python bench/priority.py [--bulk 2000] [--on-demand 50] [--window 30] [--warmup 10] [--no-bulk-pacing]
                             [--work-dir DIR]

Everything runs on this machine: an embedded Tansu broker, a fresh database on the Postgres at
BEAT_TEST_POSTGRES (default 127.0.0.1:5432), the sandbox, and one ``beat sink``, ``beat worker`` (every
enabled flow, defaults) and ``beat api``. All load is ``refresh_profile_basic`` on ArrayBobo, the only
credential, under ArrayBobo's legacy limit of 100 calls / 30 s, which Beat applies (in process) and the
sandbox enforces on the key in its own sliding log (a call over it is a 429). The sandbox answers after
LATENCY.

1. BULK requests are produced at once to ``beat.scrape.refresh_profile_basic`` (priority 1, bulk): a backlog
   that keeps the limit saturated for the whole run (it would take BULK x 0.3 s to drain).
2. After WARMUP s, one WINDOW of ArrayBobo calls the sandbox accepted: the budget share before.
3. ON_DEMAND requests are posted to ``POST /requests`` without a priority (so on demand, the priority lane),
   evenly over the next WINDOW: about half the budget. The calls accepted in it: the budget share during.
4. Each on-demand request's wait: posted -> COMPLETE (``scraped_at``) minus LATENCY, p50 and p99; and its two
   parts, posted -> PROCESSING and PROCESSING -> COMPLETE minus LATENCY.

Progress lines go to stdout; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Imported once the repository root is on sys.path: the bench runs as a script.

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from app.embedded import free_port  # noqa: E402
from bench.pipeline import BenchError, bench_workspace, percentile, progress, run_bench  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.topic_admin import all_topics, ensure_topics  # noqa: E402
from providers.credentials import CredentialStore  # noqa: E402
from providers.ratelimit import DEFAULT_SOURCE_RATES  # noqa: E402
from tests.support import BeatProcess, beat_env, migrated_database, produce_requests, wait_terminal  # noqa: E402
from topics import names  # noqa: E402
from topics.flows import FLOWS  # noqa: E402

FLOW = "refresh_profile_basic"
SOURCE = "rapidapi-arraybobo"
CREDENTIAL = {"x-rapidapi-key": "bench-arraybobo", "x-rapidapi-host": "instagram-scraper-2022.p.rapidapi.com"}
LIMIT, LIMIT_WINDOW = DEFAULT_SOURCE_RATES[SOURCE].limit, DEFAULT_SOURCE_RATES[SOURCE].window
LATENCY = 0.1


async def wait_http(url: str, procs: list[BeatProcess]) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(300):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not all(proc.alive() for proc in procs):
                break
            await asyncio.sleep(0.1)
    raise BenchError(f"{url} did not answer:\n" + "\n".join(proc.log_tail() for proc in procs))


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url

    async def stats(self) -> tuple[int, int]:
        """ArrayBobo calls accepted so far, and every call answered 429 for exceeding a limit."""
        async with httpx.AsyncClient(base_url=self.url) as client:
            stats = (await client.get("/_sandbox/stats")).json()
        accepted = sum(row["accepted"] for path, row in stats["paths"].items() if path.startswith(f"/{SOURCE}/"))
        over = sum(n for counts in stats["over_limit"].values() for n in counts.values())
        return accepted, over


async def budget_share(sandbox: Sandbox, seconds: float) -> float:
    """Calls the sandbox accepted over the next ``seconds`` / the limit's budget for them."""
    before, _ = await sandbox.stats()
    await asyncio.sleep(seconds)
    after, _ = await sandbox.stats()
    return (after - before) / (LIMIT * seconds / LIMIT_WINDOW)


async def post_on_demand(api_url: str, n: int, spread: float) -> dict[str, float]:
    """``n`` requests posted evenly over ``spread`` seconds without a priority; each id with when it was posted."""
    posted: dict[str, float] = {}
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i * spread / n - time.monotonic()))
            at = time.time()
            response = await client.post(
                "/requests", json={"flow": FLOW, "params": {"handle": f"od_{i}_{uuid.uuid4().hex[:6]}"}}
            )
            if response.status_code != 202:
                raise BenchError(f"POST /requests answered {response.status_code}: {response.text}")
            posted[response.json()["id"]] = at

        await asyncio.gather(*(one(i) for i in range(n)))
    return posted


async def run(args: argparse.Namespace, bootstrap: str, database_url: str, work: Path, cleanup: ExitStack) -> dict:
    sandbox_port, api_port = free_port(), free_port()
    sandbox_env = beat_env(sandbox_latency=str(LATENCY), sandbox_rate_limits={"*": f"{LIMIT}/{LIMIT_WINDOW:g}"})
    procs = [BeatProcess("sandbox", sandbox_env, work / "logs" / "sandbox.log", ["--port", str(sandbox_port)]).start()]
    cleanup.callback(procs[0].terminate, 30)
    sandbox = Sandbox(f"http://127.0.0.1:{sandbox_port}")
    await wait_http(sandbox.url, procs)
    settings = {
        "kafka_url": bootstrap,
        "database_url": database_url,
        "data_dir": str(work / "beat"),
        "topic_prefix": "",
        "api_port": str(api_port),
        "provider_base_urls": {SOURCE: f"{sandbox.url}/{SOURCE}"},
        "source_priorities": {"fetch_profile_by_handle": [SOURCE]},
        # ArrayBobo keeps its legacy limit; the others are lifted (the sandbox meters only what it is told to).
        "source_rate_limits": {label: None for label in DEFAULT_SOURCE_RATES if label != SOURCE},
        "broker_session_timeout": "6",
        # One worker process: its limiter is the whole limit (several without Redis would split it).
        "worker_processes": "1",
        "bulk_pacing": "false" if args.no_bulk_pacing else "true",
    }
    env = beat_env(**settings)
    await ensure_topics(bootstrap, all_topics(load_settings(**settings), FLOWS))
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        await CredentialStore(pool).add(SOURCE, CREDENTIAL)
        for role in ("sink", "worker", "api"):
            proc = BeatProcess(role, env, work / "logs" / f"{role}.log").start()
            cleanup.callback(proc.terminate, 30)
            procs.append(proc)
        api_url = f"http://127.0.0.1:{api_port}"
        await wait_http(api_url, procs)
        warm = await post_on_demand(api_url, 1, 0)
        if set((await wait_terminal(pool, list(warm), 120)).values()) != {"COMPLETE"}:
            raise BenchError("the warm-up request did not complete:\n" + "\n".join(p.log_tail() for p in procs))
        progress("stack up; a warm-up request completed")

        bodies = [{"params": {"handle": f"bulk_{n}"}} for n in range(args.bulk)]
        await produce_requests(bootstrap, names.scrape_topic(FLOW), bodies, key_field="handle")
        progress(f"{args.bulk} bulk requests produced; the budget is {LIMIT} calls / {LIMIT_WINDOW:g} s")
        await asyncio.sleep(args.warmup)
        before = await budget_share(sandbox, args.window)
        progress(f"budget used before: {before:.3f}")

        during_task = asyncio.ensure_future(budget_share(sandbox, args.window))
        posted = await post_on_demand(api_url, args.on_demand, args.window)
        during = await during_task
        progress(f"{args.on_demand} on-demand requests posted; budget used during: {during:.3f}")
        statuses = await wait_terminal(pool, list(posted), 120)
        if set(statuses.values()) != {"COMPLETE"}:
            raise BenchError(f"on-demand requests did not all complete: {statuses}")
        rows = await pool.fetch("SELECT id, scraped_at FROM scrape_request_log WHERE id = ANY($1)", list(posted))
        waits = [(row["scraped_at"].timestamp() - posted[row["id"]] - LATENCY) * 1000 for row in rows]
        # Where the wait goes: posted -> PROCESSING (the facade, the broker, a flow slot), then PROCESSING ->
        # COMPLETE less the provider's latency (the rate limiter's slot).
        started = await pool.fetch(
            "SELECT request_id, at FROM scrape_request_event WHERE request_id = ANY($1) AND status = 'PROCESSING'",
            list(posted),
        )
        to_start = {row["request_id"]: (row["at"].timestamp() - posted[row["request_id"]]) * 1000 for row in started}
        in_flow = [
            (row["scraped_at"].timestamp() - posted[row["id"]] - LATENCY) * 1000 - to_start[row["id"]]
            for row in rows
            if row["id"] in to_start
        ]
        bulk_done = await pool.fetchval(
            "SELECT count(*) FROM scrape_request_log WHERE status = 'COMPLETE' AND params->>'handle' LIKE 'bulk_%'"
        )
        _, over_limit = await sandbox.stats()
    return {
        "on_demand_wait_p50_ms": round(percentile(waits, 0.5), 1),
        "on_demand_wait_p99_ms": round(percentile(waits, 0.99), 1),
        "on_demand_wait_max_ms": round(max(waits), 1),
        "to_processing_p50_ms": round(percentile(list(to_start.values()), 0.5), 1),
        "to_processing_p99_ms": round(percentile(list(to_start.values()), 0.99), 1),
        "processing_p50_ms": round(percentile(in_flow, 0.5), 1),
        "processing_p99_ms": round(percentile(in_flow, 0.99), 1),
        "budget_before": round(before, 3),
        "budget_during": round(during, 3),
        "provider_429s": over_limit,
        "bulk_completed": bulk_done,
        "bulk": args.bulk,
        "on_demand": args.on_demand,
        "latency_ms": LATENCY * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bulk", type=int, default=2000)
    parser.add_argument("--on-demand", type=int, default=50)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of each budget measurement")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of backlog before measuring")
    parser.add_argument("--no-bulk-pacing", action="store_true", help="BEAT_BULK_PACING=false, to compare")
    parser.add_argument("--work-dir", help="keep the logs here (default: a temporary directory, removed)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    progress(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with ExitStack() as cleanup:
        work, broker = bench_workspace(cleanup, args.work_dir)
        database_url = cleanup.enter_context(migrated_database("beat_bench_priority"))
        result = asyncio.run(run(args, broker.bootstrap, database_url, work, cleanup))
        progress(f"stopping; load average {os.getloadavg()[0]:.1f}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    run_bench(main)
