"""Helpers the tests share: Beat processes as real children, waiting on Postgres, producing raw records,
and for the provider tests: recorded answers, a canned transport, sandbox knobs and paging to the end."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psycopg
import redis
from aiokafka import AIOKafkaProducer

from providers.http import ProviderHttp
from providers.paging import Page
from providers.sandbox.config import SandboxConfig
from sinks.schema import migrate
from topics.models import TERMINAL

ROOT = Path(__file__).resolve().parent.parent
# The tests' own data (tests/fixtures/), and the providers' recorded answers the parser tests read.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROVIDER_FIXTURES = ROOT / "providers" / "fixtures"


def load_fixture(*path: str) -> Any:
    """A provider's recorded answer, parsed: ``load_fixture("lama", "profile.json")`` reads
    providers/fixtures/lama/profile.json; a test module binds its provider with ``partial``."""
    return json.loads(PROVIDER_FIXTURES.joinpath(*path).read_text())


# The type of conftest's ``sandbox_http`` factory: ``sandbox_http(*sources, **options)`` -> ProviderHttp.
SandboxHttp = Callable[..., ProviderHttp]


class SandboxKnobs:
    """A running sandbox's knobs and traffic counters, over its admin endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    def set(self, **values: Any) -> None:
        config = SandboxConfig(**values)
        httpx.put(f"{self.url}/_sandbox/config", json=config.model_dump(mode="json")).raise_for_status()

    def reset(self) -> None:
        self.set()
        httpx.post(f"{self.url}/_sandbox/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sandbox/stats").json()


class OneAnswerHttp:
    """Stands in for ProviderHttp: answers every call with one canned response and records the call."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self._response = httpx.Response(status, content=content, headers=headers)
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((source, method, path, kwargs))
        return self._response


async def all_pages(fetch: Callable[[str | None], Awaitable[Page]]) -> list[Page]:
    """Every page of a paged listing, ``fetch(cursor)`` a page at a time."""
    pages, cursor = [], None
    while True:
        page = await fetch(cursor)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def every_page(fetch: Callable[[str | None], Awaitable[Page]]) -> tuple[list[Any], int]:
    """Every item of a paged listing, ``fetch(cursor)`` a page at a time, and how many pages it took."""
    pages = await all_pages(fetch)
    return [item for page in pages for item in page.items], len(pages)


@dataclass
class BeatProcess:
    """``python -m app.cli <role>`` with its own environment and log file."""

    role: str
    env: dict[str, str]
    log_path: Path
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    def start(self) -> BeatProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", self.role, *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


OWNS = re.compile(r"pid (\d+) owns \d+ partitions: (.*)$")


def partition_owners(log_text: str, topic: str) -> dict[int, list[int]]:
    """Each worker pid's latest partitions of ``topic``, from the assignment lines faust apps log
    (agents/faust_app.py); empty for a pid that owns none of it."""
    latest: dict[int, list[int]] = {}
    for line in log_text.splitlines():
        if match := OWNS.search(line):
            owned = [part for part in match[2].split() if part.startswith(f"{topic}[")]
            latest[int(match[1])] = [int(p) for p in owned[0][len(topic) + 1 : -1].split(",")] if owned else []
    return latest


def beat_env(**values: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAT_")}
    env["PYTHONPATH"] = str(ROOT)
    # One worker process unless a test asks for more: the default (a process per CPU) would add a group
    # member, and its join, to every worker a test starts.
    env["BEAT_WORKER_PROCESSES"] = "1"
    # A free metrics port per process: tests run side by side, and the roles' fixed defaults would collide.
    env["BEAT_METRICS_PORT"] = "0"
    for key, value in values.items():
        env[f"BEAT_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def run_beat(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``beat *args`` run to its end in a fresh interpreter with ``env``, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        check=False,
    )


async def wait_terminal(pool: asyncpg.Pool, ids: Iterable[str], timeout: float) -> dict[str, str]:
    """Wait until every id has a terminal status; return id -> status (whatever it is at the deadline)."""
    ids = list(ids)
    terminal = [s.value for s in TERMINAL]
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while True:
        rows = await pool.fetch("SELECT id, status FROM scrape_request_log WHERE id = ANY($1)", ids)
        statuses = {r["id"]: r["status"] for r in rows}
        done = sum(1 for s in statuses.values() if s in terminal)
        if done == len(ids) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.25)


async def produce_requests(bootstrap: str, topic: str, bodies: list[dict], key_field: str | None = None) -> list[str]:
    """Produce raw ScrapeRequests (as an upstream service would), each with a fresh id; return the ids."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    ids = []
    try:
        futures = []
        for body in bodies:
            body = {"id": str(uuid.uuid4()), **body}
            ids.append(body["id"])
            key = body["params"].get(key_field) if key_field else None
            futures.append(await producer.send(topic, json.dumps(body).encode(), key=key.encode() if key else None))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return ids


