"""Shopify over the GraphQL Admin API: the pure parsers on fixtures in the reference's shapes, GraphQL errors as
typed errors, and the client against the sandbox over loopback HTTP: three cursor pages holding the REST path's
orders, the filters on every page, line items past the first ten, the cost limit, throttling, refusals and a
retired API version."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from core.settings import Settings
from providers.errors import AuthExpired, BadResponse, ProviderUnavailable, QuotaExceeded
from providers.http import Credential
from providers.sandbox import SandboxServer
from providers.sandbox import shopify_store as sandbox
from providers.sandbox.shopify_graphql import order_node
from providers.shopify.shopify import (
    SOURCE,
    InvalidFilter,
    ShopifyRestClient,
    StoreMissing,
    admin_path,
    parse_order,
    parse_orders_page,
)
from providers.shopify.shopify_graphql import (
    LINE_ITEM_COST,
    LINE_ITEMS,
    MAX_QUERY_COST,
    ORDER_COST,
    ORDER_FIELDS,
    ORDERS_PER_QUERY,
    ORDERS_QUERY,
    Reader,
    ShopifyGraphqlClient,
    Throttle,
    gid,
    parse_line_items_answer,
    parse_orders_answer,
    search_query,
    shop_zone,
)
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
from topics.models import TraceLog

VERSION = Settings().shopify_api_version
GRAPHQL_PATH = admin_path(VERSION, "graphql.json")
KOLKATA = Reader(shop_zone("Asia/Kolkata"))


# Parsers


def test_graphql_orders_read_as_the_rest_orders() -> None:
    payload = load("graphql_orders.json")
    answer = parse_orders_answer(payload)
    assert answer.next_cursor == payload["data"]["orders"]["pageInfo"]["endCursor"]
    assert answer.throttle == Throttle(requested=966, available=1916, restore_rate=100)
    # The last order holds one of its two line items; the rest come from the order's own connection.
    assert answer.more_line_items == {3: payload["data"]["orders"]["nodes"][3]["lineItems"]["pageInfo"]["endCursor"]}
    items, after, throttle = parse_line_items_answer(load("graphql_order_line_items.json"), answer.reader)
    assert (after, throttle) == (None, Throttle(requested=504, available=1991, restore_rate=100))
    answer.orders[3]["line_items"].extend(items)

    rest = load("orders.json")["orders"]
    # REST recorded the last order's landing on the shop's own domain as an absolute URL; GraphQL gives every
    # landing page absolute, and Beat keeps REST's usual form, its path and query.
    landing = (
        "/products/block-print-kurta?utm_source=instagram&utm_medium=influencer&utm_campaign=meera.style"
        "&utm_content=reel_12&variant=44123456700011"
    )
    expected_landing = [order["landing_site"] for order in rest[:3]] + [landing]
    for order, rest_order, landing_site in zip(answer.orders, rest, expected_landing, strict=True):
        assert set(order) == {field[0] for field in ORDER_FIELDS} | {"line_items", "fulfillments"}
        assert order == {**projected(rest_order, order), "landing_site": landing_site}
        # The legacy dimensions are REST's, utm parameters included.
        graphql_dims = parse_order(order, STORE).dimensions
        rest_dims = parse_orders_page({"orders": [rest_order]}, STORE)[0].dimensions
        assert {**graphql_dims, "order_data": None, "landing_site": None} == {
            **rest_dims,
            "order_data": None,
            "landing_site": None,
        }
    cancelled = answer.orders[0]
    # gid://shopify/Order/5312345678044, "1499.0", REFUNDED, CUSTOMER, FULFILLMENT_NOT_REQUIRED, UTC, in REST's terms.
    assert (
        cancelled["id"],
        cancelled["total_price"],
        cancelled["financial_status"],
        cancelled["cancel_reason"],
        cancelled["fulfillment_status"],
        cancelled["created_at"],
        cancelled["fulfillments"][0]["status"],
    ) == (5312345678044, "1499.00", "refunded", "customer", None, "2024-03-16T20:55:12+05:30", "cancelled")
    assert [len(order["line_items"]) for order in answer.orders] == [len(order["line_items"]) for order in rest]


def test_an_empty_store_is_one_empty_page() -> None:
    answer = parse_orders_answer(load("graphql_orders_empty.json"))
    assert (answer.orders, answer.next_cursor, answer.more_line_items) == ([], None, {})


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1899.0", "1899.00"),
        ("85.71", "85.71"),
        ("29.999", "29.999"),
        ("0", "0.00"),
        ("1E+3", "1000.00"),
        ("-12.5", "-12.50"),
    ],
)
def test_money_reads_as_rest_amounts(amount: str, expected: str) -> None:
    assert KOLKATA.money({"shopMoney": {"amount": amount, "currencyCode": "INR"}}, "totalPriceSet") == expected


def test_values_read_as_rest_writes_them() -> None:
    assert KOLKATA.money(None, "totalTaxSet") is None
    for amount in ("NaN", "Infinity", "12,50"):
        with pytest.raises(BadResponse, match=r"totalPriceSet\.shopMoney\.amount"):
            KOLKATA.money({"shopMoney": {"amount": amount}}, "totalPriceSet")
    assert KOLKATA.time("2024-03-16T15:25:12Z", "createdAt") == "2024-03-16T20:55:12+05:30"
    new_york = Reader(shop_zone("America/New_York"))
    assert new_york.time("2024-07-01T15:00:00Z", "createdAt") == "2024-07-01T11:00:00-04:00"
    # A zone this machine does not know keeps UTC: the same instant, another offset.
    unknown = Reader(shop_zone("Mars/Olympus_Mons"))
    assert unknown.time("2024-03-16T15:25:12Z", "createdAt") == "2024-03-16T15:25:12+00:00"
    with pytest.raises(BadResponse, match="createdAt is not a date-time"):
        KOLKATA.time("yesterday", "createdAt")
    assert [
        KOLKATA.fulfillment_status(status, "displayFulfillmentStatus")
        for status in (
            "FULFILLED",
            "PARTIALLY_FULFILLED",
            "RESTOCKED",
            "UNFULFILLED",
            "FULFILLMENT_NOT_REQUIRED",
            "IN_PROGRESS",
            "ON_HOLD",
            "A_STATUS_FROM_2030",
        )
    ] == ["fulfilled", "partial", "restocked", None, None, None, None, None]
    assert KOLKATA.lower("PARTIALLY_REFUNDED", "displayFinancialStatus") == "partially_refunded"
    assert KOLKATA.tags(["vip", "diwali"], "tags") == "vip, diwali" and KOLKATA.tags([], "tags") == ""
    assert (
        KOLKATA.landing_site("https://shop.example/products/x?utm_source=ig#top", "landingPage")
        == "/products/x?utm_source=ig#top"
    )
    assert KOLKATA.landing_site("https://shop.example", "landingPage") == "/"
    assert KOLKATA.landing_site("/already/relative?a=1", "landingPage") == "/already/relative?a=1"
    assert gid("Order")(KOLKATA, "gid://shopify/Order/5312345678044", "id") == 5312345678044
    for wrong in ("gid://shopify/LineItem/1", "5312345678044", "gid://shopify/Order/abc"):
        with pytest.raises(BadResponse, match="id is not a gid://shopify/Order/ id"):
            gid("Order")(KOLKATA, wrong, "id")


def test_malformed_answers_are_refused() -> None:
    with pytest.raises(BadResponse, match="data is not an object"):
        parse_orders_answer({"extensions": {}})
    payload = load("graphql_orders.json")
    payload["data"]["orders"]["pageInfo"]["endCursor"] = None
    with pytest.raises(BadResponse, match="orders has a next page but no endCursor"):
        parse_orders_answer(payload)
    payload = load("graphql_orders.json")
    del payload["data"]["orders"]["nodes"][1]["id"]
    with pytest.raises(BadResponse, match="an order has no id"):
        parse_orders_answer(payload)
    payload = load("graphql_orders.json")
    payload["data"]["orders"]["nodes"][2]["lineItems"] = [{"vendor": "x"}]
    with pytest.raises(BadResponse, match=r"order\.lineItems is not an object"):
        parse_orders_answer(payload)
    payload = load("graphql_orders.json")
    payload["data"]["orders"]["nodes"][0]["number"] = 2**64
    with pytest.raises(BadResponse, match=r"order\.number"):
        parse_orders_answer(payload)


@pytest.mark.parametrize(
    ("fixture", "error", "match"),
    [
        ("graphql_throttled.json", QuotaExceeded, "answered THROTTLED: Throttled"),
        ("graphql_access_denied.json", AuthExpired, "answered ACCESS_DENIED: Access denied for orders field"),
        ("graphql_internal_error.json", ProviderUnavailable, "answered INTERNAL_SERVER_ERROR: Internal error"),
        ("graphql_max_cost_exceeded.json", BadResponse, "answered MAX_COST_EXCEEDED: Query cost is 18504"),
    ],
)
def test_graphql_errors_are_typed_errors(fixture: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as raised:
        parse_orders_answer(load(fixture), "POST graphql.json")
    assert type(raised.value) is error
    if error is QuotaExceeded:
        # (requested 966 - available 366) points at 100 a second.
        assert raised.value.retry_after == 6.0  # type: ignore[attr-defined]


def test_the_bucket_paces_the_next_query() -> None:
    assert Throttle(requested=966, available=1916, restore_rate=100).wait() == 0.0
    assert Throttle(requested=966, available=366, restore_rate=100).wait() == 6.0
    assert Throttle.read({"extensions": {}}) is None


def test_filters_become_quoted_search_terms() -> None:
    assert search_query({}) is None
    assert search_query(
        {"updated_at_min": "2024-03-10", "created_at_min": "2024-03-01T00:00:00+05:30", "created_at_max": "2024-03-31"}
    ) == ("updated_at:>='2024-03-10' created_at:>='2024-03-01T00:00:00+05:30' created_at:<='2024-03-31'")


def test_one_page_stays_within_the_cost_limit() -> None:
    assert ORDERS_QUERY.count("fulfillments(first: 5)") == 1
    assert 4 + ORDERS_PER_QUERY * ORDER_COST <= MAX_QUERY_COST < 4 + (ORDERS_PER_QUERY + 1) * ORDER_COST


# Over loopback HTTP


async def test_three_cursor_pages_hold_the_rest_orders(http: RecordingHttp, traces: list[TraceLog]) -> None:
    store = unique_store(30)
    pages = await every_page(ShopifyGraphqlClient(http, VERSION), store, 10, {})
    assert [len(page.items) for page in pages] == [10, 10, 10] and pages[-1].next_cursor is None
    assert all(page.wait == 0.0 for page in pages)
    # Each page asks for the orders after the last page's cursor, with the same search.
    assert [body["variables"] for body in http.bodies] == [
        {"first": 10, "after": cursor, "query": None, "lineItems": LINE_ITEMS}
        for cursor in (None, pages[0].next_cursor, pages[1].next_cursor)
    ]
    assert all(body["query"] == ORDERS_QUERY for body in http.bodies)
    assert [(t.source, t.method, t.path, t.status) for t in traces] == [
        (SOURCE, "POST", f"/shopify/{store}{GRAPHQL_PATH}", 200)
    ] * 3
    assert all(TOKEN not in t.model_dump_json() for t in traces)

    rest = await every_page(ShopifyRestClient(http, VERSION), store, 50, {})
    rest_rows = [stored_row(order) for page in rest for order in page.items]
    graphql_rows = [stored_row(order) for page in pages for order in page.items]
    # The same orders, newest first, and the same rows but for the REST fields GraphQL does not ask for.
    assert [row["platform_order_id"] for row in graphql_rows] == [row["platform_order_id"] for row in rest_rows]
    for graphql_row, rest_row in zip(graphql_rows, rest_rows, strict=True):
        assert {**graphql_row, "order_data": None} == {**rest_row, "order_data": None}
        assert projected(rest_row["order_data"], graphql_row["order_data"]) == graphql_row["order_data"]


async def test_the_filters_hold_on_every_page(http: RecordingHttp) -> None:
    store = unique_store(90)
    sandbox_store = sandbox.store_of(store)
    assert sandbox_store is not None
    created = [datetime.fromisoformat(sandbox.order(sandbox_store, p)["created_at"]) for p in range(90)]
    low, high = created[20], created[69]
    filters = {"created_at_min": low.isoformat(), "created_at_max": high.isoformat()}
    # 50 orders match; a page holds ORDERS_PER_QUERY of them whatever the limit asks.
    pages = await every_page(ShopifyGraphqlClient(http, VERSION), store, 250, filters)
    got = [
        datetime.fromisoformat(order.dimensions["order_data"]["created_at"]) for page in pages for order in page.items
    ]
    assert [len(page.items) for page in pages] == [13, 13, 13, 11] and ORDERS_PER_QUERY == 13
    assert len(got) == 50 and all(low <= at <= high for at in got) and got == sorted(got, reverse=True)
    assert {body["variables"]["query"] for body in http.bodies} == {search_query(filters)}


async def test_line_items_past_the_first_ten_come_from_the_order(http: RecordingHttp, traces: list[TraceLog]) -> None:
    store = unique_store(3, "items-12-")
    [page] = await every_page(ShopifyGraphqlClient(http, VERSION), store, 10, {})
    assert [len(order.dimensions["order_data"]["line_items"]) for order in page.items] == [12, 12, 12]
    # One orders query, then one query per order for its last two line items.
    follow_ups = http.bodies[1:]
    assert [body["variables"]["id"] for body in follow_ups] == [
        f"gid://shopify/Order/{order.platform_order_id}" for order in page.items
    ]
    assert all(body["variables"]["first"] == 100 and body["variables"]["after"] for body in follow_ups)
    assert len(traces) == 4
    [rest] = await every_page(ShopifyRestClient(http, VERSION), store, 10, {})
    for graphql_order, rest_order in zip(page.items, rest.items, strict=True):
        items = graphql_order.dimensions["order_data"]["line_items"]
        assert projected(rest_order.dimensions["order_data"]["line_items"], items) == items


async def _post(
    server: SandboxServer, store: str, variables: dict[str, Any], query: str = ORDERS_QUERY, version: str = VERSION
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{server.url}/shopify/{store}") as client:
        return await client.post(
            admin_path(version, "graphql.json"),
            json={"query": query, "variables": variables},
            headers={"X-Shopify-Access-Token": TOKEN},
        )


async def test_the_sandbox_holds_queries_to_shopify_s_rules(sandbox_server: SandboxServer, http: RecordingHttp) -> None:
    """What keeps the client honest: the cost limit, quoted dates and cursors that mark a position."""
    over = await _post(sandbox_server, sandbox.THREE_PAGES, {"first": 250, "lineItems": LINE_ITEMS})
    assert over.status_code == 200
    [error] = over.json()["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED" and error["extensions"]["cost"] > MAX_QUERY_COST
    # The client's fullest page is within it.
    page = await ShopifyGraphqlClient(http, VERSION).orders(sandbox.THREE_PAGES, 250, {}, None, credential=KEY)
    assert len(page.items) == ORDERS_PER_QUERY
    unquoted = await _post(
        sandbox_server, sandbox.THREE_PAGES, {"first": 5, "lineItems": 1, "query": "created_at:>=2024-01-01"}
    )
    assert "dates must be quoted" in unquoted.json()["errors"][0]["message"]
    cost = await _post(sandbox_server, sandbox.THREE_PAGES, {"first": 5, "lineItems": 1})
    one_item = ORDER_COST - (LINE_ITEMS - 1) * LINE_ITEM_COST
    assert cost.json()["extensions"]["cost"]["requestedQueryCost"] == 4 + 5 * one_item
    assert cost.headers["x-shopify-api-version"] == VERSION
    forged = await _post(sandbox_server, sandbox.THREE_PAGES, {"first": 5, "lineItems": 1, "after": "bm90IGEgY3Vyc29y"})
    assert forged.json()["errors"][0]["message"] == "Invalid cursor"


async def test_refusals_over_http(http: RecordingHttp) -> None:
    client = ShopifyGraphqlClient(http, VERSION)
    no_token = Credential(id="shop-2", source=SOURCE, secrets={}, handle=STORE)
    with pytest.raises(AuthExpired, match="401: \\[API\\] Invalid API key or access token"):
        await client.orders(sandbox.THREE_PAGES, 10, {}, None, credential=no_token)
    with pytest.raises(StoreMissing, match=r"no Shopify store at closed-shop\.example\.com"):
        await client.orders("closed-shop.example.com", 10, {}, None, credential=KEY)
    with pytest.raises(QuotaExceeded, match="THROTTLED") as throttled:
        await client.orders(unique_store(5, "throttled-"), 10, {}, None, credential=KEY)
    # The bucket holds 40 points of the 4 + 10 × ORDER_COST asked, and restores 100 a second.
    assert throttled.value.retry_after == pytest.approx((4 + 10 * ORDER_COST - 40) / 100)
    with pytest.raises(AuthExpired, match="ACCESS_DENIED: Access denied for orders field"):
        await client.orders(unique_store(5, "denied-"), 10, {}, None, credential=KEY)
    with pytest.raises(InvalidFilter, match="updated_at_min"):
        await client.orders(
            sandbox.THREE_PAGES, 10, {"updated_at_min": "2024-03-10' OR status:open '"}, None, credential=KEY
        )
    # A version Shopify never released is no path at all.
    with pytest.raises(StoreMissing, match=r"2030-01/graphql\.json of three-pages\.myshopify\.com answered 404"):
        await ShopifyGraphqlClient(http, "2030-01").orders(sandbox.THREE_PAGES, 10, {}, None, credential=KEY)


@pytest.mark.parametrize("client_class", [ShopifyGraphqlClient, ShopifyRestClient])
async def test_a_retired_version_answers_as_the_oldest_supported_one(
    client_class: type[ShopifyGraphqlClient] | type[ShopifyRestClient],
    http: RecordingHttp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="providers.shopify.shopify")
    pages = await every_page(client_class(http, "2023-04"), unique_store(15), 10, {})
    assert sum(len(page.items) for page in pages) == 15 and len(pages) == 2
    warnings = [record.getMessage() for record in caplog.records if record.name == "providers.shopify.shopify"]
    # Once per client, however many pages it reads.
    assert warnings == [
        "Shopify answered API version 2026-01 to a request for 2023-04, which it no longer serves: "
        "set BEAT_SHOPIFY_API_VERSION to a supported version"
    ]


def test_the_cancelled_and_unfulfilled_read_alike_in_every_version() -> None:
    """2026-10 answers FULFILLMENT_NOT_REQUIRED where older versions answered UNFULFILLED; REST says null for both."""
    store = sandbox.store_of(sandbox.THREE_PAGES)
    assert store is not None
    cancelled = next(
        entry
        for entry in (sandbox.order(store, p) for p in range(125))
        if entry["cancelled_at"] and not entry["fulfillment_status"]
    )
    new, old = (order_node(store, cancelled, version, 1, 5) for version in ("2026-10", "2026-07"))
    assert (new["displayFulfillmentStatus"], old["displayFulfillmentStatus"]) == (
        "FULFILLMENT_NOT_REQUIRED",
        "UNFULFILLED",
    )
    zone = Reader(UTC)
    assert {zone.fulfillment_status(node["displayFulfillmentStatus"], "s") for node in (new, old)} == {None}
