"""Shopify's GraphQL Admin API: the orders query, its pure parsers, and the client.

Every call is ``POST https://{store}/admin/api/{version}/graphql.json`` with ``{"query", "variables"}``.
The facts this module relies on, from shopify.dev (checked 2026-12-03):

- ``orders`` is a connection paged by ``first``/``after`` and ``pageInfo { hasNextPage endCursor }``
  (at most 250 per page); its ``query`` argument takes the search syntax, whose date values must be
  quoted (``updated_at:>='2024-03-10'``). Without a ``status`` term every order is listed, which is
  what the REST path asks with ``status=any``.
- Ids are global ids, ``gid://shopify/Order/5312345678044``; the number is the REST id.
- Money is a ``MoneyBag``: ``totalPriceSet { shopMoney { amount currencyCode } }``, the amount a
  ``Decimal`` serialized as a string of any precision. Enums are upper case (``PAID``); date-times are
  UTC. Line items are a connection of their own.
- A query is priced before it runs: scalars and enums cost 0, objects 1, a connection 2 plus ``first``
  times its node; no single query may cost more than 1,000 points. Every answer reports
  ``extensions.cost { requestedQueryCost, actualQueryCost, throttleStatus { maximumAvailable,
  currentlyAvailable, restoreRate } }``, and a query the bucket cannot pay for answers HTTP 200 with
  an error whose ``extensions.code`` is ``THROTTLED``.
- Errors come with HTTP 200 as ``{"errors": [{"message", "extensions": {"code"}}]}``; a refused token
  is still HTTP 401 with REST's ``{"errors": "[API] Invalid API key or access token ..."}``.

The parser maps each order onto the REST order's field names (``rest_order``), so
``shopify.parse_order`` reads the same legacy dimensions from either API.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.errors import (
    AuthExpired,
    BadResponse,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.parsing import Values, at, wait_seconds
from providers.shopify.shopify import (
    SOURCE,
    OrdersPage,
    VersionWatch,
    admin_answer,
    admin_path,
    checked_filters,
    parse_order,
)

# Each legacy filter as a search term (``created_at_max`` keeps REST's "at or before").
SEARCH_TERMS = {"updated_at_min": "updated_at:>=", "created_at_min": "created_at:>=", "created_at_max": "created_at:<="}

# What one page may ask for. The cost model is Shopify's (see the module docstring) applied to
# ORDERS_QUERY: per order 1 (the order) + 4 × 2 (money bags) + 2 (journey, first visit)
# + FULFILLMENTS × 2 (each with its tracking) + 3 (the line items connection and its pageInfo)
# + LINE_ITEMS × 5 (the item, product, variant and the price's bag); 4 more for the shop, the
# orders connection and its pageInfo.
MAX_QUERY_COST = 1000
FULFILLMENTS = 5
LINE_ITEMS = 10
LINE_ITEM_COST = 5
ORDER_COST = 1 + 4 * 2 + 2 + FULFILLMENTS * 2 + 3 + LINE_ITEMS * LINE_ITEM_COST
ORDERS_PER_QUERY = (MAX_QUERY_COST - 4) // ORDER_COST
# An order with more line items gets the rest from ORDER_LINE_ITEMS_QUERY, this many at a time:
# 1 (the order) + 3 (connection, pageInfo) + 100 × 5 = 504 points.
MORE_LINE_ITEMS = 100

_LINE_ITEM_FRAGMENT = """
fragment BeatLineItem on LineItem {
  id title name variantTitle vendor quantity sku requiresShipping taxable isGiftCard
  product { id }
  variant { id }
  originalUnitPriceSet { shopMoney { amount currencyCode } }
}
"""

ORDERS_QUERY = (
    """
