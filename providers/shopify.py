"""Shopify's Admin REST API (2023-04): pure parsers of the orders listing, and the client.

The host is the store's own domain (``https://{store}``), and the credential's secrets are
the request headers (``X-Shopify-Access-Token``), as the legacy engine sent them. The legacy
engine read one page; Shopify pages by cursor: a ``Link`` header names the next page's URL,
whose ``page_info`` is the only thing taken from it, so no host a header names is ever called.
A request carrying ``page_info`` may carry nothing but ``limit`` (Shopify answers 400 to any
filter beside it: the cursor already holds the first request's filters).

Errors answer ``{"errors": "..."}`` or ``{"errors": {"field": "..."}}``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx

from providers.errors import AuthExpired, BadResponse, DefinitiveProviderError, InputRejected
from providers.http import Credential, ProviderHttp
from providers.models import OrderData, Page
from providers.parsing import Values, at
from topics.models import Platform

SOURCE = "shopify"
API_VERSION = "2023-04"
ORDERS_PATH = f"/admin/api/{API_VERSION}/orders.json"
# The optional filters of the first page (legacy §2.5 parameter names, which are Shopify's own).
FILTERS = ("updated_at_min", "created_at_min", "created_at_max")
UTM_PREFIX = "utm_"

# A bare host name: it becomes the host of the URL, so a scheme, path, port or userinfo
# in it would send the store's token somewhere else.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SHOP_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
MAX_DOMAIN_LENGTH = 253  # DNS

_LINK = re.compile(r"<([^>]*)>\s*((?:;[^,;]*)*)")
_REL = re.compile(r";\s*rel\s*=\s*\"?([^\";]*)\"?", re.IGNORECASE)

_v = Values(SOURCE)


class StoreMissing(DefinitiveProviderError):
    """The store's domain is not a Shopify store (404): no other credential or source can fix that."""


def is_shop_domain(store: str) -> bool:
    return len(store) <= MAX_DOMAIN_LENGTH and SHOP_DOMAIN.fullmatch(store) is not None


# Parsers

def utm_params(landing_site: str | None) -> dict[str, str]:
    """The ``utm_*`` query parameters of a landing site, without the prefix (legacy §11.3).

    Shopify records the landing site as the buyer's first URL on the store, usually relative
    (``/products/x?utm_source=ig``). A parameter given twice keeps its first value.
    """
    if not landing_site:
        return {}
    params: dict[str, str] = {}
    for name, value in parse_qsl(urlsplit(landing_site).query):
        if name.startswith(UTM_PREFIX) and len(name) > len(UTM_PREFIX):
            params.setdefault(name[len(UTM_PREFIX):], value)
    return params


def next_page_info(link_header: str | None) -> str | None:
    """The ``page_info`` of the ``rel="next"`` link of a ``Link`` header; None on the last page."""
    if not link_header:
        return None
    for url, attributes in _LINK.findall(link_header):
        rels = {rel.lower() for match in _REL.findall(attributes) for rel in match.split()}
        if "next" not in rels:
            continue
        values = parse_qs(urlsplit(url).query).get("page_info")
        if not values:
            raise BadResponse(f"the next-page link has no page_info: {url[:200]!r}", source=SOURCE)
        return values[0]
    return None


def parse_order(order: Any, store: str) -> OrderData:
    """One order of an orders listing, with the legacy order dimensions (legacy §4.2)."""
    if not isinstance(order, dict):
        raise BadResponse(f"an order is not an object: {type(order).__name__}", source=SOURCE)
    order_id = _v.id(order.get("id"), "order.id")
    if order_id is None:
        raise BadResponse("an order has no id", source=SOURCE)
    _v.list(order.get("fulfillments"), "fulfillments")
    _v.list(order.get("line_items"), "line_items")
    landing_site = _v.text(order.get("landing_site"), "landing_site")
    return OrderData(
        platform=Platform.SHOPIFY,
        source=SOURCE,
        platform_order_id=order_id,
        store=store,
        dimensions={
            "platform_order_id": order_id,
            "name": _v.text(order.get("name"), "name"),
            "status": _v.text(at(order, "fulfillments.0.status"), "fulfillments.0.status"),
            "landing_site": landing_site,
            "store_name": _v.text(at(order, "line_items.0.vendor"), "line_items.0.vendor"),
            # JSON text, as the legacy events and the "order".utm_params column carry it.
            "utm_params": json.dumps(utm_params(landing_site)),
            "order_data": order,
            "platform": Platform.SHOPIFY.value,
            "store": store,
        },
    )


def parse_orders_page(payload: Any, store: str) -> list[OrderData]:
    """An ``orders.json`` answer: ``{"orders": [...]}``, empty for a store without (matching) orders."""
    payload = _v.require_object(payload)
    orders = payload.get("orders")
    if not isinstance(orders, list):
        raise BadResponse("answer has no orders list", source=SOURCE)
    return [parse_order(order, store) for order in orders]


def error_message(body: str) -> str:
    """Shopify's ``errors`` (a sentence, or a message per parameter), short enough for an error message."""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        return body[:200]
    if isinstance(errors, str):
        return errors[:200]
    if isinstance(errors, dict):
        return "; ".join(f"{name}: {message}" for name, message in errors.items())[:200]
    return body[:200]


# Client

def _orders_answer(response: httpx.Response, store: str) -> dict[str, Any]:
    """The JSON object of a 200; the typed error of any other status (ProviderHttp raised for 429 and 5xx)."""
    status = response.status_code
    what = f"GET {ORDERS_PATH} of {store}"
    if status in (401, 403):
        # 401: the token is unknown or revoked; 403: the app lost the read_orders scope. Either way
        # the store's owner has to grant a fresh token.
        raise AuthExpired(f"{what} answered {status}: {error_message(response.text)}", source=SOURCE)
    if status == 404:
        raise StoreMissing(f"no Shopify store at {store} ({what} answered 404: {error_message(response.text)})",
                           source=SOURCE)
    if status != 200:
        raise InputRejected(f"{what} answered {status}: {error_message(response.text)}", source=SOURCE)
    try:
        return _v.require_object(response.json())
    except ValueError as exc:
        raise BadResponse(f"{what} answered with a body that is not JSON", source=SOURCE) from exc


class ShopifyClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def orders(self, store: str, limit: int, filters: dict[str, str], cursor: str | None = None, *,
                     credential: Credential, request_id: str | None = None) -> Page:
        """One page of the store's orders, newest first, every status; ``cursor`` = a page_info."""
        if not is_shop_domain(store):
            raise ValueError(f"not a bare shop domain: {store!r}")
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown order filters {sorted(unknown)}; known: {', '.join(FILTERS)}")
        params: dict[str, str | int]
        if cursor:
            params = {"limit": limit, "page_info": cursor}
        else:
            params = {"status": "any", "limit": limit, **{name: value for name, value in filters.items() if value}}
        response = await self._http.request(SOURCE, "GET", ORDERS_PATH, credential=credential, params=params,
                                            request_id=request_id, host_vars={"store": store})
        payload = _orders_answer(response, store)
        return Page(items=parse_orders_page(payload, store), next_cursor=next_page_info(response.headers.get("link")))
