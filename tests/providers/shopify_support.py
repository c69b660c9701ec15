"""What the Shopify tests share: the fixtures' files, a credential, the sandbox over loopback HTTP through the
real HTTP layer, paging helpers, and the order rows the sink writes. A test module imports the fixtures it
uses by name."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Protocol

import httpx
import pytest_asyncio

from providers.http import Credential, ProviderHttp
from providers.sandbox import SandboxServer
from providers.sandbox.seeds import sandbox_base_urls
from providers.shopify.shopify import SOURCE, OrdersPage
from sinks.shopify import order_row
from tests.support import load_fixture
from topics.models import Order, OrderLog, TraceLog, utcnow

STORE = "kalakari-crafts.myshopify.com"
TOKEN = "shpat_test_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
KEY = Credential(id="shop-1", source=SOURCE, secrets={"X-Shopify-Access-Token": TOKEN}, handle=STORE)


load = partial(load_fixture, "shopify")


def unique_store(orders: int, extra: str = "") -> str:
    return f"{extra}orders-{orders}-{uuid.uuid4().hex[:8]}.myshopify.com"


class OrdersClient(Protocol):
    async def orders(
        self,
        store: str,
        limit: int,
        filters: dict[str, str],
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> OrdersPage: ...


async def every_page(client: OrdersClient, store: str, limit: int, filters: dict[str, str]) -> list[OrdersPage]:
    pages, cursor = [], None
    while True:
        page = await client.orders(store, limit, filters, cursor, credential=KEY)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def stored_row(order: Order) -> dict[str, Any]:
    """The ``"order"`` row the sink writes for an order (as the flow emits it), in the form Postgres gives it
    back: ``order_data`` as JSON, without the moment it was observed."""
    event = OrderLog(
        event_id="e",
        request_id="r",
        source=order.source,
        platform=order.platform,
        observed_at=utcnow(),
        platform_order_id=order.platform_order_id,
        store=order.store,
        dimensions=order.dimensions,
    )
    row = order_row(event)
    del row["observed_at"]
    return {**row, "order_data": json.loads(json.dumps(row["order_data"]))}


def projected(whole: Any, part: Any) -> Any:
    """``whole`` cut down to the keys ``part`` has (recursively, lists item by item): equal to ``part`` when
    ``part`` is ``whole`` with fields left out."""
    if isinstance(part, dict) and isinstance(whole, dict):
        return {key: projected(whole.get(key), value) for key, value in part.items()}
    if isinstance(part, list) and isinstance(whole, list) and len(part) == len(whole):
        return [projected(w, p) for w, p in zip(whole, part, strict=True)]
    return whole


class RecordingHttp(ProviderHttp):
    """The real HTTP layer, remembering the parameters and JSON body of every call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.params: list[dict[str, Any]] = []
        self.bodies: list[Any] = []

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.params.append(dict(kwargs.get("params") or {}))
        self.bodies.append(kwargs.get("json"))
        return await super().request(source, method, path, **kwargs)


@pytest_asyncio.fixture
async def http(sandbox_server: SandboxServer, traces: list[TraceLog]) -> AsyncIterator[RecordingHttp]:
    async def keep(record: TraceLog) -> None:
        traces.append(record)

    client = RecordingHttp(base_urls=sandbox_base_urls(sandbox_server.url), timeout=5.0, trace_sink=keep)
    yield client
    await client.aclose()
