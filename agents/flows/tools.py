"""The credential-free services flows call beside the crawler, built once per worker from settings."""

from __future__ import annotations

from agents.flows.context import FlowTools
from app.settings import Settings
from providers.http import ProviderHttp, TraceSink


def build_tools(http: ProviderHttp, settings: Settings, trace_sink: TraceSink | None = None) -> FlowTools:
    return FlowTools()