query BeatOrders($first: Int!, $after: String, $query: String, $lineItems: Int!) {
  shop { ianaTimezone }
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT, reverse: true) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id name number email createdAt updatedAt processedAt closedAt cancelledAt cancelReason
      confirmed test currencyCode presentmentCurrencyCode taxesIncluded
      displayFinancialStatus displayFulfillmentStatus sourceName tags note
      subtotalPriceSet { shopMoney { amount currencyCode } }
      totalDiscountsSet { shopMoney { amount currencyCode } }
      totalTaxSet { shopMoney { amount currencyCode } }
      totalPriceSet { shopMoney { amount currencyCode } }
      customerJourneySummary { firstVisit { landingPage referrerUrl } }
      fulfillments(first: %d) {
        id name status createdAt updatedAt
        trackingInfo(first: 1) { company number }
      }
      lineItems(first: $lineItems) {
        pageInfo { hasNextPage endCursor }
        nodes { ...BeatLineItem }
      }
    }
  }
}
"""
    % FULFILLMENTS
    + _LINE_ITEM_FRAGMENT
)

ORDER_LINE_ITEMS_QUERY = (
    """
query BeatOrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...BeatLineItem }
    }
  }
}
"""
    + _LINE_ITEM_FRAGMENT
)

_GID = re.compile(r"gid://shopify/(\w+)/(\d+)")

_v = Values(SOURCE)


def search_query(filters: dict[str, str]) -> str | None:
    """The legacy filters in the search syntax, one quoted term each (implicitly ANDed); None without any.

    The values were checked to be ISO dates or times (``checked_filters``), so no quote can end a term early.
    """
    terms = [f"{SEARCH_TERMS[name]}'{value}'" for name, value in filters.items()]
    return " ".join(terms) or None


# Parsers: the GraphQL order in the REST order's field names


def shop_zone(name: Any) -> tzinfo:
    """The shop's IANA time zone, in which REST writes its times. A zone this machine does not know
    keeps UTC: the instants stay right, only their offset differs from REST's."""
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


@dataclass(frozen=True, slots=True)
class Reader:
    """Reads GraphQL values as REST writes them; ``zone`` is the shop's time zone."""

    zone: tzinfo

    def text(self, value: Any, name: str) -> str | None:
        return _v.text(value, name)

    def flag(self, value: Any, name: str) -> bool | None:
        return _v.flag(value, name)

    def count(self, value: Any, name: str) -> int | None:
        return _v.count(value, name)

    def lower(self, value: Any, name: str) -> str | None:
        """An enum (``PAID``) as REST's lower-case word (``paid``)."""
        text = _v.text(value, name)
        return text.lower() if text is not None else None

    def money(self, value: Any, name: str) -> str | None:
        """A money bag's shop amount as REST writes it: at least two decimals (``"1899.0"`` → ``"1899.00"``)."""
        amount = at(value, "shopMoney.amount")
        if amount is None:
            return None
        try:
            number = Decimal(_v.text(amount, f"{name}.shopMoney.amount") or "")
        except InvalidOperation:
            raise BadResponse(f"{name}.shopMoney.amount is not a decimal: {amount!r}", source=SOURCE) from None
        if not number.is_finite():
            raise BadResponse(f"{name}.shopMoney.amount: {amount!r} is not a finite number", source=SOURCE)
        exponent = number.as_tuple().exponent
        return f"{number:.2f}" if isinstance(exponent, int) and exponent > -2 else str(number)

    def time(self, value: Any, name: str) -> str | None:
        """A UTC date-time as REST writes it: in the shop's time zone, to the second."""
        text = _v.text(value, name)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise BadResponse(f"{name} is not a date-time: {text!r}", source=SOURCE) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone).isoformat(timespec="seconds")

    def tags(self, value: Any, name: str) -> str | None:
        """GraphQL's list of tags as REST's comma-separated text."""
        tags = _v.list(value, name)
        return ", ".join(str(tag) for tag in tags) if tags is not None else None

    def fulfillment_status(self, value: Any, name: str) -> str | None:
        """REST's ``fulfillment_status``: fulfilled, partial or restocked; null for every state in which
        nothing is fulfilled yet (GraphQL's unfulfilled, open, in progress, on hold, scheduled …)."""
        return FULFILLMENT_STATUSES.get(_v.text(value, name) or "")

    def landing_site(self, value: Any, name: str) -> str | None:
        """GraphQL's absolute landing page as REST's landing site: its path, query and fragment."""
        text = _v.text(value, name)
        if not text:
            return text
        parts = urlsplit(text)
        if not parts.scheme:
            return text
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))


