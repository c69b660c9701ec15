"""Every Prometheus metric Beat exports, in one registry, so a test (and an operator) can list them all.

Each process serves this registry on its metrics port (``core/health.py``). A family only shows the
processes that touch it; the names are a fixed convention the compose stack's dashboard reads.

Labels are bounded: flows, sources, operations, tables, routing keys, queues, error classes and
fixed outcomes only; never a request id, a handle, a credential id or a field name taken from an
answer. The request path increments children looked up through ``child`` (one dict lookup),
never ``labels()`` on a fresh tuple each time.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

REGISTRY = CollectorRegistry(auto_describe=True)

# Flows run from milliseconds (a cached read) to their timeout (minutes); provider calls below a minute.
FLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 2500, 5000, 10000)

REQUESTS = Counter(
    "beat_requests", "Requests that reached a status, by flow and status", ["flow", "status"], registry=REGISTRY
)
ATTEMPTS = Counter("beat_request_attempts", "Attempts started, by flow", ["flow"], registry=REGISTRY)
FLOW_DURATION = Histogram(
    "beat_flow_duration_seconds", "One attempt's run of its flow", ["flow"], buckets=FLOW_BUCKETS, registry=REGISTRY
)
IN_FLIGHT = Gauge("beat_flow_in_flight", "Records of a flow being worked now", ["flow"], registry=REGISTRY)
CONCURRENCY = Gauge("beat_flow_concurrency", "A flow's configured concurrency", ["flow"], registry=REGISTRY)
CONSUMER_LAG = Gauge(
    "beat_consumer_lag",
    "Records between a group's position and the partition's high-water mark (from fetch answers)",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)

PROVIDER_CALLS = Counter(
    "beat_provider_calls",
    "HTTP calls to providers, by source, operation (fetch type) and status class",
    ["source", "operation", "status"],
    registry=REGISTRY,
)
PROVIDER_CALL_DURATION = Histogram(
    "beat_provider_call_duration_seconds",
    "Latency of provider calls",
    ["source", "operation"],
    buckets=CALL_BUCKETS,
    registry=REGISTRY,
)
RATELIMIT_WAIT = Histogram(
    "beat_ratelimit_wait_seconds",
    "Time a call waited for its rate-limit slot",
    ["source"],
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "beat_breaker_state", "A source's circuit: 0 closed, 1 half-open, 2 open", ["source"], registry=REGISTRY
)
CREDENTIALS = Gauge(
    "beat_credentials", "Enabled credentials per source by state", ["source", "state"], registry=REGISTRY
)
PARSER_DRIFT = Counter(
    "beat_parser_drift",
    "Provider answers lacking an expected field (missing) or carrying an unknown one (unknown)",
    ["source", "operation", "kind"],
    registry=REGISTRY,
)
PARSE_FAILURES = Counter(
    "beat_parse_failures",
    "Provider answers that did not parse (BadResponse), by source",
    ["source"],
    registry=REGISTRY,
)

SINK_BATCH_SIZE = Histogram("beat_sink_batch_size", "Records per sink batch", buckets=BATCH_BUCKETS, registry=REGISTRY)
SINK_ROWS = Counter("beat_sink_rows", "Rows the sink wrote, by table", ["table"], registry=REGISTRY)
DEAD_LETTERS = Counter("beat_dead_letters", "Records dead-lettered, by reason", ["reason"], registry=REGISTRY)
REDRIVES = Counter("beat_redrives", "Requests re-driven (reconciler, dlq redrive, retry)", registry=REGISTRY)
RECONCILER_ACTIONS = Counter(
    "beat_reconciler_actions", "What the reconciler did, by action", ["action"], registry=REGISTRY
)

MIRROR_PUBLISHED = Counter(
    "beat_mirror_published", "Legacy messages RabbitMQ confirmed, by routing key", ["routing_key"], registry=REGISTRY
)
MIRROR_RETRIES = Counter("beat_mirror_retries", "Mirror batches retried after a failure", registry=REGISTRY)
LISTENER_MESSAGES = Counter(
    "beat_listener_messages",
    "Messages the listener consumed, by queue and outcome",
    ["queue", "outcome"],
    registry=REGISTRY,
)
LISTENER_RETRIES = Counter("beat_listener_retries", "Listener messages retried", registry=REGISTRY)

UP = Gauge("beat_process_ready", "1 while the process's readiness checks pass", ["role"], registry=REGISTRY)


@cache
def child(metric: M, *labels: str) -> M:
    """The metric's child for these label values, made once: label sets are bounded by design."""
    return metric.labels(*labels)


def family_names() -> list[str]:
    """Every family this registry exports (counters without their ``_total`` suffix, as the client names them)."""
    return sorted(metric.name for metric in REGISTRY.collect())


def status_class(status: int | None, error: str | None) -> str:
    """A provider call's bounded status label: ``2xx``…``5xx``, ``429``, ``timeout`` or ``connection``."""
    if status is None:
        return "timeout" if error == "timeout" else "connection"
    if status == 429:
        return "429"
    return f"{status // 100}xx"
