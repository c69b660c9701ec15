"""Beat under a fixed schedule of provider faults: does every request still end, and at what cost?

    python bench/chaos.py [--requests N] [--outages [--rate R]] [--work-dir DIR]

Everything runs on this machine: an embedded Tansu broker, a fresh database (on the Postgres at
BEAT_TEST_POSTGRES, default 127.0.0.1:5432, else an embedded one), the sandbox, and one ``beat sink``,
``beat worker`` and ``beat api``. The load is the demo's request mix (``app.demo.demo_requests``),
submitted at once through the facade once a warm-up request has completed (t = 0). The schedule
(``SCHEDULE``, seconds from t = 0; why each fault is there is in bench/README.md):

    throughout   10 % of provider calls answer 500
    throughout   ArrayBobo's /ig/post_info/ hangs (BEAT_HTTP_TIMEOUT 3 s)
    5 - 10 s     JoTucker answers every call 429, without Retry-After
    15 - 25 s    Graph API answers every call 503 (an outage)

and the sandbox enforces JoTucker's legacy 5 calls/s and ArrayBobo's 100 calls/30 s, which Beat is
configured with too. Retries run on a compressed schedule (2, 5, 10, 20 s) so a run takes minutes.

With ``--outages`` the dependencies go away too (``OUTAGES``), each through a TCP proxy of the bench's
own or by restarting the embedded broker, while the requests arrive at ``--rate`` a second instead of
all at once (a client that gets 503 tries again after its Retry-After):

    20 - 50 s    Postgres cut, for the worker, the sink and the facade
    65 - 95 s    Redis cut (the rate limiter and the circuit breakers live there)
    110 s        the embedded broker restarted: everything it held is gone

Figures:
  terminal_pct / complete_pct   of the accepted requests (202 from the facade)
  lost                          accepted, but no terminal status when the run ends
  double_terminal               requests with more than one terminal status event
  duplicate_rows                entity rows beyond one per natural key among the run's rows
                                (instagram_account by handle, instagram_post by shortcode)
  over_limit                    calls the sandbox refused for exceeding a configured limit (its own log,
                                apart from the 429s the schedule injects)
  provider_calls                every provider call the run's requests made (trace_log; asset downloads
                                of the pictures they found are not counted)
  retry_cost                    provider calls made by attempts that were retried ÷ calls answered 2xx in
                                the attempts that ended the requests (trace_log, each call placed in the
                                attempt whose PROCESSING preceded it)
  unavailable / server_errors   facade answers 503 (tried again) / any other 5xx (there should be none)
  dead_lettered                 accepted requests that ended DEAD_LETTERED (an outage must never do that)
  outages                       the worker's outage log lines (start, end) per dependency

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
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from app.demo import demo_requests  # noqa: E402
from app.embedded import EmbeddedBroker, free_port  # noqa: E402
from bench.pipeline import BenchError, bench_workspace, fresh_database, progress, run_bench, spawn  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.topic_admin import all_topics, ensure_topics  # noqa: E402
from providers.credentials import CredentialStore  # noqa: E402
from providers.sandbox.config import SandboxConfig  # noqa: E402
from providers.sandbox.seeds import (  # noqa: E402
    SANDBOX_CREDENTIALS,
    sandbox_base_urls,
    sandbox_cdn_base_urls,
    sandbox_service_settings,
    sandbox_source_rate_limits,
    seed_credentials,
)
from tests.support import REDIS_URL, BeatProcess, EventCollector, TcpProxy, beat_env, wait_terminal  # noqa: E402
from topics import names  # noqa: E402
from topics.flows import FLOWS  # noqa: E402
from topics.models import TERMINAL  # noqa: E402

TERMINAL_VALUES = {status.value for status in TERMINAL}
HANG_PATH = "/rapidapi-arraybobo/ig/post_info/"
KEYS = {source: secrets.get("x-rapidapi-key") for source, secrets in SANDBOX_CREDENTIALS.items()}
# Legacy limits (providers/ratelimit.py), enforced by the sandbox per key and configured in Beat per source.
LIMITS = {"rapidapi-jotucker": ("5/1", "5/1s"), "rapidapi-arraybobo": ("100/30", "100/30s")}
BASE = SandboxConfig(
    error_rate=0.1,
    seed=11,
    hang_paths=[HANG_PATH],
    hang_seconds=60,
    rate_limits={KEYS[source]: sandbox for source, (sandbox, _) in LIMITS.items()},
)
BEAT_SETTINGS = {
    "http_timeout": "3",
    "retry_schedule": [2, 5, 10, 20],
    "retry_tiers": {"2s": 2, "5s": 5, "10s": 10, "20s": 20},
    "source_rate_limits": {**sandbox_source_rate_limits(), **{source: beat for source, (_, beat) in LIMITS.items()}},
    "broker_session_timeout": "6",
    "reconcile_interval": "2",
}
# After the last request ends or this long without one ending, the run is over.
STALL = 90.0
STORED_WAIT = 20.0


@dataclass(frozen=True)
class Fault:
    start: float
    end: float
    what: str
    fail_paths: dict[str, int] = field(default_factory=dict)


SCHEDULE = (
    Fault(5.0, 10.0, "JoTucker 429 without Retry-After", {"/rapidapi-jotucker/": 429}),
    Fault(15.0, 25.0, "Graph API 503 outage", {"/graphapi/": 503}),
)


@dataclass(frozen=True)
class Outage:
    dependency: str  # postgres, redis or broker
    start: float
    end: float  # a broker restart is instantaneous: end == start

    @property
    def what(self) -> str:
        return "broker restarted" if self.dependency == "broker" else f"{self.dependency} cut"


OUTAGES = (Outage("postgres", 20.0, 50.0), Outage("redis", 65.0, 95.0), Outage("broker", 110.0, 110.0))


@dataclass
class Dependencies:
    """What ``--outages`` cuts: proxies in front of Postgres and Redis, and the embedded broker."""

    broker: EmbeddedBroker
    postgres: TcpProxy | None = None
    redis: TcpProxy | None = None

    async def cut(self, outage: Outage) -> None:
        if outage.dependency == "broker":
            # Off the loop: a stop waits for tansu to exit.
            await asyncio.to_thread(self.broker.stop)
            await asyncio.to_thread(self.broker.start)
        else:
            proxy = self.postgres if outage.dependency == "postgres" else self.redis
            assert proxy is not None
            proxy.cut()

    def restore(self, outage: Outage) -> None:
        proxy = {"postgres": self.postgres, "redis": self.redis}.get(outage.dependency)
        if proxy is not None:
            proxy.restore()


async def cut_dependencies(dependencies: Dependencies, t0: float) -> None:
    for outage in OUTAGES:
        await asyncio.sleep(max(0.0, t0 + outage.start - time.monotonic()))
        await dependencies.cut(outage)
        progress(f"t={outage.start:4.0f}s  {outage.what}")
        if outage.end > outage.start:
            await asyncio.sleep(max(0.0, t0 + outage.end - time.monotonic()))
            dependencies.restore(outage)
            progress(f"t={outage.end:4.0f}s  {outage.dependency} back")


def config_at(elapsed: float) -> SandboxConfig:
    """The sandbox's knobs at ``elapsed`` seconds: the base faults plus every scheduled one under way."""
    fail_paths: dict[str, int] = {}
    for fault in SCHEDULE:
        if fault.start <= elapsed < fault.end:
            fail_paths.update(fault.fail_paths)
    return BASE.model_copy(update={"fail_paths": fail_paths})


