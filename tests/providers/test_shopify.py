"""Shopify over the REST Admin API (legacy): pure parsers on REST fixtures, the client against the sandbox over
loopback HTTP; and ``refresh_orders_by_store`` end to end (over GraphQL, the default) through the broker, the sink
and Postgres, its rows identical to the REST path's. The GraphQL parsers and client: ``test_shopify_graphql.py``."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from core.settings import Settings
from providers.clients import build_clients
from providers.credentials import CredentialStore
from providers.errors import AuthExpired, BadResponse, InputRejected
from providers.http import Credential, ProviderHttp
from providers.sandbox import SandboxServer
from providers.sandbox import shopify_store as sandbox
from providers.shopify.shopify import (
    REST_PAGE_WAIT,
    SOURCE,
    InvalidFilter,
    ShopifyRestClient,
    StoreMissing,
    admin_path,
    error_message,
    next_page_info,
    parse_orders_page,
    utm_params,
)
from providers.shopify.shopify_graphql import ORDER_FIELDS, ShopifyGraphqlClient
from tests.providers.shopify_support import (  # noqa: F401 (fixtures)
    KEY,
    STORE,
    TOKEN,
    RecordingHttp,
    every_page,
    http,
    load,
    projected,
    stored_row,
    unique_store,
)
from tests.support import wait_terminal
from topics import names
from topics.models import Platform, TraceLog
from topics.params import OrdersParams

VERSION = Settings().shopify_api_version
ORDERS_PATH = admin_path(VERSION, "orders.json")
E2E_STORE = "orders-30-end-to-end.myshopify.com"


def link(page_info: str, rel: str, store: str = STORE) -> str:
    return f'<https://{store}{ORDERS_PATH}?limit=50&page_info={page_info}>; rel="{rel}"'


# Parsers


def test_orders_page_has_the_legacy_order_dimensions() -> None:
    payload = load("orders.json")
    orders = parse_orders_page(payload, STORE)
    assert [o.platform_order_id for o in orders] == ["5312345678044", "5312345678033", "5312345678022", "5312345678011"]
    assert {(o.platform, o.source, o.kind, o.store) for o in orders} == {(Platform.SHOPIFY, SOURCE, "order", STORE)}

    delivered = orders[3]
    assert delivered.dimensions == {
        "platform_order_id": "5312345678011",
        "name": "#1042",
        "status": "success",
        "landing_site": payload["orders"][3]["landing_site"],
        "store_name": "Kalakari Crafts",
        "utm_params": json.dumps(
            {"source": "instagram", "medium": "influencer", "campaign": "meera.style", "content": "reel_12"}
        ),
        "order_data": payload["orders"][3],
        "platform": "SHOPIFY",
        "store": STORE,
    }
    # No fulfillment yet: no status; the relative landing site's utm parameters, decoded.
    unfulfilled = orders[2].dimensions
    assert unfulfilled["status"] is None and payload["orders"][2]["fulfillments"] == []
    assert json.loads(unfulfilled["utm_params"]) == {"source": "youtube", "medium": "social", "campaign": "diwali sale"}
    # A point-of-sale order never had a landing site.
    counter = orders[1].dimensions
    assert (counter["landing_site"], counter["utm_params"], counter["status"]) == (None, "{}", None)
    # The cancelled fulfillment is the status legacy reads; no utm parameters on the landing site.
    cancelled = orders[0].dimensions
    assert (cancelled["status"], cancelled["utm_params"], cancelled["store_name"]) == (
        "cancelled",
        "{}",
        "Kalakari Crafts",
    )


def test_an_empty_listing_is_no_orders() -> None:
    assert parse_orders_page(load("orders_empty.json"), STORE) == []


def test_malformed_orders_are_refused() -> None:
    with pytest.raises(BadResponse, match="no orders list"):
        parse_orders_page(load("not_found.json"), STORE)
    with pytest.raises(BadResponse, match="expected a JSON object"):
        parse_orders_page([], STORE)
    payload = load("orders.json")
    del payload["orders"][1]["id"]
    with pytest.raises(BadResponse, match="has no id"):
        parse_orders_page(payload, STORE)
    payload = load("orders.json")
    payload["orders"][0]["fulfillments"] = {"status": "success"}
    with pytest.raises(BadResponse, match="fulfillments is not a list"):
        parse_orders_page(payload, STORE)
    payload = load("orders.json")
    payload["orders"][2]["landing_site"] = 42
    with pytest.raises(BadResponse, match="landing_site is not text"):
        parse_orders_page(payload, STORE)
    with pytest.raises(BadResponse, match="an order is not an object"):
        parse_orders_page({"orders": ["5312345678011"]}, STORE)


@pytest.mark.parametrize(
    ("landing_site", "expected"),
    [
        ("/products/x?utm_source=ig", {"source": "ig"}),
        (
            "https://shop.example.com/?utm_source=yt&utm_medium=social&utm_campaign=summer%2Bdrop&ref=abc",
            {"source": "yt", "medium": "social", "campaign": "summer+drop"},
        ),
        ("/?utm_source=first&utm_source=second&utm_=bare#utm_medium=fragment", {"source": "first"}),
        ("/collections/all", {}),
        ("/products/x?ref=utm_source", {}),
        ("", {}),
        (None, {}),
    ],
)
def test_utm_params(landing_site: str | None, expected: dict[str, str]) -> None:
    assert utm_params(landing_site) == expected


def test_next_page_info_from_link_headers() -> None:
    assert next_page_info(link("eyJuZXh0Ijox", "next")) == "eyJuZXh0Ijox"
    both = f"{link('eyJwcmV2Ijox', 'previous')}, {link('eyJuZXh0Ijoy', 'next')}"
    assert next_page_info(both) == "eyJuZXh0Ijoy"
    assert next_page_info(f"{link('eyJuZXh0Ijoy', 'next')}, {link('eyJwcmV2Ijox', 'previous')}") == "eyJuZXh0Ijoy"
    # The last page links back only.
    assert next_page_info(link("eyJwcmV2Ijox", "previous")) is None
    assert next_page_info(None) is None and next_page_info("") is None
    assert (
        next_page_info("<https://x.myshopify.com/admin/api/2023-04/orders.json?page_info=abc&limit=5>; rel=next")
        == "abc"
    )
    with pytest.raises(BadResponse, match="no page_info"):
        next_page_info(f'<https://{STORE}/admin/api/2023-04/orders.json?limit=50>; rel="next"')


def test_shopify_error_bodies_read_as_messages() -> None:
    assert error_message(json.dumps(load("invalid_token.json"))).startswith("[API] Invalid API key")
    assert error_message(json.dumps(load("not_found.json"))) == "Not Found"
    assert error_message(json.dumps(load("page_info_with_filter.json"))).startswith(
        "status: status cannot be passed when page_info is present"
    )
    assert error_message("<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"


def test_store_must_be_a_bare_shop_domain() -> None:
    assert OrdersParams(store=" three-pages.myshopify.com ").store == "three-pages.myshopify.com"
    for store in (
        "https://x.myshopify.com",
        "x.myshopify.com/admin",
        "x.myshopify.com:8443",
        "me@x.myshopify.com",
        "evil.example?x=.myshopify.com",
        "x.myshopify.com#",
        "localhost",
        "a..myshopify.com",
        "",
    ):
        with pytest.raises(ValidationError, match="bare shop domain"):
            OrdersParams(store=store)
    with pytest.raises(ValidationError):
        OrdersParams(store="x.myshopify.com", limit=251)


class StubHttp:
    """Stands in for ProviderHttp: answers every call with one status, body and headers, and records the calls."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self._response = httpx.Response(status, content=json.dumps(body).encode(), headers=headers)

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append({"source": source, "method": method, "path": path, **kwargs})
        return self._response


