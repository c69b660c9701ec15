"""Shopify's Admin API orders: what the GraphQL and REST paths share, and the REST client.

Shopify's REST Admin API is legacy since October 1, 2024; the GraphQL Admin API
(``providers/shopify/shopify_graphql.py``) is how Beat lists orders unless ``BEAT_SHOPIFY_API=rest``
keeps a shop on an older private app on REST. Both speak the same version
(``BEAT_SHOPIFY_API_VERSION``) and produce the same ``Order``: the GraphQL parser maps each
order onto the REST order's field names, and ``parse_order`` reads the legacy dimensions from it.

The host is the store's own domain (``https://{store}``), and the credential's secrets are
the request headers (``X-Shopify-Access-Token``), as the legacy engine sent them. Shopify answers
a request for a retired version with the oldest version it still serves and says which in
``X-Shopify-API-Version``; ``VersionWatch`` turns that silent change into a warning.

REST pages by cursor: a ``Link`` header names the next page's URL, whose ``page_info`` is the
only thing taken from it, so no host a header names is ever called. A request carrying
``page_info`` may carry nothing but ``limit`` (Shopify answers 400 to any filter beside it: the
cursor already holds the first request's filters). Errors answer ``{"errors": "..."}`` or
``{"errors": {"field": "..."}}``; GraphQL's answer a list of ``{"message": ...}``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx

from providers.drift import observe
from providers.errors import AuthExpired, BadResponse, DefinitiveProviderError, InputRejected
from providers.http import Credential, ProviderHttp
from providers.paging import Page
from providers.parsing import Values, at
from topics.models import Order, Platform
from topics.params import is_shop_domain

log = logging.getLogger(__name__)

SOURCE = "shopify"
# The optional filters of the first page (legacy §2.5 parameter names, which are Shopify's REST ones).
FILTERS = ("updated_at_min", "created_at_min", "created_at_max")
UTM_PREFIX = "utm_"
# Seconds between REST pages: the REST bucket refills at two calls a second per store, and a
# store's other apps draw on the same bucket.
REST_PAGE_WAIT = 0.5

_LINK = re.compile(r"<([^>]*)>\s*((?:;[^,;]*)*)")
_REL = re.compile(r";\s*rel\s*=\s*\"?([^\";]*)\"?", re.IGNORECASE)

_v = Values(SOURCE)


class StoreMissing(DefinitiveProviderError):
    """The store's domain is not a Shopify store (404): no other credential or source can fix that."""


class InvalidFilter(DefinitiveProviderError):
    """A date filter that is not an ISO 8601 date or time: Shopify would refuse it, so it is never sent."""


@dataclass(slots=True)
class OrdersPage(Page):
    """A page of orders, and the seconds the store's API budget asks before the next page."""

    wait: float = 0.0


def admin_path(version: str, resource: str) -> str:
    """``/admin/api/{version}/{resource}``: every Admin API endpoint names its version in the path."""
    return f"/admin/api/{version}/{resource}"


def checked_filters(store: str, filters: dict[str, str]) -> dict[str, str]:
    """The filters that are set, once the store and the filters are known to be safe to send."""
    if not is_shop_domain(store):
        raise ValueError(f"not a bare shop domain: {store!r}")
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise ValueError(f"unknown order filters {sorted(unknown)}; known: {', '.join(FILTERS)}")
    given = {name: value for name, value in filters.items() if value}
    for name, value in given.items():
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise InvalidFilter(f"{name} is not an ISO 8601 date or time: {value[:60]!r}", source=SOURCE) from None
    return given


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
            params.setdefault(name[len(UTM_PREFIX) :], value)
    return params


def next_page_info(link_header: str | None) -> str | None:
    """The ``page_info`` of the ``rel="next"`` link of a ``Link`` header; None on the last page."""
    if not link_header:
        return None
    for url, attributes in _LINK.findall(link_header):
        rels = {rel.lower() for match in _REL.findall(attributes) for rel in match.split()}
        if "next" not in rels:
            continue
        values: list[str] | None = parse_qs(urlsplit(url).query).get("page_info")
        if not values:
            raise BadResponse(f"the next-page link has no page_info: {url[:200]!r}", source=SOURCE)
        return values[0]
    return None