async def play(sandbox_url: str, t0: float) -> None:
    """Turn the knobs at each edge of the schedule."""
    edges = sorted({t for fault in SCHEDULE for t in (fault.start, fault.end)})
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        for edge in edges:
            await asyncio.sleep(max(0.0, t0 + edge - time.monotonic()))
            config = config_at(edge)
            (await client.put("/_sandbox/config", json=config.model_dump(mode="json"))).raise_for_status()
            progress(f"t={edge:4.0f}s  sandbox fail_paths now {config.fail_paths or 'none'}")


# services


async def http_ready(url: str, proc: BeatProcess) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not proc.alive():
                break
            await asyncio.sleep(0.2)
    raise BenchError(f"{proc.role} did not answer {url}:\n{proc.log_tail()}")


@dataclass
class Answers:
    unavailable: int = 0  # 503, tried again after Retry-After
    server_errors: int = 0  # any other 5xx, or no answer at all


async def submit(
    api_url: str,
    batch: list[dict],
    answers: Answers | None = None,
    rate: float | None = None,
) -> list[str]:
    """Submit ``batch`` (20 at a time, or ``rate`` a second); a 503 is tried again after its Retry-After."""
    answers = answers or Answers()
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        semaphore = asyncio.Semaphore(20)

        async def one(body: dict, delay: float) -> str | None:
            await asyncio.sleep(delay)
            async with semaphore:
                while True:
                    try:
                        response = await client.post("/requests", json=body)
                    except httpx.HTTPError:
                        answers.server_errors += 1
                        return None
                    if response.status_code != 503:
                        break
                    answers.unavailable += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                if response.status_code >= 500:
                    answers.server_errors += 1
                return response.json()["id"] if response.status_code == 202 else None

        spacing = 1 / rate if rate else 0.0
        ids = await asyncio.gather(*(one(body, n * spacing) for n, body in enumerate(batch)))
        return [rid for rid in ids if rid]