async def failures(pool: asyncpg.Pool, ids: Iterable[str], limit: int = 5) -> list[tuple]:
    """A few non-COMPLETE requests with their errors, for assertion messages."""
    rows = await pool.fetch(
        "SELECT flow, status, error_type, error_message FROM scrape_request_log "
        "WHERE id = ANY($1) AND status <> 'COMPLETE' LIMIT $2",
        list(ids),
        limit,
    )
    return [tuple(row) for row in rows]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


class EventCollector:
    """Every record of some topics, read from the beginning without a consumer group (no join wait),
    indexed by the ``request_id`` in its JSON value."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self.by_request: dict[str, list[tuple[str, dict]]] = {}
        self._consumer = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await self._consumer.start()
        partitions = [
            TopicPartition(topic, partition)
            for topic in self._topics
            for partition in self._consumer.partitions_for_topic(topic) or await self._partitions(topic)
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run())

    async def _partitions(self, topic: str) -> set[int]:
        await self._consumer._client.force_metadata_update()
        return self._consumer.partitions_for_topic(topic) or set()

    async def _run(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    value = json.loads(record.value)
                    self.by_request.setdefault(value.get("request_id"), []).append((record.topic, value))

    async def events(self, request_id: str, topic: str, *, at_least: int = 1, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            found = [value for t, value in self.by_request.get(request_id, []) if t == topic]
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._task is not None:
            # Its fetch must be over before the consumer stops, or the stop meets the cancelled fetch.
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()


# The machine's Postgres; tests and benches make databases of their own on it.
ADMIN_URL = os.environ.get("BEAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def migrated_database(prefix: str = "beat_test") -> Iterator[str]:
    """A new database on the machine's Postgres, migrated, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The machine's Redis; tests keep their keys under a prefix of their own.
REDIS_URL = os.environ.get("BEAT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def redis_test_prefix(key_prefix: str) -> Iterator[str]:
    """A key prefix under ``key_prefix`` of this test's own; its keys are deleted afterwards (a fixture body)."""
    prefix = f"{key_prefix}test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


class TcpProxy:
    """A loopback TCP proxy in a thread of its own, to cut a shared service (Postgres, Redis, RabbitMQ, a
    broker) for the processes under test without stopping it. ``cut`` drops every connection and resets
    new ones until ``restore``. Its own thread and loop keep it forwarding while the test blocks."""

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> None:
        self._target = (host, port)
        # With ``tls`` the proxy terminates TLS: clients speak TLS to it, it speaks plain TCP to the target.
        self._tls = tls
        self._transports: set[asyncio.Transport] = set()
        self._cut = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"proxy->{port}", daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._tls))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, url: str) -> str:
        """``url`` (``scheme://[user@]host:port/…``) with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._transports |= {writer.transport, up_writer.transport}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._transports.discard(writer.transport)

    async def _abort_all(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    def cut(self) -> None:
        self._cut = True
        self._call(self._abort_all())

    def restore(self) -> None:
        self._cut = False

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.cut()
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@asynccontextmanager
async def running_api(env: dict[str, str], log_path: Path) -> AsyncIterator[tuple[str, BeatProcess]]:
    """A ``beat api`` with ``env`` on a port of its own; yields its URL once it answers, and the process."""
    from app.embedded import free_port

    port = free_port()
    proc = BeatProcess("api", {**env, "BEAT_API_PORT": str(port)}, log_path).start()
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.alive(), proc.log_tail()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, proc.log_tail()
                await asyncio.sleep(0.1)
        yield url, proc
    finally:
        # In a thread: a proxy this loop serves may carry the process's goodbyes.
        await asyncio.to_thread(proc.terminate, 10)
