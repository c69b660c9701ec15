"""Beat's pipeline benchmark against the sandbox: concurrency efficiency, throughput, latency and memory.

    python bench/pipeline.py [--efficiency-requests N] [--max-requests N] [--phase-seconds S]
                             [--latency-seconds S] [--passthrough-records N] [--concurrency C]
                             [--upfront] [--processes N [N ...]] [--work-dir DIR]

Everything runs on this machine: an embedded Tansu broker, a fresh database (on the
Postgres at BEAT_TEST_POSTGRES, default 127.0.0.1:5432, else an embedded one), the
sandbox, one ``beat sink`` and one ``beat worker`` with every enabled flow. All load
is ``refresh_profile_basic`` (one ArrayBobo profile call per request), no rate limits.

0. passthrough: a bare Faust agent (bench/passthrough.py) forwarding 1 KB records.
1. efficiency: sandbox latency 100 ms, the flow at its default concurrency C;
   steady-state completions/s (10th to 90th percentile of scraped_at) / (C / 0.1 s).
2. max throughput: sandbox latency 0; N / (first request produced -> last COMPLETE
   row written, its status_at). Optionally at a raised concurrency.
3. latency: produced -> COMPLETE (scraped_at) p50/p99, producing at half that rate.
4. memory: the worker's RSS with its children, idle after start-up and the peak of phase 2.
5. CPU: the worker's CPU seconds (user + system, its children included) during phase 2
   ÷ the requests completed in it, in ms per request; and idle, after start-up, in % of a core.
6. processes (``--processes 1 2``): for each N, a fresh ``beat worker --processes N`` once each of its
   processes owns partitions of the flow, phase 2 again: e2e/s, the worker's CPU seconds (all its
   processes) per completion, the load average, and the partitions each process owned.

Phases 1 and 2 keep fewer requests unfinished than the flow's backpressure gate
pauses at (a closed loop on the status topic): when the gate pauses a partition,
Faust drops the rest of that partition's fetched batch and the worker stalls (see
bench/README.md). ``--upfront`` produces every request at once instead, which shows it.

Progress lines go to stdout; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from agents.worker import GATE_HIGH  # noqa: E402
from app.embedded import EmbeddedBroker, EmbeddedPostgres, free_port  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.topic_admin import all_topics, ensure_topics  # noqa: E402
from providers.credentials import CredentialStore  # noqa: E402
from providers.sandbox.seeds import sandbox_cdn_base_urls, sandbox_source_rate_limits  # noqa: E402
from sinks.schema import migrate  # noqa: E402
from tests.support import (  # noqa: E402
    ADMIN_URL,
    BeatProcess,
    beat_env,
    failures,
    migrated_database,
    partition_owners,
    produce_requests,
    wait_terminal,
)
from topics import names  # noqa: E402
from topics.flows import FLOWS  # noqa: E402
from topics.models import TERMINAL  # noqa: E402

FLOW = "refresh_profile_basic"
TOPIC = names.scrape_topic(FLOW)
SOURCE = "rapidapi-arraybobo"
# The only credential in the database, so every profile comes from ArrayBobo.
CREDENTIAL = {"x-rapidapi-key": "bench-arraybobo", "x-rapidapi-host": "instagram-scraper-2022.p.rapidapi.com"}
LATENCY = 0.1  # seconds the sandbox waits per call in phase 1
PARTITIONS = 8  # Beat's default request_partitions (the most a request topic gets), and the passthrough's
RECORD_BYTES = 1024
SETTLE = 5.0  # seconds after the warm-up before the idle RSS is taken
SAMPLE_INTERVAL = 0.2
STALL = 20.0  # seconds without a request finishing before a phase gives up
TERMINAL_VALUES = {status.value for status in TERMINAL}

_started = time.monotonic()


class BenchError(RuntimeError):
    pass


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


# services


@contextmanager
def fresh_database(work: Path) -> Iterator[str]:
    """A new, migrated database on the machine's Postgres, dropped afterwards; an embedded server if none runs."""
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        progress(f"no Postgres at {ADMIN_URL} ({type(exc).__name__}); starting an embedded one")
        embedded = EmbeddedPostgres(work / "postgres")
        embedded.start()
        try:
            migrate(embedded.url)
            yield embedded.url
        finally:
            embedded.stop()
        return
    with migrated_database("beat_bench") as url:
        yield url