async def until_terminal(pool: asyncpg.Pool, ids: list[str], t0: float) -> dict[str, str]:
    """Wait until every request is terminal or none has ended for STALL seconds; report every 10 s."""
    last_done, last_change, reported = -1, time.monotonic(), 0.0
    while True:
        statuses = await wait_terminal(pool, ids, 1.0)
        done = sum(1 for status in statuses.values() if status in TERMINAL_VALUES)
        now = time.monotonic()
        if done != last_done:
            last_done, last_change = done, now
        if now - reported >= 10:
            reported = now
            progress(
                f"t={now - t0:4.0f}s  " + "  ".join(f"{k} {v}" for k, v in sorted(Counter(statuses.values()).items()))
            )
        if done == len(ids) or now - last_change > STALL:
            return statuses


# figures


async def retry_cost(pool: asyncpg.Pool, ids: list[str], traces: EventCollector) -> tuple[int, int, int]:
    """(calls made by attempts that were retried, calls answered 2xx by the attempts that ended the requests,
    every call the requests made)."""
    rows = await pool.fetch(
        "SELECT request_id, attempt, status, at FROM scrape_request_event "
        "WHERE request_id = ANY($1) ORDER BY request_id, attempt",
        ids,
    )
    starts: defaultdict[str, list[tuple[datetime, int]]] = defaultdict(list)
    final: dict[str, int] = {}
    for row in rows:
        if row["status"] == "PROCESSING":
            starts[row["request_id"]].append((row["at"], row["attempt"]))
        if row["status"] in TERMINAL_VALUES:
            final[row["request_id"]] = max(final.get(row["request_id"], 0), row["attempt"])
    retried = useful = calls = 0
    for rid in ids:
        for _, trace in traces.by_request.get(rid, []):
            calls += 1
            at = datetime.fromisoformat(trace["at"])
            attempt = max((n for started, n in starts[rid] if started <= at), default=1)
            if attempt < final.get(rid, attempt + 1):
                retried += 1
            elif trace["status"] is not None and 200 <= trace["status"] < 300:
                useful += 1
    return retried, useful, calls


async def duplicates(pool: asyncpg.Pool, ids: list[str], run: str) -> tuple[int, int]:
    """(requests with more than one terminal status event, entity rows beyond one per natural key)."""
    double = await pool.fetchval(
        "SELECT count(*) FROM (SELECT request_id FROM scrape_request_event WHERE request_id = ANY($1) "
        "AND status = ANY($2) GROUP BY request_id HAVING count(*) > 1) AS d",
        ids,
        sorted(TERMINAL_VALUES),
    )
    accounts = await pool.fetchval(
        "SELECT count(*) - count(DISTINCT handle) FROM instagram_account WHERE handle LIKE $1", f"demo_{run}_%"
    )
    posts = await pool.fetchval(
        "SELECT count(*) - count(DISTINCT shortcode) FROM instagram_post WHERE handle LIKE $1 OR shortcode LIKE $2",
        f"demo_{run}_%",
        f"Dm{run[:4]}%",
    )
    return double, accounts + posts


