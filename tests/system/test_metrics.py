"""Every process's metrics port under a short load: each family present, those the load drives moving;
/healthz and /readyz; JSON logs that parse line by line and name the request they are about."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.embedded import free_port
from core.health import DEFAULT_PORTS, metrics_port
from core.metrics import family_names
from core.settings import load_settings
from providers.sandbox.config import SandboxConfig
from tests.conftest import isolated
from tests.support import BeatProcess, produce_requests, wait_terminal
from topics import names

BASIC = "refresh_profile_basic"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
SERVED = re.compile(r"metrics, /healthz and /readyz on (http://[0-9.]+:[0-9]+)")

# The names every process's registry carries (fixed: a dashboard reads them); counters without ``_total``.
CONVENTION = {
    "beat_requests",
    "beat_request_attempts",
    "beat_flow_duration_seconds",
    "beat_flow_in_flight",
    "beat_flow_concurrency",
    "beat_consumer_lag",
    "beat_provider_calls",
    "beat_provider_call_duration_seconds",
    "beat_ratelimit_wait_seconds",
    "beat_breaker_state",
    "beat_credentials",
    "beat_sink_batch_size",
    "beat_sink_rows",
    "beat_dead_letters",
    "beat_redrives",
    "beat_reconciler_actions",
    "beat_mirror_published",
    "beat_mirror_retries",
    "beat_listener_messages",
    "beat_listener_retries",
    "beat_parser_drift",
}
# What the load below makes move, by process: a sample of the family with a value above zero.
WORKER_MOVING = {
    "beat_requests_total",
    "beat_request_attempts_total",
    "beat_flow_duration_seconds_count",
    "beat_flow_concurrency",
    "beat_provider_calls_total",
    "beat_provider_call_duration_seconds_count",
    "beat_ratelimit_wait_seconds_count",
    "beat_breaker_state",
    "beat_credentials",
    "beat_dead_letters_total",
}
SINK_MOVING = {"beat_sink_batch_size_count", "beat_sink_rows_total"}
MIRROR_MOVING = {"beat_mirror_published_total"}


def test_the_registry_holds_every_conventional_family():
    assert set(family_names()) >= CONVENTION


def test_ports_follow_the_convention():
    settings = load_settings()
    assert {role: metrics_port(settings, role) for role in DEFAULT_PORTS} == {
        "worker": 9401,
        "sink": 9402,
        "mirror": 9403,
        "listener": 9404,
        "api": 9405,
    }
    assert metrics_port(settings.model_copy(update={"metrics_port": 9500}), "worker", 2) == 9502
    assert metrics_port(settings.model_copy(update={"metrics_port": 0}), "worker", 2) == 0


async def served_at(log_path: Path, timeout: float = 60.0) -> str:
    """The URL a process says (in its log) its metrics port is on: a free port in the tests."""
    deadline = time.monotonic() + timeout
    while True:
        if match := SERVED.search(log_path.read_text(errors="replace") if log_path.exists() else ""):
            return match[1]
        assert time.monotonic() < deadline, f"{log_path} names no metrics port"
        await asyncio.sleep(0.2)


async def until_ready(url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            answer = await client.get(f"{url}/readyz")
            if answer.status_code == 200:
                return answer.json()
            assert answer.status_code == 503, answer.text
            assert time.monotonic() < deadline, answer.text
            await asyncio.sleep(0.3)


def scrape(url: str) -> dict[str, float]:
    """Each sample's name to the sum of its values over label sets; families known without samples show too."""
    text = httpx.get(f"{url}/metrics").text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        values.setdefault(family.name, 0.0)
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def moving(values: dict[str, float], wanted: set[str]) -> set[str]:
    return {name for name in wanted if values.get(name, 0.0) > 0}