def parse_order(order: Any, store: str) -> Order:
    """One order in the REST order's field names, with the legacy order dimensions (legacy §4.2)."""
    if not isinstance(order, dict):
        raise BadResponse(f"an order is not an object: {type(order).__name__}", source=SOURCE)
    order_id = _v.id(order.get("id"), "order.id")
    if order_id is None:
        raise BadResponse("an order has no id", source=SOURCE)
    _v.list(order.get("fulfillments"), "fulfillments")
    _v.list(order.get("line_items"), "line_items")
    landing_site = _v.text(order.get("landing_site"), "landing_site")
    return Order(
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


def parse_orders_page(payload: Any, store: str) -> list[Order]:
    """An ``orders.json`` answer: ``{"orders": [...]}``, empty for a store without (matching) orders."""
    payload = _v.require_object(payload)
    orders = payload.get("orders")
    if not isinstance(orders, list):
        raise BadResponse("answer has no orders list", source=SOURCE)
    return [parse_order(order, store) for order in orders]


def error_message(body: str) -> str:
    """Shopify's ``errors`` (a sentence, a message per parameter, or GraphQL's list of errors), short
    enough for an error message."""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        return body[:200]
    if isinstance(errors, str):
        return errors[:200]
    if isinstance(errors, dict):
        return "; ".join(f"{name}: {message}" for name, message in errors.items())[:200]
    if isinstance(errors, list):
        return "; ".join(str(error.get("message")) if isinstance(error, dict) else str(error) for error in errors)[:200]
    return body[:200]


# Client


def admin_answer(response: httpx.Response, store: str, what: str) -> dict[str, Any]:
    """The JSON object of a 200; the typed error of any other status (ProviderHttp raised for 429 and 5xx)."""
    status = response.status_code
    if status in (401, 403):
        # 401: the token is unknown or revoked; 403: the app lost the read_orders scope. Either way
        # the store's owner has to grant a fresh token.
        raise AuthExpired(f"{what} answered {status}: {error_message(response.text)}", source=SOURCE)
    if status == 404:
        raise StoreMissing(
            f"no Shopify store at {store} ({what} answered 404: {error_message(response.text)})", source=SOURCE
        )
    if status != 200:
        raise InputRejected(f"{what} answered {status}: {error_message(response.text)}", source=SOURCE)
    try:
        payload = _v.require_object(response.json())
    except ValueError as exc:
        raise BadResponse(f"{what} answered with a body that is not JSON", source=SOURCE) from exc
    observe(SOURCE, payload)
    return payload


class VersionWatch:
    """Warns, once per version a client asked for, when Shopify answered with another one: a retired
    version silently falls forward to the oldest supported one, whose answers may differ."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._warned: set[str] = set()

    def check(self, response: httpx.Response) -> None:
        served = response.headers.get("x-shopify-api-version")
        if served and served != self.version and served not in self._warned:
            self._warned.add(served)
            log.warning(
                "Shopify answered API version %s to a request for %s, which it no longer serves: "
                "set BEAT_SHOPIFY_API_VERSION to a supported version",
                served,
                self.version,
            )


class ShopifyRestClient:
    """Orders through the REST Admin API (legacy), for shops whose app cannot use GraphQL."""

    def __init__(self, http: ProviderHttp, version: str) -> None:
        self._http = http
        self._path = admin_path(version, "orders.json")
        self._watch = VersionWatch(version)

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
        """One page of the store's orders, newest first, every status; ``cursor`` = a page_info."""
        given = checked_filters(store, filters)
        params: dict[str, str | int]
        params = {"limit": limit, "page_info": cursor} if cursor else {"status": "any", "limit": limit, **given}
        response = await self._http.request(
            SOURCE,
            "GET",
            self._path,
            credential=credential,
            params=params,
            request_id=request_id,
            host_vars={"store": store},
        )
        payload = admin_answer(response, store, f"GET {self._path} of {store}")
        self._watch.check(response)
        return OrdersPage(
            items=parse_orders_page(payload, store),
            next_cursor=next_page_info(response.headers.get("link")),
            wait=REST_PAGE_WAIT,
        )
