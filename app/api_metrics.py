"""The facade's metrics port: ``/metrics``, ``/healthz``, and a ``/readyz`` that asks the facade's own.

The facade already knows whether its Postgres and broker answer (``GET /readyz`` on its port,
``app/readiness.py``); the metrics port's ``/readyz`` asks it over loopback rather than keep a second
pool and producer, so both always agree.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from core.health import MetricsServer, serve_metrics
from core.settings import Settings

# Below the facade's own checks' bound (2 s each, concurrently) plus a margin.
READYZ_TIMEOUT = 5.0


def observe_api(facade: FastAPI, settings: Settings) -> MetricsServer:
    server, health = serve_metrics("api", settings)
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "") else settings.api_host  # noqa: S104 - a bind-all address

    def facade_ready() -> dict[str, bool]:
        try:
            answer = httpx.get(f"http://{host}:{settings.api_port}/readyz", timeout=READYZ_TIMEOUT)
            checks = answer.json().get("checks", {})
        except (httpx.HTTPError, ValueError, AttributeError):
            return {"facade": False}
        return {"facade": answer.status_code == 200, **{name: value == "ok" for name, value in checks.items()}}

    health.probe_with(facade_ready)
    facade.state.metrics_server = server
    return server