def json_lines(proc: BeatProcess) -> list[dict]:
    """Every line of the process's output as JSON (a line that does not parse fails the test)."""
    lines = [line for line in proc.log_path.read_text(errors="replace").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


async def test_every_family_moves_under_a_short_load_and_every_process_is_ready(
    broker, database_url, session_dir, pool
):
    api_port = free_port()
    settings = {
        "log_format": "json",
        "amqp_url": AMQP_URL,
        # Exchanges of its own, declared by the mirror: the default names on this RabbitMQ are not the test's.
        "amqp_declare": "direct",
        "amqp_beat_exchange": f"metrics-{uuid.uuid4().hex[:8]}.beat.dx",
        "amqp_identity_exchange": f"metrics-{uuid.uuid4().hex[:8]}.identity.dx",
        "amqp_coffee_exchange": f"metrics-{uuid.uuid4().hex[:8]}.coffee.dx",
        "breaker_failures": "2",
        "breaker_cooldown": "300",
        "api_port": str(api_port),
    }
    # The Graph API answers 500 to everything: its circuit opens and profiles fall through to the next source.
    sandbox = SandboxConfig(fail_paths={"/graphapi/": 500})
    async with isolated(broker, database_url, session_dir, sandbox, "metrics", **settings) as (prefix, spawn, _):
        worker_port = free_port()
        worker = spawn("worker", "--flows", BASIC, "--metrics-port", str(worker_port))
        mirror = spawn("mirror", "--metrics-port", "0")
        api = spawn("api")
        worker_url = f"http://127.0.0.1:{worker_port}"
        assert await served_at(worker.log_path) == worker_url
        # The isolated stack's sink was spawned first, its log beside the worker's.
        [sink_log] = worker.log_path.parent.glob("sink-*.log")
        sink_url = await served_at(sink_log)
        mirror_url = await served_at(mirror.log_path)
        api_url = await served_at(api.log_path)
        for url in (worker_url, sink_url, mirror_url, api_url):
            assert httpx.get(f"{url}/healthz").status_code == 200
        ready = await until_ready(worker_url)
        assert ready["role"] == "worker" and set(ready["checks"]) == {"postgres", "broker", "assigned"}
        await until_ready(sink_url)
        await until_ready(mirror_url)
        # The facade's metrics port asks the facade's own /readyz.
        assert (await until_ready(api_url))["checks"] == {"facade": True, "postgres": True, "broker": True}

        topic = f"{prefix}{names.scrape_topic(BASIC)}"
        bodies = [{"params": {"handle": f"metrics_{i}"}} for i in range(12)]
        ids = await produce_requests(broker, topic, bodies, key_field="handle")
        # A record that is no request at all: dead-lettered by the worker.
        await produce_requests(broker, topic, [{"params": {"handle": 42}, "flow": 7}])
        # One through the facade: counted PENDING by the api process.
        async with httpx.AsyncClient() as client:
            posted = await client.post(
                f"http://127.0.0.1:{api_port}/requests", json={"flow": BASIC, "params": {"handle": "metrics_api"}}
            )
        assert posted.status_code == 202, posted.text
        ids.append(posted.json()["id"])
        statuses = await wait_terminal(pool, ids, timeout=90)
        assert set(statuses.values()) == {"COMPLETE"}, statuses

        deadline = time.monotonic() + 30
        while True:
            worker_values, sink_values, mirror_values = scrape(worker_url), scrape(sink_url), scrape(mirror_url)
            api_values = scrape(api_url)
            missing = (
                (WORKER_MOVING - moving(worker_values, WORKER_MOVING))
                | ({"beat_requests_total"} - moving(api_values, {"beat_requests_total"}))
                | (SINK_MOVING - moving(sink_values, SINK_MOVING))
                | (MIRROR_MOVING - moving(mirror_values, MIRROR_MOVING))
            )
            lag_shown = "beat_consumer_lag" in worker_values and "beat_consumer_lag" in sink_values
            if not missing and lag_shown:
                break
            assert time.monotonic() < deadline, f"not moving: {missing}"
            await asyncio.sleep(0.5)
        assert set(worker_values) >= CONVENTION
        # The open circuit is Graph's, and every worker label is bounded (no request id anywhere).
        breaker = httpx.get(f"{worker_url}/metrics").text
        assert 'beat_breaker_state{source="graphapi"} 2.0' in breaker
        assert not any(request_id in breaker for request_id in ids)

        # JSON logs: every line of every process parses, each names its role; the worker's name requests.
        for proc, role in ((worker, "worker"), (mirror, "mirror"), (api, "api")):
            lines = json_lines(proc)
            assert lines and all(line["role"] == role and line["level"] and line["timestamp"] for line in lines)
        about = [line for line in json_lines(worker) if line.get("request_id") in ids]
        assert about, "no worker line named a request"
        assert all(line["flow"] == BASIC and line["attempt"] == 1 for line in about)
        assert any(line.get("source") == "graphapi" for line in about)