def gid(kind: str) -> Callable[[Reader, Any, str], int | None]:
    """A reader of a ``gid://shopify/<kind>/<n>`` global id as REST's numeric id ``n``."""

    def read(_: Reader, value: Any, name: str) -> int | None:
        text = _v.text(value, name)
        if text is None:
            return None
        match = _GID.match(text)
        if match is None or match.group(1) != kind:
            raise BadResponse(f"{name} is not a gid://shopify/{kind}/ id: {text[:80]!r}", source=SOURCE)
        return int(match.group(2))

    return read


FULFILLMENT_STATUSES = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial", "RESTOCKED": "restocked"}

Field = tuple[str, str, Callable[[Reader, Any, str], Any]]

# (REST field, GraphQL path, reader): the fields of ORDERS_QUERY, in REST's names.
ORDER_FIELDS: tuple[Field, ...] = (
    ("id", "id", gid("Order")),
    ("admin_graphql_api_id", "id", Reader.text),
    ("name", "name", Reader.text),
    # Order.number is REST's order_number (1001 for a shop's first order), not REST's number.
    ("order_number", "number", Reader.count),
    ("email", "email", Reader.text),
    ("created_at", "createdAt", Reader.time),
    ("updated_at", "updatedAt", Reader.time),
    ("processed_at", "processedAt", Reader.time),
    ("closed_at", "closedAt", Reader.time),
    ("cancelled_at", "cancelledAt", Reader.time),
    ("cancel_reason", "cancelReason", Reader.lower),
    ("confirmed", "confirmed", Reader.flag),
    ("test", "test", Reader.flag),
    ("currency", "currencyCode", Reader.text),
    ("presentment_currency", "presentmentCurrencyCode", Reader.text),
    ("subtotal_price", "subtotalPriceSet", Reader.money),
    ("total_discounts", "totalDiscountsSet", Reader.money),
    ("total_tax", "totalTaxSet", Reader.money),
    ("total_price", "totalPriceSet", Reader.money),
    ("taxes_included", "taxesIncluded", Reader.flag),
    ("financial_status", "displayFinancialStatus", Reader.lower),
    ("fulfillment_status", "displayFulfillmentStatus", Reader.fulfillment_status),
    ("landing_site", "customerJourneySummary.firstVisit.landingPage", Reader.landing_site),
    ("referring_site", "customerJourneySummary.firstVisit.referrerUrl", Reader.text),
    ("source_name", "sourceName", Reader.text),
    ("tags", "tags", Reader.tags),
    ("note", "note", Reader.text),
)

LINE_ITEM_FIELDS: tuple[Field, ...] = (
    ("id", "id", gid("LineItem")),
    ("admin_graphql_api_id", "id", Reader.text),
    ("title", "title", Reader.text),
    ("name", "name", Reader.text),
    ("variant_title", "variantTitle", Reader.text),
    ("vendor", "vendor", Reader.text),
    ("quantity", "quantity", Reader.count),
    ("price", "originalUnitPriceSet", Reader.money),
    ("sku", "sku", Reader.text),
    ("product_id", "product.id", gid("Product")),
    ("variant_id", "variant.id", gid("ProductVariant")),
    ("requires_shipping", "requiresShipping", Reader.flag),
    ("taxable", "taxable", Reader.flag),
    ("gift_card", "isGiftCard", Reader.flag),
)

FULFILLMENT_FIELDS: tuple[Field, ...] = (
    ("id", "id", gid("Fulfillment")),
    ("admin_graphql_api_id", "id", Reader.text),
    ("name", "name", Reader.text),
    ("status", "status", Reader.lower),
    ("tracking_company", "trackingInfo.0.company", Reader.text),
    ("tracking_number", "trackingInfo.0.number", Reader.text),
    ("created_at", "createdAt", Reader.time),
    ("updated_at", "updatedAt", Reader.time),
)


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"{name} is not an object: {type(value).__name__}", source=SOURCE)
    return value


def _fields(node: Any, fields: tuple[Field, ...], reader: Reader, name: str) -> dict[str, Any]:
    node = _object(node, name)
    return {rest: read(reader, at(node, path), f"{name}.{path}") for rest, path, read in fields}


@dataclass(frozen=True, slots=True)
class Connection:
    """A page of a connection: its nodes and the cursor after them (None on the last page)."""

    nodes: list[Any]
    end_cursor: str | None


