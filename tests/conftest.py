"""One broker, one database, one sandbox and one worker/sink/api set per test session.

Tests isolate themselves by unique request ids and entity keys. Waits between
pages are scaled to zero and the reconciler runs every second. A module that turns
sandbox knobs gets a sandbox of its own (``sandbox_server``, ``knobs``, ``sandbox_http``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
import pytest_asyncio

from app.embedded import EmbeddedBroker, free_port
from core.settings import load_settings
from core.topic_admin import all_topics, ensure_topics
from providers.credentials import CredentialStore
from providers.http import ProviderHttp
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import (
    sandbox_base_urls,
    sandbox_cdn_base_urls,
    sandbox_service_settings,
    sandbox_source_rate_limits,
    seed_credentials,
)
from providers.sandbox.server import SandboxServer
from tests.support import (
    ADMIN_URL,
    BeatProcess,
    EventCollector,
    SandboxHttp,
    SandboxKnobs,
    beat_env,
    failures,
    migrated_database,
    wait_terminal,
)
from topics import names
from topics.flows import FLOWS
from topics.models import TraceLog

# The YouTube provider tests' loopback servers and fixtures.
pytest_plugins = ("tests.providers.youtube_loopback",)


STACK_SETTINGS = {
    "broker_session_timeout": "6",
    "flow_wait_scale": "0",
    "default_flow_timeout": "30",
    "reconcile_interval": "1",
    "reconcile_grace": "120",
    "reconcile_pending_after": "2",
    "log_level": "INFO",
}


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("beat")


@pytest.fixture(scope="session")
def broker(session_dir: Path):
    broker = EmbeddedBroker(session_dir / "broker")
    broker.start()
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def database_url():
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL at {ADMIN_URL} is not reachable ({exc}); start it (see README)", returncode=3)
    with migrated_database() as url:
        yield url


@pytest.fixture(scope="session")
def sandbox():
    with SandboxServer(SandboxConfig()) as server:
        yield server


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    # A module's own sandbox, not the session's: its tests turn knobs the running stack must not see.
    with SandboxServer(SandboxConfig()) as running:
        yield running


@pytest.fixture
def knobs(sandbox_server: SandboxServer) -> Iterator[SandboxKnobs]:
    """Turns ``sandbox_server``'s knobs for one test; afterwards it is back to defaults with empty stats."""
    knobs = SandboxKnobs(sandbox_server.url)
    knobs.reset()
    yield knobs
    knobs.reset()


@pytest_asyncio.fixture
async def sandbox_http(sandbox_server: SandboxServer) -> AsyncIterator[SandboxHttp]:
    """``sandbox_http(*sources, **options)``: a ProviderHttp that sends each source to its routes on
    ``sandbox_server``, with a 5 s timeout unless ``options`` say otherwise; all are closed after the test."""
    made: list[ProviderHttp] = []

    def make(*sources: str, **options: Any) -> ProviderHttp:
        base_urls = {source: f"{sandbox_server.url}/{source}" for source in sources}
        made.append(ProviderHttp(base_urls=base_urls, **{"timeout": 5.0, **options}))
        return made[-1]

    yield make
    for http in made:
        await http.aclose()


@pytest.fixture
def traces() -> list[TraceLog]:
    """Where a test's ProviderHttp ``trace_sink`` puts the trace records it is given."""
    return []


