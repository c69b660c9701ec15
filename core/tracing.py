"""Optional OpenTelemetry traces: with ``BEAT_OTEL_ENDPOINT`` each process exports its spans there.

A request's attempt is one span (the worker), with a child span per provider call, and its records carry
the trace context in a ``traceparent`` Kafka header (W3C format), so the sink's write and the mirror's
publish of those records link to it from their processes, and a retried attempt continues the trace.
Without the setting the OpenTelemetry API is a no-op and costs next to nothing.

Spans carry names and bounded facts only: flow, request id, attempt, source, operation, method, the path
without its query string, status. Never a URL's query (YouTube's ``key=``), a header, a body or a
credential's secrets; ``tests/flows/test_youtube_secrets.py`` checks every exported span.

The exporter speaks OTLP/HTTP with JSON bodies (any OpenTelemetry collector takes them at
``/v1/traces``), so no protobuf stack is needed for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

log = logging.getLogger(__name__)

TRACER = trace.get_tracer("beat")
HEADER = "traceparent"
EXPORT_TIMEOUT = 10.0


def configure_tracing(endpoint: str | None, role: str) -> TracerProvider | None:
    """Export this process's spans to ``endpoint`` as ``beat-<role>``; nothing without an endpoint."""
    if not endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"beat-{role}"}))
    provider.add_span_processor(BatchSpanProcessor(OtlpJsonExporter(endpoint)))
    trace.set_tracer_provider(provider)
    log.info("traces to %s", endpoint)
    return provider


def inject_headers(headers: list[tuple[str, bytes]] | None = None) -> list[tuple[str, bytes]] | None:
    """Kafka headers carrying the current span's context (``headers`` plus ``traceparent``), or ``headers``
    as given when no span is recording."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if HEADER not in carrier:
        return headers
    return [*(headers or []), *((name, value.encode()) for name, value in carrier.items())]


def extract_context(headers: Mapping[str, str]) -> Context:
    """The trace context a record's Kafka headers (decoded, as ``RawRecord.headers``) carry; empty without one."""
    return propagate.extract({name: value for name, value in headers.items() if name in (HEADER, "tracestate")})


def trace_headers(headers: Iterable[tuple[str, bytes]] | None) -> list[tuple[str, bytes]]:
    """The trace headers among a record's, to carry on to the record it is handed on as."""
    return [(name, value) for name, value in headers or () if name in (HEADER, "tracestate")]


def raw_headers(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """An aiokafka record's trace headers, decoded."""
    return {name: value.decode("latin-1") for name, value in headers or () if name in (HEADER, "tracestate") and value}


def links_of(headers_of_records: Iterable[Iterable[tuple[str, bytes]] | None], limit: int = 32) -> list[trace.Link]:
    """Links to the spans that produced a batch's records (at most ``limit``, in batch order)."""
    links: list[trace.Link] = []
    for headers in headers_of_records:
        carried = raw_headers(headers)
        if not carried:
            continue
        context = trace.get_current_span(extract_context(carried)).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
            if len(links) >= limit:
                break
    return links


class OtlpJsonExporter(SpanExporter):
    """Spans to an OTLP/HTTP endpoint as JSON (the collector's ``/v1/traces``)."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint
        self._client = httpx.Client(timeout=EXPORT_TIMEOUT)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            answer = self._client.post(self._endpoint, json=otlp_body(spans))
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("could not export %d spans to %s: %s", len(spans), self._endpoint, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._client.close()


def otlp_body(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The OTLP JSON encoding of ``spans`` (ids as hex, times as nanosecond strings)."""
    by_resource: dict[int, tuple[Any, list[dict[str, Any]]]] = {}
    for span in spans:
        entry = by_resource.setdefault(id(span.resource), (span.resource, []))
        entry[1].append(_span(span))
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes(dict(resource.attributes) if resource else {})},
                "scopeSpans": [{"scope": {"name": "beat"}, "spans": encoded}],
            }
            for resource, encoded in by_resource.values()
        ]
    }


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    body: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
        "name": span.name,
        "kind": span.kind.value + 1,  # OTLP counts from UNSPECIFIED = 0
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
        "attributes": _attributes(dict(span.attributes or {})),
        "status": {"code": span.status.status_code.value},
        "links": [
            {"traceId": f"{link.context.trace_id:032x}", "spanId": f"{link.context.span_id:016x}"}
            for link in span.links
        ],
    }
    if span.parent is not None:
        body["parentSpanId"] = f"{span.parent.span_id:016x}"
    return body


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            encoded: dict[str, Any] = {"boolValue": value}
        elif isinstance(value, int):
            encoded = {"intValue": str(value)}
        elif isinstance(value, float):
            encoded = {"doubleValue": value}
        else:
            encoded = {"stringValue": str(value)}
        out.append({"key": key, "value": encoded})
    return out
