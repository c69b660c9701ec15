"""A process's metrics port: /healthz always, /readyz as its checks say, /metrics in Prometheus' text format,
a free port when asked for 0 or when its own is taken."""

from __future__ import annotations

import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core.health import serve_metrics
from core.settings import load_settings


def test_liveness_readiness_and_metrics():
    server, health = serve_metrics("sink", load_settings(metrics_port=0), ("postgres", "broker"))
    try:
        assert server.port > 0
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "alive", "role": "sink"}
        not_yet = httpx.get(f"{server.url}/readyz")
        assert not_yet.status_code == 503
        assert not_yet.json()["checks"] == {"postgres": False, "broker": False}
        health.set("postgres", True)
        health.set("broker", True)
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        health.set("broker", False)
        assert httpx.get(f"{server.url}/readyz").status_code == 503

        scraped = httpx.get(f"{server.url}/metrics")
        assert scraped.headers["content-type"].startswith("text/plain")
        families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
        [sample] = [s for s in families["beat_process_ready"].samples if s.labels == {"role": "sink"}]
        assert sample.value == 0
        assert httpx.get(f"{server.url}/nothing").status_code == 404
    finally:
        server.close()


def test_a_probe_decides_checks_on_each_request_and_views_are_served():
    server, health = serve_metrics("api", load_settings(metrics_port=0))
    answers = iter([{"facade": False}, {"facade": True}])
    health.probe_with(lambda: next(answers))
    health.add_view("drift", lambda: [{"source": "s"}])
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 503
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        assert httpx.get(f"{server.url}/drift").json() == [{"source": "s"}]
    finally:
        server.close()


def test_a_taken_port_falls_back_to_a_free_one(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server, _ = serve_metrics("mirror", load_settings(metrics_port=port))
        try:
            assert server.port != port
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            assert f"metrics port {port} is taken" in caplog.text
        finally:
            server.close()
