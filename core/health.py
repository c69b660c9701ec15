"""Each process's metrics port: ``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (ready).

A small threaded HTTP server beside the process's event loop, so a scrape or a probe is answered even
while the loop is busy, and costs the request path nothing. Readiness is what the process reports
through its ``Health``: each check (``postgres``, ``broker``, ``consumer assigned``…) is set by the
code that knows, from the loop; the server only reads them. ``/readyz`` answers 200 when every check
is true, else 503, with the checks as JSON either way.

Ports: ``BEAT_METRICS_PORT`` (or a role's ``--metrics-port``), else the role's default below; 0 picks a
free port, which is logged. Bound to ``BEAT_METRICS_HOST`` (loopback unless configured).
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.metrics import REGISTRY, UP, child
from core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"worker": 9401, "sink": 9402, "mirror": 9403, "listener": 9404, "api": 9405}
# Where `beat up` puts the children of a worker with several processes, clear of the other roles' ports.
WORKER_CHILDREN_BASE = 9411


def metrics_port(settings: Settings, role: str, index: int = 0) -> int:
    """The role's metrics port: the configured one (0 stays 0: ephemeral), else its default; plus ``index``
    for the children of ``beat worker --processes N`` (numbered from 0)."""
    base = settings.metrics_port if settings.metrics_port is not None else DEFAULT_PORTS[role]
    return base + index if base else 0


class Health:
    """A process's readiness checks, set from its loop and read by the server's threads."""

    def __init__(self, role: str, checks: tuple[str, ...]) -> None:
        self.role = role
        self._checks = dict.fromkeys(checks, False)
        self._lock = threading.Lock()
        self._extra: dict[str, Callable[[], Any]] = {}
        self._probe: Callable[[], dict[str, bool]] | None = None

    def set(self, check: str, ok: bool) -> None:
        with self._lock:
            self._checks[check] = ok
        child(UP, self.role).set(1 if all(self._checks.values()) else 0)

    def add_view(self, name: str, view: Callable[[], Any]) -> None:
        """Serve ``view()`` as JSON at ``/<name>`` (the worker's drift findings)."""
        self._extra[name] = view

    def view(self, name: str) -> Callable[[], Any] | None:
        return self._extra.get(name)

    def probe_with(self, probe: Callable[[], dict[str, bool]]) -> None:
        """Have each ``/readyz`` ask ``probe`` (called on the server's thread) for the checks it decides."""
        self._probe = probe

    def report(self) -> tuple[bool, dict[str, bool]]:
        with self._lock:
            checks = dict(self._checks)
        if self._probe is not None:
            checks.update(self._probe())
        return all(checks.values()), checks


class MetricsServer:
    def __init__(self, health: Health, host: str, port: int) -> None:
        self.health = health
        self._server = ThreadingHTTPServer((host, port), _handler(health))
        self._server.daemon_threads = True
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="beat-metrics", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def serve_metrics(
    role: str, settings: Settings, checks: tuple[str, ...] = (), *, index: int = 0
) -> tuple[MetricsServer, Health]:
    """Start the role's metrics port; its readiness checks start false until the process sets them.

    The listener (``beat listen``) calls this too: ``serve_metrics("listener", settings, ("amqp",))``,
    then ``health.set("amqp", True)`` once its queues are consumed.
    """
    health = Health(role, checks)
    child(UP, role).set(0 if checks else 1)
    port = metrics_port(settings, role, index)
    try:
        server = MetricsServer(health, settings.metrics_host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # The process matters more than its scrape: it runs, and says loudly where its metrics went.
        server = MetricsServer(health, settings.metrics_host, 0)
        log.error("metrics port %d is taken; %s metrics on port %d instead", port, role, server.port)
    server.start()
    log.info("%s metrics, /healthz and /readyz on %s", role, server.url)
    return server, health


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._json(200, {"status": "alive", "role": health.role})
            elif path == "/readyz":
                ready, checks = health.report()
                self._json(200 if ready else 503, {"ready": ready, "role": health.role, "checks": checks})
            elif (view := health.view(path.lstrip("/"))) is not None:
                self._json(200, view())
            else:
                self._json(404, {"detail": "not found"})

        def _json(self, status: int, body: Any) -> None:
            self._answer(status, json.dumps(body, default=str).encode(), "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Scrapes every few seconds would drown the process's own log.
            return

    return Handler