def connection(value: Any, name: str) -> Connection:
    value = _object(value, name)
    nodes = _v.list(value.get("nodes"), f"{name}.nodes")
    if nodes is None:
        raise BadResponse(f"{name} has no nodes", source=SOURCE)
    more = _v.flag(at(value, "pageInfo.hasNextPage"), f"{name}.pageInfo.hasNextPage")
    end = _v.text(at(value, "pageInfo.endCursor"), f"{name}.pageInfo.endCursor")
    if more and not end:
        raise BadResponse(f"{name} has a next page but no endCursor", source=SOURCE)
    return Connection(nodes, end if more else None)


def rest_line_items(nodes: list[Any], reader: Reader) -> list[dict[str, Any]]:
    return [_fields(node, LINE_ITEM_FIELDS, reader, "lineItems") for node in nodes]


def rest_order(node: Any, reader: Reader) -> tuple[dict[str, Any], str | None]:
    """One order node in the REST order's field names (the fields ORDERS_QUERY asks for), and the
    cursor of its further line items (None when the node holds them all)."""
    order = _fields(node, ORDER_FIELDS, reader, "order")
    if order["id"] is None:
        raise BadResponse("an order has no id", source=SOURCE)
    items = connection(at(node, "lineItems"), "order.lineItems")
    order["line_items"] = rest_line_items(items.nodes, reader)
    fulfillments = _v.list(at(node, "fulfillments"), "order.fulfillments") or []
    order["fulfillments"] = [
        {**_fields(entry, FULFILLMENT_FIELDS, reader, "fulfillments"), "order_id": order["id"]}
        for entry in fulfillments
    ]
    return order, items.end_cursor


@dataclass(frozen=True, slots=True)
class Throttle:
    """``extensions.cost``: what a query asked for and what the app's bucket holds for this store."""

    requested: float
    available: float
    restore_rate: float

    @classmethod
    def read(cls, payload: dict[str, Any]) -> Throttle | None:
        cost = at(payload, "extensions.cost")
        numbers = [
            _v.number(at(cost, path), f"extensions.cost.{path}")
            for path in ("requestedQueryCost", "throttleStatus.currentlyAvailable", "throttleStatus.restoreRate")
        ]
        if any(number is None for number in numbers):
            return None
        requested, available, rate = (float(number) for number in numbers)  # type: ignore[arg-type]
        return cls(requested, available, rate)

    def wait(self) -> float:
        """Seconds until the bucket holds another query like this one; 0 when it does already."""
        if self.available >= self.requested:
            return 0.0
        if self.restore_rate <= 0:
            return math.inf
        return (self.requested - self.available) / self.restore_rate


def pause(throttle: Throttle | None) -> float | None:
    """The wait a throttle status asks for, bounded; None without a usable status."""
    return wait_seconds(throttle.wait()) if throttle is not None else None


# A GraphQL error code (extensions.code) as the typed error it is; any other is a BadResponse.
ERROR_CODES: dict[str, type[ProviderError]] = {
    "THROTTLED": QuotaExceeded,
    # The token lacks the read_orders scope (or the protected customer data the landing page is):
    # only the store's owner can grant it, as with a revoked token.
    "ACCESS_DENIED": AuthExpired,
    "INTERNAL_SERVER_ERROR": ProviderUnavailable,
}


def raise_for_errors(payload: dict[str, Any], what: str) -> None:
    """The typed error of an answer with ``errors``; nothing for an answer without."""
    errors = payload.get("errors")
    if not errors:
        return
    if not isinstance(errors, list):
        raise BadResponse(f"{what}: {str(errors)[:200]}", source=SOURCE)
    codes = [code for code in (at(error, "extensions.code") for error in errors) if isinstance(code, str)]
    code = next((code for code in codes if code in ERROR_CODES), codes[0] if codes else "errors")
    message = f"{what} answered {code}: " + "; ".join(str(at(error, "message")) for error in errors)[:200]
    if code == "THROTTLED":
        raise QuotaExceeded(message, source=SOURCE, retry_after=pause(Throttle.read(payload)))
    raise ERROR_CODES.get(code, BadResponse)(message, source=SOURCE)


