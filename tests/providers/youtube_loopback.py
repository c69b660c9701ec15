"""The YouTube sandbox over loopback HTTP for the YouTube provider tests, and its fixtures.

``LoopbackServer`` serves only the Data API routes and their proxies (youtube-v31, youtube-v311, Analytics) and
lets a test change its knobs in process; the whole sandbox is conftest's ``sandbox_server``, whose knobs a test
turns over the admin endpoints (``knobs``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from providers.http import ProviderHttp
from providers.sandbox.config import SandboxConfig
from providers.sandbox.knobs import Knobs
from providers.sandbox.state import SandboxState
from providers.sandbox.youtube import YouTubeWorld
from providers.sandbox.youtube_analytics import YouTubeAnalyticsRoutes
from providers.sandbox.youtube_data import YouTubeDataRoutes
from providers.sandbox.youtube_v311 import YouTubeV311Routes
from providers.sandbox.ytv31 import YtV31Routes
from topics.models import TraceLog

LABELS = ("ytapitoken", "ytapi", "yt-v31", "rapidapi-yt-search", "google-oauth", "yt-analytics")


class LoopbackServer:
    """The YouTube sandbox routes behind the sandbox knobs, served on a free loopback port."""

    def __init__(self, world: YouTubeWorld, config: SandboxConfig | None = None) -> None:
        routes: list[BaseRoute] = [
            *YouTubeDataRoutes(world).mounts(),
            YtV31Routes(world).mount(),
            YouTubeV311Routes(world).mount(),
            *YouTubeAnalyticsRoutes(world).mounts(),
        ]
        self.state = SandboxState(config or SandboxConfig())
        app = Knobs(Starlette(routes=routes), self.state)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                access_log=False,
                lifespan="off",
                log_config=None,
                log_level="warning",
                timeout_graceful_shutdown=1,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self._server.servers[0].sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)

    def base_urls(self) -> dict[str, str]:
        return {label: f"{self.url}/{label}" for label in LABELS}


@pytest.fixture(scope="module")
def world() -> YouTubeWorld:
    # The sandbox's world is a pure function of the day it was made: this one tells the same story.
    return YouTubeWorld()


@pytest.fixture(scope="module")
def server(world: YouTubeWorld) -> Iterator[LoopbackServer]:
    with LoopbackServer(world) as running:
        yield running


@pytest_asyncio.fixture
async def http(server: LoopbackServer, traces: list[TraceLog]) -> AsyncIterator[ProviderHttp]:
    async def record(trace: TraceLog) -> None:
        traces.append(trace)

    client = ProviderHttp(base_urls=server.base_urls(), timeout=5.0, trace_sink=record)
    yield client
    await client.aclose()
