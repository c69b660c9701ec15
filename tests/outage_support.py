"""What the outage tests share: a database of their own with the sandbox's credentials, and Beat processes of
their own whose environment can differ per process (a TCP proxy in front of Postgres for some of them)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from app.embedded import free_port
from providers.credentials import CredentialStore
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import seed_credentials
from providers.sandbox.server import SandboxServer
from tests.conftest import create_topics, stack_env
from tests.support import BeatProcess, migrated_database

FLOW = "refresh_profile_basic"


@asynccontextmanager
async def seeded_database(prefix: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A migrated database of the test's own holding the sandbox's credentials: its URL and a pool on it.
    Its own, so that no other test's reconciler looks at its rows."""
    with migrated_database(prefix) as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            store = CredentialStore(pool)
            await seed_credentials(store, "test")
            yield url, pool
        finally:
            await pool.close()


@dataclass
class OwnStack:
    """Beat processes on one topic prefix; ``spawn`` overrides settings for one process."""

    env: dict[str, str]
    logs: Path
    api_url: str
    procs: list[BeatProcess] = field(default_factory=list)

    def spawn(self, role: str, *args: str, **settings: str) -> BeatProcess:
        env = {**self.env, **{f"BEAT_{name.upper()}": value for name, value in settings.items()}}
        proc = BeatProcess(role, env, self.logs / f"{role}-{len(self.procs)}.log", list(args)).start()
        self.procs.append(proc)
        return proc

    async def api(self, **settings: str) -> BeatProcess:
        """A started ``beat api`` that answers ``/healthz``."""
        proc = self.spawn("api", **settings)
        async with httpx.AsyncClient(base_url=self.api_url) as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.alive(), proc.log_tail()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return proc
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, proc.log_tail()
                await asyncio.sleep(0.1)

    def tails(self) -> str:
        return "\n".join(f"--- {proc.role}\n{proc.log_tail()}" for proc in self.procs)


@asynccontextmanager
async def own_stack(
    bootstrap: str,
    database_url: str,
    session_dir: Path,
    name: str,
    sandbox: SandboxConfig | None = None,
    **settings: str,
) -> AsyncIterator[OwnStack]:
    """Topics under a prefix of their own and a sandbox; the test spawns the processes. They are killed after."""
    prefix = f"{name}{uuid.uuid4().hex[:6]}."
    port = free_port()
    with SandboxServer(sandbox or SandboxConfig()) as server:
        env = stack_env(
            bootstrap, database_url, prefix, server.url, session_dir / prefix, api_port=str(port), **settings
        )
        await create_topics(env)
        stack = OwnStack(env, session_dir / "logs" / prefix, f"http://127.0.0.1:{port}")
        try:
            yield stack
        finally:
            for proc in reversed(stack.procs):
                # In a thread: a proxy this loop serves may carry the process's goodbyes.
                await asyncio.to_thread(proc.kill)


async def processing_counts(pool: asyncpg.Pool, ids: list[str]) -> dict[str, int]:
    """How many PROCESSING statuses (attempts started) each request has on its timeline."""
    rows = await pool.fetch(
        "SELECT request_id, count(*) AS n FROM scrape_request_event "
        "WHERE status = 'PROCESSING' AND request_id = ANY($1) GROUP BY request_id",
        ids,
    )
    return {row["request_id"]: row["n"] for row in rows}
