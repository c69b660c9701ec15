"""``beat up``: the embedded services (when no URL is configured) and Beat's processes as children.

Worker, sink and API are separate processes and consumer groups (contract §3).
They are started a moment apart: Tansu answers UNKNOWN_MEMBER_ID when several
groups rebalance at once. A child that dies is restarted with backoff; so is the
embedded broker, on its port and given Beat's topics at once (it kept nothing),
and the children carry on against it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, write_endpoints
from app.metrics_ports import describe, up_metrics_ports
from app.progress import waiting
from app.supervision import Child, restart_exited
from app.worker_processes import check_shares, drain_timeout, process_count
from core.settings import Settings
from sinks.schema import migrate

if TYPE_CHECKING:
    from providers.sandbox.config import SandboxConfig

log = logging.getLogger(__name__)

STAGGER_SECONDS = 1.5


@dataclass
class Stack:
    """Everything ``beat up`` runs; ``start`` returns once every part answers."""

    settings: Settings
    sandbox: bool = False
    sandbox_config: SandboxConfig | None = None
    with_workers: bool = True
    children: list[Child] = field(default_factory=list)
    # How many processes `beat worker` runs (BEAT_WORKER_PROCESSES, else the usable CPUs); known once started.
    worker_processes: int = 0
    endpoints: dict[str, str] = field(default_factory=dict)
    # A key with every scope for this stack's facade, made at start; in endpoints.json, never printed.
    api_key: str = ""
    # Each role's metrics port (app/metrics_ports.py); known once started.
    metrics_ports: dict[str, int] = field(default_factory=dict)
    _broker: EmbeddedBroker | None = None
    _postgres: EmbeddedPostgres | None = None

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "app.cli", *args]

    def start(self) -> Settings:
        settings = self.settings
        data_dir = settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        overrides: dict[str, object] = {}
        if settings.kafka_url is None:
            self._broker = EmbeddedBroker(data_dir, settings.broker_port)
            self._broker.start()
            overrides["kafka_url"] = self._broker.bootstrap
            overrides["broker_durable"] = False
        if settings.database_url is None:
            self._postgres = EmbeddedPostgres(data_dir, settings.postgres_port)
            self._postgres.start()
            overrides["database_url"] = self._postgres.url
        api_port = settings.api_port or free_port()
        overrides["api_port"] = api_port
        settings = self.settings = settings.model_copy(update=overrides)
        assert settings.kafka_url and settings.database_url, "both resolved above"
        kafka_url, database_url = settings.kafka_url, settings.database_url
        migrate(database_url)
        self.api_key = asyncio.run(_stack_key(database_url, data_dir))

        env = dict(os.environ)
        env.update(
            {
                "BEAT_KAFKA_URL": kafka_url,
                "BEAT_DATABASE_URL": database_url,
                "BEAT_DATA_DIR": str(data_dir),
                "BEAT_API_PORT": str(api_port),
                "BEAT_BROKER_DURABLE": str(settings.durable_broker).lower(),
            }
        )
        logs = data_dir / "logs"
        if self.sandbox:
            # Imported only here: a stack without the sandbox never loads providers.sandbox.
            from providers.sandbox.config import ENV_PREFIX as SANDBOX_ENV_PREFIX
            from providers.sandbox.seeds import (
                sandbox_base_urls,
                sandbox_cdn_base_urls,
                sandbox_service_settings,
                sandbox_source_rate_limits,
            )

            port = settings.sandbox_port or free_port()
            sandbox_url = f"http://127.0.0.1:{port}"
            sandbox_env = dict(env)
            if self.sandbox_config is not None:
                for name, value in self.sandbox_config.model_dump(mode="json", exclude_defaults=True).items():
                    sandbox_env[f"{SANDBOX_ENV_PREFIX}{name.upper()}"] = json.dumps(value)
            child = Child("sandbox", self._cli("sandbox", "--port", str(port)), sandbox_env, logs / "sandbox.log")
            child.start()
            self.children.append(child)
            _wait_http(f"{sandbox_url}/healthz", child)
            base_urls = {**sandbox_base_urls(sandbox_url), **settings.provider_base_urls}
            cdn_base_urls = {**sandbox_cdn_base_urls(sandbox_url), **settings.cdn_base_urls}
            env["BEAT_PROVIDER_BASE_URLS"] = json.dumps(base_urls)
            env["BEAT_CDN_BASE_URLS"] = json.dumps(cdn_base_urls)
            for name, value in sandbox_service_settings(sandbox_url).items():
                if getattr(settings, name) is None:
                    env[f"BEAT_{name.upper()}"] = value
            source_rate_limits = settings.source_rate_limits or sandbox_source_rate_limits()
            env["BEAT_SOURCE_RATE_LIMITS"] = json.dumps(source_rate_limits)
            settings = self.settings = settings.model_copy(
                update={
                    "provider_base_urls": base_urls,
                    "cdn_base_urls": cdn_base_urls,
                    "source_rate_limits": source_rate_limits,
                }
            )
            asyncio.run(_seed_sandbox_credentials(database_url))
            self.endpoints["sandbox"] = sandbox_url

        self._ensure_topics()

        roles = ["sink", "worker", "api"] if self.with_workers else ["sink", "api"]
        if settings.amqp_url is not None:
            # The legacy RabbitMQ mirror runs only where a RabbitMQ is configured (contract §3).
            env["BEAT_AMQP_URL"] = settings.amqp_url.get_secret_value()
            roles.insert(-1, "mirror")
            # The five legacy inbound queues (contract §8), with the same RabbitMQ.
            roles.insert(-1, "listen")
        if self.with_workers:
            self.worker_processes = process_count(settings, None)
            check_shares(settings, self.worker_processes)
        self.metrics_ports = up_metrics_ports(settings, roles, self.worker_processes)
        for role in roles:
            args = ("--processes", str(self.worker_processes)) if role == "worker" else ()
            # Each role's own port; a worker's children number theirs from it (app/worker_processes.py).
            own = {**env, "BEAT_METRICS_PORT": str(self.metrics_ports[role])}
            child = Child(role, self._cli(role, *args), own, logs / f"{role}.log")
            child.start()
            self.children.append(child)
            time.sleep(STAGGER_SECONDS)
        api_url = f"http://{settings.api_host}:{api_port}"
        _wait_http(f"{api_url}/healthz", self.children[-1])
        self.endpoints.update({"kafka": kafka_url, "database": database_url, "api": api_url})
        write_endpoints(data_dir, {**self.endpoints, "api_key": self.api_key})
        return settings

    def _ensure_topics(self) -> None:
        from core.topic_admin import all_topics, ensure_topics
        from topics.flows import FLOWS

        assert self.settings.kafka_url
        asyncio.run(ensure_topics(self.settings.kafka_url, all_topics(self.settings, FLOWS), self.settings))

    def supervise_once(self) -> None:
        """Restart the embedded broker if it died, and any child that died, with a growing delay so a crash loop
        does not spin."""
        if self._broker is not None and not self._broker.alive():
            log.warning(
                "the embedded broker exited; starting it again on %s (see %s)",
                self._broker.bootstrap,
                self._broker.log_path,
            )
            self._broker.restart()
            # Before the children's clients produce to a topic it does not have, which Tansu would acknowledge
            # and keep nowhere (the sink's reconciler would put them back too, a moment later).
            self._ensure_topics()
        restart_exited(self.children)

    def stop(self) -> None:
        # The facade first (no new requests), the worker next (it drains), then the sink and the mirror.
        from topics.flows import FLOWS

        # A worker supervisor waits for its children as long, so it is given a little more.
        worker_timeout = drain_timeout(self.settings, FLOWS.values()) + 5
        for name in ("api", "listen", "worker", "sink", "mirror", "sandbox"):
            for child in self.children:
                if child.name == name:
                    child.stop(timeout=worker_timeout if name == "worker" else 15)
        if self._broker is not None:
            self._broker.stop()
        if self._postgres is not None:
            self._postgres.stop()


def _wait_http(url: str, child: Child, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited during start-up; see {child.log_path}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f}s; see {child.log_path}")


async def _stack_key(database_url: str, data_dir: Path) -> str:
    """A new key with every scope, named after the data directory; the one the last start made there is revoked,
    so restarts do not pile keys up, and stacks sharing a database keep each its own."""
    import asyncpg

    from app.key_store import replace_key
    from core.api_keys import SCOPES

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        return await replace_key(pool, f"beat up {data_dir}", SCOPES)
    finally:
        await pool.close()


async def _seed_sandbox_credentials(database_url: str) -> None:
    import asyncpg

    from providers.credentials import CredentialStore
    from providers.sandbox.seeds import seed_credentials

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        store = CredentialStore(pool)
        await seed_credentials(store, "sandbox")
    finally:
        await pool.close()


def run_up(settings: Settings, *, sandbox: bool) -> int:
    stack = Stack(settings, sandbox=sandbox)
    stopping = False

    def _stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        with waiting("starting Beat…"):
            stack.start()
        print("Beat is up.")
        for name, url in stack.endpoints.items():
            print(f"  {name:8} {url}")
        print("  api key  api_key in endpoints.json (every scope)")
        print(f"  workers  {stack.worker_processes} processes")
        print(f"  metrics  {describe(stack.metrics_ports, stack.worker_processes)} (/metrics, /healthz, /readyz)")
        print(f"  logs     {settings.data_dir.resolve() / 'logs'}")
        print(f"  written to {settings.data_dir.resolve() / 'endpoints.json'}; Ctrl-C stops everything.")
        while not stopping:
            stack.supervise_once()
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        with waiting("waiting for the worker to drain and the services to stop…"):
            stack.stop()
    return 0