async def test_first_page_carries_the_filters_and_later_pages_only_page_info() -> None:
    http = StubHttp(200, load("orders.json"), {"link": f"{link('prev1', 'previous')}, {link('next2', 'next')}"})
    client = ShopifyRestClient(http, VERSION)  # type: ignore[arg-type]
    filters = {"created_at_min": "2024-03-01T00:00:00+05:30", "updated_at_min": "2024-03-10"}
    first = await client.orders(STORE, 50, filters, None, credential=KEY, request_id="r1")
    second = await client.orders(STORE, 50, filters, first.next_cursor, credential=KEY, request_id="r1")
    assert first.next_cursor == "next2" and len(second.items) == 4 and first.wait == REST_PAGE_WAIT
    assert [(c["source"], c["method"], c["path"], c["host_vars"], c["credential"]) for c in http.calls] == [
        (SOURCE, "GET", ORDERS_PATH, {"store": STORE}, KEY)
    ] * 2
    assert http.calls[0]["params"] == {"status": "any", "limit": 50, **filters}
    assert http.calls[1]["params"] == {"limit": 50, "page_info": "next2"}
    with pytest.raises(ValueError, match="unknown order filters"):
        await client.orders(STORE, 50, {"status": "open"}, None, credential=KEY)
    with pytest.raises(ValueError, match="bare shop domain"):
        await client.orders("evil.example/x?", 50, {}, None, credential=KEY)
    with pytest.raises(InvalidFilter, match="created_at_min is not an ISO 8601 date or time: 'last week'"):
        await client.orders(STORE, 50, {"created_at_min": "last week"}, None, credential=KEY)
    assert len(http.calls) == 2