@dataclass(slots=True)
class OrdersAnswer:
    """An ``orders`` answer: the orders in REST's field names, where line items are still to come
    (position → line items cursor), the next page's cursor and the bucket's state."""

    orders: list[dict[str, Any]]
    more_line_items: dict[int, str]
    next_cursor: str | None
    throttle: Throttle | None
    reader: Reader


def parse_orders_answer(payload: Any, what: str = "orders") -> OrdersAnswer:
    payload = _v.require_object(payload)
    raise_for_errors(payload, what)
    data = _object(payload.get("data"), "data")
    reader = Reader(shop_zone(at(data, "shop.ianaTimezone")))
    orders = connection(data.get("orders"), "orders")
    parsed = [rest_order(node, reader) for node in orders.nodes]
    return OrdersAnswer(
        orders=[order for order, _ in parsed],
        more_line_items={position: cursor for position, (_, cursor) in enumerate(parsed) if cursor},
        next_cursor=orders.end_cursor,
        throttle=Throttle.read(payload),
        reader=reader,
    )


def parse_line_items_answer(
    payload: Any, reader: Reader, what: str = "order"
) -> tuple[list[dict[str, Any]], str | None, Throttle | None]:
    """An ``order { lineItems }`` answer: the line items in REST's names, the next cursor, the bucket."""
    payload = _v.require_object(payload)
    raise_for_errors(payload, what)
    items = connection(at(payload, "data.order.lineItems"), "order.lineItems")
    return rest_line_items(items.nodes, reader), items.end_cursor, Throttle.read(payload)


# Client


class ShopifyGraphqlClient:
    """Orders through the GraphQL Admin API."""

    def __init__(self, http: ProviderHttp, version: str) -> None:
        self._http = http
        self._path = admin_path(version, "graphql.json")
        self._watch = VersionWatch(version)

    async def _query(
        self, store: str, query: str, variables: dict[str, Any], *, credential: Credential, request_id: str | None
    ) -> tuple[dict[str, Any], str]:
        response = await self._http.request(
            SOURCE,
            "POST",
            self._path,
            credential=credential,
            json={"query": query, "variables": variables},
            request_id=request_id,
            host_vars={"store": store},
        )
        what = f"POST {self._path} of {store}"
        payload = admin_answer(response, store, what)
        self._watch.check(response)
        return payload, what

    async def orders(
        self,
        store: str,
        limit: int,
        filters: dict[str, str],
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> OrdersPage:
        """One page of the store's orders, newest first, every status; ``cursor`` = the last page's endCursor.

        A page holds at most ORDERS_PER_QUERY orders whatever ``limit`` says, so that the query stays
        within Shopify's cost limit. Every page carries the filters again: a GraphQL cursor marks a
        position, not a search.
        """
        variables = {
            "first": min(limit, ORDERS_PER_QUERY),
            "after": cursor,
            "query": search_query(checked_filters(store, filters)),
            "lineItems": LINE_ITEMS,
        }
        payload, what = await self._query(store, ORDERS_QUERY, variables, credential=credential, request_id=request_id)
        answer = parse_orders_answer(payload, what)
        throttle = answer.throttle
        for position, after in answer.more_line_items.items():
            throttle = await self._rest_of_line_items(
                store, answer, position, after, throttle, credential=credential, request_id=request_id
            )
        return OrdersPage(
            items=[parse_order(order, store) for order in answer.orders],
            next_cursor=answer.next_cursor,
            wait=pause(throttle) or 0.0,
        )

    async def _rest_of_line_items(
        self,
        store: str,
        answer: OrdersAnswer,
        position: int,
        after: str | None,
        throttle: Throttle | None,
        *,
        credential: Credential,
        request_id: str | None,
    ) -> Throttle | None:
        order = answer.orders[position]
        while after:
            # The flow paces whole pages; between the calls of one page only the bucket's state can.
            await asyncio.sleep(pause(throttle) or 0.0)
            variables = {"id": order["admin_graphql_api_id"], "first": MORE_LINE_ITEMS, "after": after}
            payload, what = await self._query(
                store, ORDER_LINE_ITEMS_QUERY, variables, credential=credential, request_id=request_id
            )
            items, after, throttle = parse_line_items_answer(payload, answer.reader, what)
            order["line_items"].extend(items)
        return throttle