@pytest_asyncio.fixture(scope="session")
async def pool(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    store = CredentialStore(pool)
    await seed_credentials(store, "test")
    yield pool
    await pool.close()


@dataclass
class StackHandle:
    bootstrap: str
    database_url: str
    prefix: str
    api_url: str
    env: dict[str, str]
    session_dir: Path

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


def stack_env(bootstrap: str, database_url: str, prefix: str, sandbox_url: str, data_dir: Path, **extra) -> dict:
    settings = {
        "kafka_url": bootstrap,
        "database_url": database_url,
        "topic_prefix": prefix,
        "data_dir": str(data_dir),
        "provider_base_urls": sandbox_base_urls(sandbox_url),
        "source_rate_limits": sandbox_source_rate_limits(),
        "cdn_base_urls": sandbox_cdn_base_urls(sandbox_url),
        **sandbox_service_settings(sandbox_url),
        **STACK_SETTINGS,
    }
    return beat_env(**{**settings, **extra})


async def create_topics(env: dict[str, str]) -> None:
    settings = load_settings(kafka_url=env["BEAT_KAFKA_URL"], topic_prefix=env["BEAT_TOPIC_PREFIX"])
    await ensure_topics(settings.kafka_url, all_topics(settings, FLOWS))


@pytest_asyncio.fixture(scope="session")
async def stack(broker, database_url, sandbox, pool, session_dir):
    prefix = f"t{uuid.uuid4().hex[:6]}."
    api_port = free_port()
    env = stack_env(broker, database_url, prefix, sandbox.url, session_dir / "stack", api_port=str(api_port))
    await create_topics(env)
    logs = session_dir / "logs"
    procs = []
    for role in ("sink", "worker", "api"):
        procs.append(BeatProcess(role, env, logs / f"{role}.log").start())
        await asyncio.sleep(1.0)
    handle = StackHandle(broker, database_url, prefix, f"http://127.0.0.1:{api_port}", env, session_dir)
    try:
        await _wait_ready(handle, pool, procs)
        yield handle
    finally:
        for proc in reversed(procs):
            proc.terminate(timeout=30)


async def _wait_ready(handle: StackHandle, pool: asyncpg.Pool, procs: list[BeatProcess]) -> None:
    async with httpx.AsyncClient(base_url=handle.api_url) as client:
        for _ in range(200):
            for proc in procs:
                assert proc.alive(), f"{proc.role} died during start-up:\n{proc.log_tail()}"
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        probe = await client.post(
            "/requests", json={"flow": "refresh_profile_basic", "params": {"handle": "readiness_probe"}}
        )
        probe.raise_for_status()
    statuses = await wait_terminal(pool, [probe.json()["id"]], timeout=90)
    assert list(statuses.values()) == ["COMPLETE"], (
        f"the stack did not complete a probe request: {statuses}\n" + "\n".join(p.log_tail() for p in procs)
    )


@asynccontextmanager
async def isolated(broker, database_url, session_dir, sandbox_config: SandboxConfig, name: str, **settings):
    """A sandbox, a topic prefix and a sink of their own; yields (prefix, spawn, sandbox) and the test
    starts its workers with ``spawn``."""
    prefix = f"{name}{uuid.uuid4().hex[:6]}."
    with SandboxServer(sandbox_config) as sandbox:
        env = stack_env(broker, database_url, prefix, sandbox.url, session_dir / prefix, **settings)
        await create_topics(env)
        logs = session_dir / "logs" / prefix
        procs: list[BeatProcess] = []

        def spawn(role: str, *args: str) -> BeatProcess:
            proc = BeatProcess(role, env, logs / f"{role}-{len(procs)}.log", list(args)).start()
            procs.append(proc)
            return proc

        spawn("sink")
        try:
            yield prefix, spawn, sandbox
        finally:
            for proc in reversed(procs):
                proc.kill()


@pytest_asyncio.fixture(scope="session")
async def events(stack):
    """Every event on the stack's log topics, by request id."""
    collector = EventCollector(
        stack.bootstrap,
        [
            stack.topic(t)
            for t in (
                names.PROFILE_LOG,
                names.POST_LOG,
                names.POST_ACTIVITY_LOG,
                names.PROFILE_RELATIONSHIP_LOG,
                names.ORDER_LOG,
                names.YT_ACTIVITY_LOG,
                names.YT_PROFILE_RELATIONSHIP_LOG,
                names.TRACE_LOG,
                names.DEAD_LETTER,
            )
        ],
    )
    await collector.start()
    yield collector
    await collector.stop()


@pytest.fixture
def run_flow(stack, pool, events):
    """Submit one request through the facade, wait for COMPLETE; return (result, its events on ``topic``, source)."""

    async def run(flow: str, params: dict, *, topic: str | None = None, at_least: int = 1):
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            response = await client.post("/requests", json={"flow": flow, "params": params})
            assert response.status_code == 202, response.text
        request_id = response.json()["id"]
        statuses = await wait_terminal(pool, [request_id], timeout=120)
        assert statuses == {request_id: "COMPLETE"}, await failures(pool, [request_id])
        row = await pool.fetchrow("SELECT source, result FROM scrape_request_log WHERE id = $1", request_id)
        result = json.loads(row["result"])
        found = await events.events(request_id, stack.topic(topic), at_least=at_least) if topic else []
        return result, found, row["source"]

    return run