@pytest.mark.parametrize(
    ("status", "fixture", "error", "match"),
    [
        (401, "invalid_token.json", AuthExpired, "401: \\[API\\] Invalid API key"),
        (403, "missing_scope.json", AuthExpired, "read_orders scope"),
        (404, "not_found.json", StoreMissing, f"no Shopify store at {STORE}"),
        (400, "page_info_with_filter.json", InputRejected, "400: status: status cannot be passed"),
        (402, "not_found.json", InputRejected, "402"),
    ],
)
async def test_refusals_become_typed_errors(status: int, fixture: str, error: type[Exception], match: str) -> None:
    client = ShopifyRestClient(StubHttp(status, load(fixture)), VERSION)  # type: ignore[arg-type]
    with pytest.raises(error, match=match) as raised:
        await client.orders(STORE, 50, {}, None, credential=KEY)
    assert TOKEN not in str(raised.value)


# Over loopback HTTP


async def test_three_pages_of_orders(http: RecordingHttp, traces: list[TraceLog]) -> None:
    client = ShopifyRestClient(http, VERSION)
    pages = await every_page(client, sandbox.THREE_PAGES, 50, {"created_at_min": "2020-01-01"})
    assert [len(page.items) for page in pages] == [50, 50, 25]
    ids = [int(order.platform_order_id) for page in pages for order in page.items]
    # Every status (the sandbox, like Shopify, lists only open orders by default), newest first, none twice.
    assert len(set(ids)) == sandbox.THREE_PAGES_ORDERS and ids == sorted(ids, reverse=True)
    assert {order.dimensions["order_data"]["cancelled_at"] is not None for page in pages for order in page.items} == {
        True,
        False,
    }
    # The cursor is the page_info alone, and the later requests carry nothing but it and the limit.
    assert all(page.next_cursor and "/" not in page.next_cursor for page in pages[:2])
    assert http.params == [
        {"status": "any", "limit": 50, "created_at_min": "2020-01-01"},
        {"limit": 50, "page_info": pages[0].next_cursor},
        {"limit": 50, "page_info": pages[1].next_cursor},
    ]
    assert [(t.source, t.path, t.status) for t in traces] == [
        (SOURCE, f"/shopify/{sandbox.THREE_PAGES}{ORDERS_PATH}", 200)
    ] * 3
    assert all(TOKEN not in t.model_dump_json() for t in traces)