def outage_lines(log_path: Path) -> dict[str, list[int]]:
    text = log_path.read_text(errors="replace")
    return {
        outage.dependency: [
            text.count(f"outage: {outage.dependency} "),
            text.count(f"outage over: {outage.dependency} "),
        ]
        for outage in OUTAGES
    }


async def run(
    args: argparse.Namespace, broker: EmbeddedBroker, database_url: str, work: Path, cleanup: ExitStack
) -> dict:
    bootstrap = broker.bootstrap
    dependencies = Dependencies(broker)
    served_database_url, outage_settings = database_url, {}
    if args.outages:
        pg = urlsplit(database_url)
        dependencies.postgres = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432).start()
        dependencies.redis = TcpProxy("127.0.0.1", urlsplit(REDIS_URL).port or 6379).start()
        cleanup.callback(dependencies.postgres.stop)
        cleanup.callback(dependencies.redis.stop)
        served_database_url = dependencies.postgres.url(database_url)
        # The embedded broker keeps nothing across a restart: the facade must not accept without Postgres.
        outage_settings = {"redis_url": dependencies.redis.url(REDIS_URL), "broker_durable": "false"}
    port = free_port()
    sandbox_url = f"http://127.0.0.1:{port}"
    knobs = BASE.model_dump(mode="json", exclude_defaults=True)
    sandbox_env = beat_env(**{f"sandbox_{name}": value for name, value in knobs.items()})
    sandbox = spawn(cleanup, BeatProcess("sandbox", sandbox_env, work / "logs" / "sandbox.log", ["--port", str(port)]))
    await http_ready(f"{sandbox_url}/healthz", sandbox)

    api_port = free_port()
    settings = {
        "kafka_url": bootstrap,
        "database_url": served_database_url,
        "data_dir": str(work / "beat"),
        "topic_prefix": "",
        "provider_base_urls": sandbox_base_urls(sandbox_url),
        "cdn_base_urls": sandbox_cdn_base_urls(sandbox_url),
        **sandbox_service_settings(sandbox_url),
        "api_port": str(api_port),
        **BEAT_SETTINGS,
        **outage_settings,
    }
    env = beat_env(**settings)
    await ensure_topics(bootstrap, all_topics(load_settings(**settings), FLOWS))
    traces = EventCollector(bootstrap, [names.TRACE_LOG])
    await traces.start()
    try:
        async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
            store = CredentialStore(pool)
            await seed_credentials(store, "chaos")
            procs = []
            for role in ("sink", "worker", "api"):
                procs.append(spawn(cleanup, BeatProcess(role, env, work / "logs" / f"{role}.log")))
                await asyncio.sleep(1.5)
            api_url = f"http://127.0.0.1:{api_port}"
            await http_ready(f"{api_url}/healthz", procs[-1])
            warm = await submit(api_url, [{"flow": "refresh_profile_basic", "params": {"handle": "warm_up"}}])
            if (await wait_terminal(pool, warm, 120)).get(warm[0]) not in TERMINAL_VALUES:
                raise BenchError("the warm-up request did not end:\n" + "\n".join(p.log_tail(10) for p in procs))
            progress("stack up and warmed; submitting")

            run_tag = uuid.uuid4().hex[:8]
            async with httpx.AsyncClient() as client:
                (await client.post(f"{sandbox_url}/_sandbox/reset")).raise_for_status()
            t0 = time.monotonic()
            schedule = asyncio.create_task(play(sandbox_url, t0))
            cuts = asyncio.create_task(cut_dependencies(dependencies, t0)) if args.outages else None
            answers = Answers()
            ids = await submit(
                api_url, demo_requests(args.requests, run_tag), answers, args.rate if args.outages else None
            )
            progress(f"t={time.monotonic() - t0:4.0f}s  {len(ids)} of {args.requests} requests accepted")
            statuses = await until_terminal(pool, ids, t0)
            elapsed = time.monotonic() - t0
            await schedule
            if cuts is not None:
                await cuts
            # Readers of Postgres wait for stored (README, Stored) before counting rows.
            deadline = time.monotonic() + STORED_WAIT
            while time.monotonic() < deadline and await pool.fetchval(
                "SELECT count(*) FROM scrape_request_log WHERE id = ANY($1) AND status = 'COMPLETE' AND NOT stored", ids
            ):
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # the last trace records
            async with httpx.AsyncClient() as client:
                seen = (await client.get(f"{sandbox_url}/_sandbox/stats")).json()
            retried_calls, useful_calls, calls = await retry_cost(pool, ids, traces)
            double, duplicate_rows = await duplicates(pool, ids, run_tag)
            retries = await pool.fetchrow(
                "SELECT count(*) AS statuses, count(DISTINCT request_id) AS requests FROM scrape_request_event "
                "WHERE request_id = ANY($1) AND status = 'RETRYING'",
                ids,
            )
            breakers = await pool.fetch("SELECT scope, state, failures FROM source_breaker ORDER BY scope")
            not_complete = await pool.fetch(
                "SELECT flow, status, error_type, left(error_message, 160) AS message FROM scrape_request_log "
                "WHERE id = ANY($1) AND status <> 'COMPLETE' LIMIT 5",
                ids,
            )
    finally:
        await traces.stop()

    counts = Counter(statuses.values())
    terminal = sum(n for status, n in counts.items() if status in TERMINAL_VALUES)
    for row in not_complete:
        progress(f"not complete: {row['flow']} {row['status']} {row['error_type']}: {row['message']}")
    progress(f"sandbox: {seen['total']}; over limit: {seen['over_limit'] or 'none'}")
    progress(f"breakers at the end: {[tuple(row) for row in breakers]}")
    return {
        "requests": len(ids),
        "terminal_pct": round(100 * terminal / len(ids), 2),
        "complete_pct": round(100 * counts["COMPLETE"] / len(ids), 2),
        "statuses": dict(sorted(counts.items())),
        "lost": len(ids) - terminal,
        "double_terminal": double,
        "duplicate_rows": duplicate_rows,
        "over_limit": sum(n for by_key in seen["over_limit"].values() for n in by_key.values()),
        "retry_cost": round(retried_calls / max(useful_calls, 1), 3),
        "retried_calls": retried_calls,
        "useful_calls": useful_calls,
        "provider_calls": calls,
        "retried_requests": retries["requests"],
        "retrying_statuses": retries["statuses"],
        "seconds_to_last_terminal": round(elapsed, 1),
        "unavailable": answers.unavailable,
        "server_errors": answers.server_errors,
        "dead_lettered": counts["DEAD_LETTERED"],
        **({"outages": outage_lines(work / "logs" / "worker.log")} if args.outages else {}),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=600, help="the demo mix's size (default 600)")
    parser.add_argument(
        "--outages",
        action="store_true",
        help="cut Postgres and Redis and restart the broker too (OUTAGES), with requests arriving at --rate a second",
    )
    parser.add_argument("--rate", type=float, default=4.0, help="requests a second with --outages (default 4)")
    parser.add_argument("--work-dir", help="keep the logs here (default: a temporary directory, removed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    progress(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}")
    for fault in SCHEDULE:
        progress(f"schedule: {fault.start:.0f}-{fault.end:.0f}s {fault.what}")
    for outage in OUTAGES if args.outages else ():
        progress(f"schedule: {outage.start:.0f}-{outage.end:.0f}s {outage.what}")
    with ExitStack() as cleanup:
        work, broker = bench_workspace(cleanup, args.work_dir)
        database_url = cleanup.enter_context(fresh_database(work))
        progress(f"broker {broker.bootstrap}, database {database_url}")
        result = asyncio.run(run(args, broker, database_url, work, cleanup))
        progress(f"stopping; load average {os.getloadavg()[0]:.1f}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    run_bench(main)