def spawn(cleanup: ExitStack, proc: BeatProcess) -> BeatProcess:
    proc.start()
    cleanup.callback(proc.terminate, 30)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Sandbox:
    def __init__(self, cleanup: ExitStack, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = beat_env(sandbox_latency=str(LATENCY))
        log = work / "logs" / "sandbox.log"
        self.proc = spawn(cleanup, BeatProcess("sandbox", env, log, ["--port", str(self.port)]))

    async def ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if not self.proc.alive():
                    break
                await asyncio.sleep(0.1)
        raise BenchError(f"the sandbox did not start:\n{self.proc.log_tail()}")

    async def set_latency(self, seconds: float) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            (await client.put("/_sandbox/config", json={"latency": seconds})).raise_for_status()


class RssSampler:
    """Resident memory of a process and all its children, in MiB."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.samples: list[float] = []

    def sample(self) -> float:
        total = 0
        for proc in [self._proc, *self._proc.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        value = total / 2**20
        self.samples.append(value)
        return value

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_INTERVAL)


class Completions:
    """Which of the bench's requests have a terminal status event on the broker, read from the status topic."""

    def __init__(self, bootstrap: str) -> None:
        # From the beginning: Tansu answers ListOffsets(latest) wrongly (environment.md).
        # Tansu holds a fetch for about half of fetch_max_wait_ms even when records arrive meanwhile.
        self._consumer = AIOKafkaConsumer(
            names.STATUS, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=10
        )
        self._expected: set[str] = set()
        self._done: set[str] = set()
        self._task: asyncio.Future | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._consumer.stop()

    def expect(self, request_id: str) -> None:
        self._expected.add(request_id)

    @property
    def finished(self) -> int:
        return len(self._done)

    async def _run(self) -> None:
        while True:
            polled = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            for records in polled.values():
                for record in records:
                    event = json.loads(record.value)
                    if event["status"] in TERMINAL_VALUES and event["request_id"] in self._expected:
                        self._done.add(event["request_id"])


# measurements


async def passthrough_rate(bootstrap: str, n: int, work: Path) -> float:
    """Records/s of a bare Faust agent: n / (first -> last output record's timestamp)."""
    source, sink = "bench.passthrough.in", "bench.passthrough.out"
    await ensure_topics(bootstrap, {source: PARTITIONS, sink: PARTITIONS})
    filler = RECORD_BYTES - len(json.dumps({"seq": n, "payload": ""}))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(source, json.dumps({"seq": i, "payload": "x" * filler}).encode()) for i in range(n)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    progress(f"passthrough: {n} records of {RECORD_BYTES} B produced; starting the Faust agent")

    log_path = work / "logs" / "passthrough.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "passthrough.py"),
                bootstrap,
                source,
                sink,
                str(work / "passthrough"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    timestamps: list[int] = []
    deadline = time.monotonic() + 120
    try:
        consumer = AIOKafkaConsumer(sink, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        try:
            while len(timestamps) < n:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(
                        f"passthrough forwarded {len(timestamps)} of {n} records; "
                        f"log:\n{log_path.read_text(errors='replace')[-3000:]}"
                    )
                polled = await consumer.getmany(timeout_ms=500, max_records=5000)
                timestamps.extend(record.timestamp for records in polled.values() for record in records)
        finally:
            await consumer.stop()
    finally:
        stop(proc)
    return n / ((max(timestamps) - min(timestamps)) / 1000)


async def produce(
    bootstrap: str,
    completions: Completions,
    tag: str,
    n: int,
    *,
    window: int | None = None,
    rate: float | None = None,
    seconds: float | None = None,
) -> dict[str, float]:
    """Produce up to n requests: at most ``window`` unfinished at a time, at most ``rate``/s, for at most
    ``seconds``, each when given.

    Returns each id with the wall-clock time it was handed to the producer.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    produced: dict[str, float] = {}
    pending = []
    started = time.monotonic()
    finished_before = completions.finished
    try:
        while len(produced) < n and (seconds is None or time.monotonic() - started < seconds):
            allowed = n
            if window is not None:
                allowed = min(allowed, completions.finished - finished_before + window)
            if rate is not None:
                allowed = min(allowed, int((time.monotonic() - started) * rate) + 1)
            while len(produced) < allowed:
                request_id = str(uuid.uuid4())
                completions.expect(request_id)
                produced[request_id] = time.time()
                body = {"id": request_id, "params": {"handle": f"{tag}_{len(produced)}"}}
                pending.append(await producer.send(TOPIC, json.dumps(body).encode()))
            await asyncio.sleep(0.002)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return produced


async def completed(pool: asyncpg.Pool, ids: list[str], procs: list[BeatProcess]) -> list:
    """Wait until every request is terminal; the COMPLETE ones' rows (id, scraped_at, status_at).

    A request that ends otherwise is reported and left out; one that never ends stops the run.
    """
    finished = -1
    while True:
        statuses = await wait_terminal(pool, ids, STALL)
        counts = {s: list(statuses.values()).count(s) for s in set(statuses.values())}
        now_finished = sum(n for s, n in counts.items() if s in TERMINAL_VALUES)
        if now_finished == len(ids):
            break
        if now_finished == finished:
            tails = "\n".join(f"--- {p.role}\n{p.log_tail(10)}" for p in procs)
            raise BenchError(
                f"{len(ids)} requests; after {STALL:.0f}s without progress: {counts}, the rest without "
                f"a terminal row\n{tails}"
            )
        finished = now_finished
    if counts != {"COMPLETE": len(ids)}:
        progress(f"not complete, left out: {counts}; e.g. {await failures(pool, ids, limit=1)}")
    return await pool.fetch(
        "SELECT id, scraped_at, status_at FROM scrape_request_log WHERE id = ANY($1) AND status = 'COMPLETE'", ids
    )


async def efficiency(
    bootstrap: str,
    pool: asyncpg.Pool,
    completions: Completions,
    procs: list[BeatProcess],
    n: int,
    seconds: float,
    concurrency: int,
    window: int | None,
) -> float:
    produced = await produce(bootstrap, completions, "eff", n, window=window, seconds=seconds)
    rows = await completed(pool, list(produced), procs)
    times = sorted(row["scraped_at"].timestamp() for row in rows)
    low, high = int(0.1 * (len(times) - 1)), int(0.9 * (len(times) - 1))
    rate = (high - low) / (times[high] - times[low])
    ideal = concurrency / LATENCY
    progress(
        f"efficiency: {len(rows)} requests at C={concurrency}, {LATENCY * 1000:.0f} ms per call: "
        f"steady {rate:.1f}/s of an ideal {ideal:.0f}/s"
    )
    return rate / ideal


async def max_throughput(
    bootstrap: str,
    pool: asyncpg.Pool,
    completions: Completions,
    procs: list[BeatProcess],
    n: int,
    seconds: float,
    window: int | None,
) -> tuple[float, int]:
    """Completions/s, and how many requests completed."""
    produced = await produce(bootstrap, completions, "max", n, window=window, seconds=seconds)
    rows = await completed(pool, list(produced), procs)
    span = max(row["status_at"].timestamp() for row in rows) - min(produced.values())
    progress(
        f"max throughput: {len(rows)} requests produced -> all COMPLETE in Postgres in {span:.1f}s: "
        f"{len(rows) / span:.0f}/s"
    )
    return len(rows) / span, len(rows)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def latency(
    bootstrap: str, pool: asyncpg.Pool, completions: Completions, procs: list[BeatProcess], rate: float, seconds: float
) -> tuple[float, float]:
    produced = await produce(bootstrap, completions, "lat", int(rate * seconds), rate=rate)
    rows = await completed(pool, list(produced), procs)
    scraped = [(row["scraped_at"].timestamp() - produced[row["id"]]) * 1000 for row in rows]
    stored = [(row["status_at"].timestamp() - produced[row["id"]]) * 1000 for row in rows]
    p50, p99 = percentile(scraped, 0.5), percentile(scraped, 0.99)
    progress(
        f"latency: {len(rows)} requests at {rate:.0f}/s: produced -> COMPLETE p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms (-> row written by the sink: p50 {percentile(stored, 0.5):.0f} ms, "
        f"p99 {percentile(stored, 0.99):.0f} ms)"
    )
    return p50, p99


class CpuMeter:
    """CPU seconds (user + system) a process and its children have used, the children counted while alive."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)

    def seconds(self) -> float:
        total = 0.0
        for proc in [self._proc, *self._proc.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total


async def every_process_owns_partitions(worker: BeatProcess, count: int, timeout: float = 90.0) -> dict[int, int]:
    """Wait until each of the worker's ``count`` processes owns partitions of the flow; pid -> how many."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [child.pid for child in psutil.Process(worker.pid).children()] if count > 1 else [worker.pid]
        owners = partition_owners(worker.log_path.read_text(errors="replace"), TOPIC)
        if len(pids) == count and all(owners.get(pid) for pid in pids):
            return {pid: len(owners[pid]) for pid in pids}
        if not worker.alive() or time.monotonic() > deadline:
            raise BenchError(f"not every worker process owns partitions of {TOPIC}: {owners}\n{worker.log_tail()}")
        await asyncio.sleep(0.25)


async def per_process_count(
    cleanup: ExitStack,
    env: dict[str, str],
    work: Path,
    bootstrap: str,
    pool: asyncpg.Pool,
    completions: Completions,
    sink: BeatProcess,
    count: int,
    args: argparse.Namespace,
    window: int | None,
) -> dict:
    """Phase 2 against a fresh ``beat worker --processes count``, with the worker's CPU per completion."""
    log = work / "logs" / f"worker-p{count}.log"
    worker = spawn(cleanup, BeatProcess("worker", env, log, ["--processes", str(count)]))
    try:
        owned = await every_process_owns_partitions(worker, count)
        warm = [{"params": {"handle": f"warm_{uuid.uuid4().hex[:8]}"}} for _ in range(4 * PARTITIONS)]
        await completed(pool, await produce_requests(bootstrap, TOPIC, warm, key_field="handle"), [sink, worker])
        cpu = CpuMeter(worker.pid)
        cpu_before = cpu.seconds()
        produced = await produce(
            bootstrap, completions, f"p{count}", args.max_requests, window=window, seconds=args.phase_seconds
        )
        rows = await completed(pool, list(produced), [sink, worker])
        cpu_used = cpu.seconds() - cpu_before
    finally:
        worker.terminate(30)
    span = max(row["status_at"].timestamp() for row in rows) - min(produced.values())
    result = {
        "processes": count,
        "e2e_per_s": round(len(rows) / span, 1),
        "cpu_ms_per_completion": round(1000 * cpu_used / len(rows), 2),
        "load_average": round(os.getloadavg()[0], 1),
        "partitions_per_process": sorted(owned.values()),
    }
    progress(
        f"processes {count}: {len(rows)} requests in {span:.1f}s: {result['e2e_per_s']:.0f}/s, worker CPU "
        f"{result['cpu_ms_per_completion']:.2f} ms per completion, partitions per process "
        f"{result['partitions_per_process']}, load average {result['load_average']}"
    )
    return result


# the run


async def start_worker(
    cleanup: ExitStack,
    env: dict[str, str],
    work: Path,
    name: str,
    bootstrap: str,
    pool: asyncpg.Pool,
    sink: BeatProcess,
) -> BeatProcess:
    """A worker with every enabled flow, once keyed requests over every partition have completed through it."""
    worker = spawn(cleanup, BeatProcess("worker", env, work / "logs" / f"{name}.log"))
    warm = [{"params": {"handle": f"warm_{uuid.uuid4().hex[:8]}"}} for _ in range(4 * PARTITIONS)]
    await completed(pool, await produce_requests(bootstrap, TOPIC, warm, key_field="handle"), [sink, worker])
    progress(f"{name}: joined and warmed up (pid {worker.pid})")
    return worker


async def run(args: argparse.Namespace, bootstrap: str, database_url: str, work: Path, cleanup: ExitStack) -> dict:
    default_concurrency = FLOWS[FLOW].concurrency
    concurrency = args.concurrency or default_concurrency

    def window(c: int) -> int | None:
        # The most that can never fill the flow's buffer up to its gate, which pauses at
        # max(GATE_HIGH, 2C) buffered records (WorkerRuntime.watch).
        return None if args.upfront else max(GATE_HIGH, 2 * c) - 1

    passthrough = await passthrough_rate(bootstrap, args.passthrough_records, work)
    progress(f"passthrough: {passthrough:.0f} records/s")

    sandbox = Sandbox(cleanup, work)
    await sandbox.ready()
    settings = {
        "kafka_url": bootstrap,
        "database_url": database_url,
        "data_dir": str(work / "beat"),
        "topic_prefix": "",
        "provider_base_urls": {SOURCE: f"{sandbox.url}/{SOURCE}"},
        # The profile pictures the flow downloads come from the sandbox's CDN: the real host would be looked
        # up in DNS off this machine for every profile.
        "cdn_base_urls": sandbox_cdn_base_urls(sandbox.url),
        # The pipeline, not a provider budget: ArrayBobo alone, its legacy 100/30 s limit lifted.
        "source_priorities": {"fetch_profile_by_handle": [SOURCE]},
        "source_rate_limits": sandbox_source_rate_limits(),
        # Tansu holds a group join for half the session timeout (environment.md).
        "broker_session_timeout": "6",
    }
    env = beat_env(**settings)
    await ensure_topics(bootstrap, all_topics(load_settings(**settings), FLOWS))
    completions = Completions(bootstrap)
    await completions.start()
    try:
        async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
            await CredentialStore(pool).add(SOURCE, CREDENTIAL)
            sink = spawn(cleanup, BeatProcess("sink", env, work / "logs" / "sink.log"))
            worker = await start_worker(cleanup, env, work, "worker", bootstrap, pool, sink)

            rss = RssSampler(worker.pid)
            cpu_before = CpuMeter(worker.pid).seconds()
            await asyncio.sleep(SETTLE)
            # Polling every partition of every flow costs CPU with nothing to do; under load it is part
            # of cpu_ms_per_request too, the larger part the fewer requests complete per second.
            cpu_idle = (CpuMeter(worker.pid).seconds() - cpu_before) / SETTLE * 100
            rss_idle = statistics.median(rss.sample() for _ in range(5))
            enabled = sum(spec.enabled for spec in FLOWS.values())
            progress(
                f"memory: worker with its {enabled} enabled flows, idle: {rss_idle:.1f} MiB; "
                f"CPU idle: {cpu_idle:.1f} % of a core"
            )

            eff = await efficiency(
                bootstrap,
                pool,
                completions,
                [sink, worker],
                args.efficiency_requests,
                args.phase_seconds,
                default_concurrency,
                window(default_concurrency),
            )

            await sandbox.set_latency(0.0)
            load = RssSampler(worker.pid)
            sampling = asyncio.ensure_future(load.run())
            cpu_before = CpuMeter(worker.pid).seconds()
            try:
                e2e, done = await max_throughput(
                    bootstrap,
                    pool,
                    completions,
                    [sink, worker],
                    args.max_requests,
                    args.phase_seconds,
                    window(default_concurrency),
                )
            finally:
                sampling.cancel()
            cpu_ms = (CpuMeter(worker.pid).seconds() - cpu_before) * 1000 / done
            rss_load = max(load.samples)
            progress(f"memory: worker peak under load: {rss_load:.1f} MiB; CPU: {cpu_ms:.2f} ms per request")

            if concurrency != default_concurrency:
                worker.terminate(30)
                raised = beat_env(**settings, flow_concurrency={FLOW: concurrency})
                worker = await start_worker(cleanup, raised, work, f"worker-c{concurrency}", bootstrap, pool, sink)
                cpu_before = CpuMeter(worker.pid).seconds()
                e2e, done = await max_throughput(
                    bootstrap,
                    pool,
                    completions,
                    [sink, worker],
                    args.max_requests,
                    args.phase_seconds,
                    window(concurrency),
                )
                cpu_ms = (CpuMeter(worker.pid).seconds() - cpu_before) * 1000 / done

            p50, p99 = await latency(bootstrap, pool, completions, [sink, worker], e2e / 2, args.latency_seconds)

            if args.processes:
                # One group at a time: the phases above leave their worker behind.
                worker.terminate(30)
            by_processes = [
                await per_process_count(
                    cleanup, env, work, bootstrap, pool, completions, sink, count, args, window(concurrency)
                )
                for count in args.processes or ()
            ]
    finally:
        await completions.stop()

    return {
        "efficiency": round(eff, 3),
        "e2e_per_s": round(e2e, 1),
        "faust_passthrough_per_s": round(passthrough, 1),
        "ratio": round(e2e / passthrough, 3),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_load_mb": round(rss_load, 1),
        "cpu_ms_per_request": round(cpu_ms, 2),
        "cpu_idle_pct": round(cpu_idle, 1),
        "concurrency": concurrency,
        "by_processes": by_processes,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--efficiency-requests", type=int, default=2500, help="phase 1 requests (default 2500)")
    parser.add_argument("--max-requests", type=int, default=5000, help="phase 2 requests (default 5000)")
    parser.add_argument(
        "--phase-seconds",
        type=float,
        default=30.0,
        help="phases 1 and 2 stop producing after this long, whatever their request count (default 30)",
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="phase 3 duration (default 20)")
    parser.add_argument("--passthrough-records", type=int, default=20000, help="Faust baseline records (default 20000)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help=f"{FLOW}'s concurrency for phases 2 (throughput) and 3; memory is always taken at "
        f"the default ({FLOWS[FLOW].concurrency})",
    )
    parser.add_argument(
        "--upfront",
        action="store_true",
        help="produce phases 1 and 2 all at once instead of a closed loop (stalls the worker today)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        metavar="N",
        help="after the phases above, phase 2 again with `beat worker --processes N` for each N given, "
        "e.g. 1 2: e2e/s and worker CPU per completion at each",
    )
    parser.add_argument("--work-dir", help="keep the logs here (default: a temporary directory, removed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, through the cleanup that stops every process started here.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Anything else running on the machine shares its cores with every process measured here.
    progress(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}")
    with ExitStack() as cleanup:
        work, broker = bench_workspace(cleanup, args.work_dir)
        database_url = cleanup.enter_context(fresh_database(work))
        progress(f"broker {broker.bootstrap}, database {database_url}")
        result = asyncio.run(run(args, broker.bootstrap, database_url, work, cleanup))
        progress(f"stopping; load average {os.getloadavg()[0]:.1f}")
    print(json.dumps(result), flush=True)


def bench_workspace(cleanup: ExitStack, work_dir: str | None) -> tuple[Path, EmbeddedBroker]:
    """The bench's directory (kept when named, else temporary and removed) and an embedded broker in it,
    both undone by ``cleanup``."""
    if work_dir:
        work = Path(work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="beat-bench-")))
    broker = EmbeddedBroker(work / "broker")
    broker.start()
    cleanup.callback(broker.stop)
    return work, broker


def run_bench(main: Callable[[], None]) -> None:
    """A bench's entry point: a BenchError or Ctrl-C is one line and an exit code, not a traceback."""
    try:
        main()
    except BenchError as exc:
        progress(f"failed: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        progress("interrupted; everything the bench started is stopped")
        sys.exit(130)


if __name__ == "__main__":
    run_bench(main)
