"""The credential-free services flows call beside the crawler, built once per worker from settings."""

from __future__ import annotations

from agents.flows.context import FlowTools
from agents.flows.gpt import GptRuntime
from core.settings import Settings
from providers.http import ProviderHttp, TraceSink
from providers.youtube import ray
from providers.youtube.youtube_web import YouTubeWebClient


def build_tools(http: ProviderHttp, settings: Settings, trace_sink: TraceSink | None = None) -> FlowTools:
    return FlowTools(
        youtube_web=YouTubeWebClient(http),
        # The worker maps BEAT_RAY_URL to the ``ray`` label; without it categorisation is skipped.
        ray=ray.RayClient(http, retry_wait=ray.RETRY_WAIT * settings.flow_wait_scale) if settings.ray_url else None,
        gpt=GptRuntime.from_settings(settings, trace_sink),
        environment=settings.environment,
        bucket=settings.s3_bucket,
    )