async def test_filters_hold_across_pages(http: RecordingHttp) -> None:
    store = unique_store(90)
    sandbox_store = sandbox.store_of(store)
    assert sandbox_store is not None
    created = [datetime.fromisoformat(sandbox.order(sandbox_store, p)["created_at"]) for p in range(90)]
    low, high = created[20], created[69]
    filters = {"created_at_min": low.isoformat(), "created_at_max": high.isoformat()}
    pages = await every_page(ShopifyRestClient(http, VERSION), store, 20, filters)
    got = [order.dimensions["order_data"]["created_at"] for page in pages for order in page.items]
    assert len(pages) == 3 and len(got) == 50
    assert all(low <= datetime.fromisoformat(at) <= high for at in got)


async def test_the_sandbox_refuses_filters_beside_page_info(sandbox_server: SandboxServer, http: RecordingHttp) -> None:
    """What makes the three-page test meaningful: Shopify's 400 for a filter sent with a page_info."""
    first = await ShopifyRestClient(http, VERSION).orders(sandbox.THREE_PAGES, 50, {}, None, credential=KEY)
    async with httpx.AsyncClient(base_url=f"{sandbox_server.url}/shopify/{sandbox.THREE_PAGES}") as client:
        answer = await client.get(
            ORDERS_PATH,
            params={"limit": 50, "page_info": first.next_cursor, "status": "any"},
            headers={"X-Shopify-Access-Token": TOKEN},
        )
        assert answer.status_code == 400
        assert answer.json() == load("page_info_with_filter.json")
        forged = await client.get(
            ORDERS_PATH, params={"page_info": "eyJzdG9yZSI6Im90aGVyIn0"}, headers={"X-Shopify-Access-Token": TOKEN}
        )
        assert (forged.status_code, forged.json()) == (400, {"errors": {"page_info": "Invalid value."}})


