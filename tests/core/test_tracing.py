"""Traces: a request's span with a child per provider call, its context carried in Kafka headers, spans
exported as OTLP JSON, and never a secret in one."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.tracing import (
    HEADER,
    TRACER,
    OtlpJsonExporter,
    extract_context,
    inject_headers,
    links_of,
    otlp_body,
    trace_headers,
)
from providers.http import Credential
from tests.tracing_support import SpanCollector

SECRET_KEY = "secret-yt-key-for-traces"


@pytest.fixture(scope="module")
def exported() -> InMemorySpanExporter:
    # The process's one provider: later tests in the session export here too, which costs them nothing.
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


async def test_a_provider_call_is_a_child_span_without_its_key(exported, sandbox_http):
    exported.clear()
    http = sandbox_http("ytapitoken")
    credential = Credential(id="7", source="ytapitoken", secrets={"key": SECRET_KEY})
    with TRACER.start_as_current_span("flow refresh_yt_profiles"):
        headers = inject_headers([("beat-due", b"1")])
        await http.request(
            "ytapitoken",
            "GET",
            "/youtube/v3/channels",
            params={"part": "snippet", "id": "UCx", "key": SECRET_KEY},
            credential=credential,
            secrets_as_headers=False,
        )
    call, request = exported.get_finished_spans()
    assert (call.name, request.name) == ("ytapitoken GET", "flow refresh_yt_profiles")
    assert call.parent is not None and call.parent.span_id == request.context.span_id
    assert call.attributes["url.path"] == "/youtube/v3/channels"
    assert call.attributes["http.response.status_code"] == 200
    encoded = json.dumps(otlp_body([call, request]))
    assert SECRET_KEY not in encoded and "key=" not in encoded

    # The records produced inside carry the trace: a consumer's span continues it, a batch links to it.
    assert headers is not None and headers[0] == ("beat-due", b"1") and headers[1][0] == HEADER
    carried = {HEADER: headers[1][1].decode()}
    with TRACER.start_as_current_span("next attempt", context=extract_context(carried)) as span:
        assert span.get_span_context().trace_id == request.context.trace_id
    [link] = links_of([headers, None, [("other", b"x")]])
    assert link.context.span_id == request.context.span_id
    # The retry consumer hands the next attempt on with the trace, not the rest.
    assert trace_headers(headers) == [headers[1]]


def test_no_span_no_header(exported):
    assert inject_headers(None) is None
    assert inject_headers([("a", b"b")]) == [("a", b"b")]


def test_spans_reach_an_otlp_endpoint_as_json(exported):
    exported.clear()
    with TRACER.start_as_current_span("sink write", attributes={"beat.records": 3}):
        pass
    collector = SpanCollector()
    try:
        exporter = OtlpJsonExporter(collector.url)
        assert exporter.export(exported.get_finished_spans()).name == "SUCCESS"
        exporter.shutdown()
        [span] = collector.spans()
        assert span["name"] == "sink write"
        assert span["attributes"] == [{"key": "beat.records", "value": {"intValue": "3"}}]
        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
    finally:
        collector.close()
