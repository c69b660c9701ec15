"""The provider calls the facade makes itself, where the legacy server answered inline (``/token/validate``).

They go through the workers' HTTP layer (``providers/http.py``): the configured base URLs, the rate limiter
(shared through Redis when configured), the cost and budget guards, a ``trace_log`` record per call without
secrets. The client is opened with the facade and closed with it (the lifespan of the router that uses it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request

from core.settings import Settings
from providers.http import ProviderHttp
from providers.instagram.graphapi import GraphApiClient
from providers.ratelimit import RateLimiter, calls_at
from providers.spending import Spending
from topics import names
from topics.models import TraceLog

log = logging.getLogger(__name__)


class FacadeProviders:
    """The facade's provider clients, over one ProviderHttp."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer, pool: asyncpg.Pool) -> None:
        self._settings = settings
        self._producer = producer
        self.limiter = RateLimiter.from_settings(settings)
        # Its calls are spent and budgeted like the workers' (under no flow: "-").
        self.spending = Spending.from_settings(settings, pool)
        self.spending.start()
        self.http = ProviderHttp(
            base_urls=dict(settings.provider_base_urls),
            timeout=settings.http_timeout,
            trace_sink=self._trace,
            limiter=self.limiter,
            spending=self.spending,
        )
        app_token = settings.graph_app_token.get_secret_value() if settings.graph_app_token else None
        self.graph = GraphApiClient(self.http, app_token=app_token, version=settings.graph_api_version)
        self.app_token = app_token

    def on_demand(self) -> AbstractContextManager[None]:
        """The limiter's priority for a caller who waits on the answer (a facade call is on-demand work)."""
        return calls_at(self._settings.on_demand_priority)

    async def _trace(self, record: TraceLog) -> None:
        # Not awaited to delivery, as in the worker: a trace is not worth holding an answer for.
        try:
            await self._producer.send(self._settings.topic(names.TRACE_LOG), record.to_bytes())
        except Exception as exc:  # noqa: BLE001 - a lost trace must not fail the caller's answer
            log.warning("trace_log record not sent (%s)", type(exc).__name__)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.limiter.aclose()
        await self.spending.aclose()


@asynccontextmanager
async def providers_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Opens ``app.state.providers`` once the facade's state exists (it runs inside ``create_api``'s lifespan)."""
    state = app.state.beat
    app.state.providers = FacadeProviders(state.settings, state.producer, state.pool)
    try:
        yield
    finally:
        await app.state.providers.aclose()


def facade_providers(request: Request) -> FacadeProviders:
    """A FastAPI dependency: the running facade's provider clients."""
    providers: FacadeProviders = request.app.state.providers
    return providers