async def test_the_sandbox_links_back_to_the_previous_page(sandbox_server: SandboxServer) -> None:
    headers = {"X-Shopify-Access-Token": TOKEN}
    async with httpx.AsyncClient(base_url=f"{sandbox_server.url}/shopify/{sandbox.THREE_PAGES}") as client:
        first = await client.get(ORDERS_PATH, params={"status": "any", "limit": 40}, headers=headers)
        assert 'rel="previous"' not in first.headers["link"]
        second = await client.get(
            ORDERS_PATH, params={"limit": 40, "page_info": next_page_info(first.headers["link"])}, headers=headers
        )
        links = {rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', second.headers["link"])}
        assert set(links) == {"previous", "next"}
        real_host = f"https://{sandbox.THREE_PAGES}{ORDERS_PATH}?limit=40&page_info="
        assert all(url.startswith(real_host) for url in links.values())
        back = await client.get(
            ORDERS_PATH, params={"limit": 40, "page_info": links["previous"].rsplit("=", 1)[1]}, headers=headers
        )
    assert [o["id"] for o in back.json()["orders"]] == [o["id"] for o in first.json()["orders"]]
    assert len({o["id"] for o in second.json()["orders"]} | {o["id"] for o in first.json()["orders"]}) == 80


async def test_a_store_without_orders_is_one_empty_page(http: RecordingHttp) -> None:
    page = await ShopifyRestClient(http, VERSION).orders(unique_store(0), 250, {}, None, credential=KEY)
    assert (page.items, page.next_cursor) == ([], None)


async def test_refusals_over_http(http: RecordingHttp) -> None:
    client = ShopifyRestClient(http, VERSION)
    no_token = Credential(id="shop-2", source=SOURCE, secrets={}, handle=STORE)
    with pytest.raises(AuthExpired, match="401: \\[API\\] Invalid API key or access token"):
        await client.orders(sandbox.THREE_PAGES, 50, {}, None, credential=no_token)
    with pytest.raises(StoreMissing, match=r"no Shopify store at closed-shop\.example\.com"):
        await client.orders("closed-shop.example.com", 50, {}, None, credential=KEY)


async def test_the_setting_picks_the_api() -> None:
    http = ProviderHttp(base_urls={}, timeout=1.0)
    assert isinstance(build_clients(http, Settings())[SOURCE], ShopifyGraphqlClient)
    assert isinstance(build_clients(http, Settings(shopify_api="rest"))[SOURCE], ShopifyRestClient)
    await http.aclose()
    with pytest.raises(ValidationError, match="shopify_api_version"):
        Settings(shopify_api_version="2023-4")


# End to end


async def _add_credential(pool, store: str) -> None:
    await CredentialStore(pool).add(
        SOURCE,
        {"X-Shopify-Access-Token": f"shpat_{uuid.uuid4().hex}"},
        handle=store,
        idempotency_key=f"shopify:{store}:test",
    )


async def _stored_orders(pool, store: str, expected: int) -> list[Any]:
    """The store's rows once the sink has written ``expected`` of them (its COMPLETE may land a batch earlier)."""
    rows: list[Any] = []
    for _ in range(150):
        rows = await pool.fetch(
            "SELECT platform_order_id, name, status, landing_site, store_name, utm_params, store, "
            'platform, source, order_data FROM "order" WHERE store = $1',
            store,
        )
        if len(rows) >= expected:
            return rows
        await asyncio.sleep(0.1)
    pytest.fail(f"{len(rows)} of {expected} orders of {store} written")


async def test_refresh_orders_by_store_pages_through_every_order(run_flow, pool, http: RecordingHttp) -> None:
    """Over GraphQL (the default) three cursor pages of orders, stored as the very rows the REST path stores."""
    store = E2E_STORE
    await _add_credential(pool, store)
    result, events, source = await run_flow(
        "refresh_orders_by_store", {"store": store, "limit": 10}, topic=names.ORDER_LOG, at_least=30
    )
    assert source == SOURCE
    assert (result["orders"], result["pages"], result["events"]) == (30, 3, {names.ORDER_LOG: 30})
    ids = {event["platform_order_id"] for event in events}
    assert len(events) == len(ids) == 30
    assert {(e["platform"], e["source"], e["store"], e["kind"]) for e in events} == {
        ("SHOPIFY", SOURCE, store, "order")
    }
    for event in events:
        dimensions = event["dimensions"]
        assert json.loads(dimensions["utm_params"]) == utm_params(dimensions["landing_site"])
    assert sum(json.loads(e["dimensions"]["utm_params"]) != {} for e in events) > 10

    rows = await _stored_orders(pool, store, 30)
    rest_pages = await every_page(ShopifyRestClient(http, VERSION), store, 50, {})
    rest_rows = {order.platform_order_id: stored_row(order) for page in rest_pages for order in page.items}
    assert sorted(row["platform_order_id"] for row in rows) == sorted(ids) == sorted(rest_rows)
    for row in rows:
        stored = {**dict(row), "order_data": json.loads(row["order_data"])}
        rest = rest_rows[row["platform_order_id"]]
        assert {**stored, "order_data": None} == {**rest, "order_data": None}
        # order_data holds the REST order's fields the GraphQL query asks for, with the REST order's values.
        assert set(stored["order_data"]) == {field[0] for field in ORDER_FIELDS} | {"line_items", "fulfillments"}
        assert projected(rest["order_data"], stored["order_data"]) == stored["order_data"]
    # Not a comparison of empty columns: the store has orders in every state the columns tell apart.
    assert {row["status"] for row in rows} >= {"success", None}
    assert {row["landing_site"] is None for row in rows} == {True, False}


async def test_an_empty_store_completes_with_no_orders(run_flow, pool) -> None:
    store = unique_store(0)
    await _add_credential(pool, store)
    result, _, source = await run_flow("refresh_orders_by_store", {"store": store})
    assert source == SOURCE and (result["orders"], result["pages"]) == (0, 1)


async def test_orders_need_the_store_s_own_credential(stack, pool) -> None:
    store = unique_store(5)
    await _add_credential(pool, unique_store(5))
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post("/requests", json={"flow": "refresh_orders_by_store", "params": {"store": store}})
    request_id = response.json()["id"]
    assert (await wait_terminal(pool, [request_id], timeout=60)) == {request_id: "FAILED"}
    error = await pool.fetchval("SELECT error_message FROM scrape_request_log WHERE id = $1", request_id)
    assert f"no enabled credential for {store}" in error
