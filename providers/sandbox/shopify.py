"""Shopify's REST Admin API (legacy) in the sandbox: a store's orders, paged by cursor.

The real host is the store's domain; here the store is the first path step
(``/shopify/{store}/admin/api/2026-10/orders.json``); the stores, their orders and the versions
are ``shopify_store.py``'s, and the GraphQL Admin API at ``.../graphql.json`` is ``shopify_graphql.py``.

Orders come newest first. ``status`` defaults to ``open`` as on Shopify (``any``, ``closed``,
``cancelled``), and ``created_at_min``/``created_at_max``/``updated_at_min`` filter. Further
pages are Shopify's cursor pagination: a ``Link`` header with ``rel="previous"``/``rel="next"``
URLs on the real host form ``https://{store}/...`` carrying an opaque ``page_info`` that holds
the first request's filters, and a request with ``page_info`` may carry only ``limit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.shopify_graphql import graphql
from providers.sandbox.shopify_store import (
    VERSION_HEADER,
    Store,
    admitted,
    decode_state,
    encode_state,
    moment,
    order,
)

PREFIX = "/shopify"
DEFAULT_LIMIT = 50
MAX_LIMIT = 250
STATUSES = ("open", "closed", "cancelled", "any")
DATE_FILTERS = ("created_at_min", "created_at_max", "updated_at_min")
# What a page_info request may carry besides page_info (Shopify: limit and fields).
PAGE_INFO_COMPANIONS = frozenset({"page_info", "limit", "fields"})
PAGINATION_GUIDE = "https://shopify.dev/api/usage/pagination-rest"


# Filters


@dataclass(frozen=True, slots=True)
class Filters:
    """A listing's filters: the status and the date bounds as asked (``dates``) and as read (``bounds``)."""

    status: str
    dates: dict[str, str]
    bounds: dict[str, datetime]

    @classmethod
    def read(cls, status: str, dates: dict[str, str]) -> Filters | str:
        """The filters, or the name of the first one that is not valid."""
        if status not in STATUSES:
            return "status"
        bounds = {}
        for name, text in dates.items():
            if name not in DATE_FILTERS or (bound := moment(text)) is None:
                return name
            bounds[name] = bound
        return cls(status, dates, bounds)

    def admits(self, entry: dict[str, Any]) -> bool:
        if self.status == "open" and (entry["closed_at"] or entry["cancelled_at"]):
            return False
        if self.status == "closed" and not entry["closed_at"]:
            return False
        if self.status == "cancelled" and not entry["cancelled_at"]:
            return False
        for name, bound in self.bounds.items():
            value = datetime.fromisoformat(entry["created_at" if name.startswith("created") else "updated_at"])
            if (value < bound) if name.endswith("_min") else (value > bound):
                return False
        return True


def _decode(page_info: str, store: Store) -> tuple[Filters, str, int] | None:
    """The filters, direction and boundary order id a page_info of this store holds; None for any other text."""
    state = decode_state(page_info)
    if state is None or state.get("store") != store.domain:
        return None
    direction, boundary, dates = state.get("direction"), state.get("id"), state.get("dates")
    if direction not in ("next", "prev") or not isinstance(boundary, int) or not isinstance(dates, dict):
        return None
    filters = Filters.read(str(state.get("status")), {str(k): str(v) for k, v in dates.items()})
    return (filters, direction, boundary) if isinstance(filters, Filters) else None


def _invalid(name: str, message: str = "Invalid value.") -> JSONResponse:
    return JSONResponse({"errors": {name: message}}, status_code=400)


def _link(
    store: Store, path: str, filters: Filters, limit: int, page: list[dict[str, Any]], matching: list[dict[str, Any]]
) -> str | None:
    """The ``Link`` header of a page: the pages before and after it, if any."""
    if not page:
        return None
    links = []
    base = {"store": store.domain, "status": filters.status, "dates": filters.dates}
    if any(entry["id"] > page[0]["id"] for entry in matching):
        links.append((encode_state({**base, "direction": "prev", "id": page[0]["id"]}), "previous"))
    if any(entry["id"] < page[-1]["id"] for entry in matching):
        links.append((encode_state({**base, "direction": "next", "id": page[-1]["id"]}), "next"))
    # The real host form: a client has to take page_info from it, never the host.
    return (
        ", ".join(
            f'<https://{store.domain}{path}?{urlencode({"limit": limit, "page_info": info})}>; rel="{rel}"'
            for info, rel in links
        )
        or None
    )


class ShopifyRoutes:
    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/{store}/admin/api/{version}/orders.json", self.orders),
                Route("/{store}/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
            ],
        )

    async def orders(self, request: Request) -> JSONResponse:
        checked = admitted(request)
        if isinstance(checked, JSONResponse):
            return checked
        store, version = checked
        query = request.query_params
        limit_text = query.get("limit", str(DEFAULT_LIMIT))
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            return _invalid("limit")
        limit = int(limit_text)

        if (page_info := query.get("page_info")) is not None:
            for name in query:
                if name not in PAGE_INFO_COMPANIONS:
                    return _invalid(
                        name,
                        f"{name} cannot be passed when page_info is present. "
                        f"See {PAGINATION_GUIDE} for more information.",
                    )
            resumed = _decode(page_info, store)
            if resumed is None:
                return _invalid("page_info")
            filters, direction, boundary = resumed
        else:
            read = Filters.read(query.get("status", "open"), {n: query[n] for n in DATE_FILTERS if n in query})
            if isinstance(read, str):
                return _invalid(read)
            filters, direction, boundary = read, "next", None

        # Newest first, like Shopify's default order.
        listed = (order(store, position) for position in reversed(range(store.orders)))
        matching = [entry for entry in listed if filters.admits(entry)]
        if boundary is None:
            page = matching[:limit]
        elif direction == "next":
            page = [entry for entry in matching if entry["id"] < boundary][:limit]
        else:
            page = [entry for entry in matching if entry["id"] > boundary][-limit:]
        headers = {VERSION_HEADER: version}
        if link := _link(
            store, request.url.path.removeprefix(f"{PREFIX}/{store.domain}"), filters, limit, page, matching
        ):
            headers["Link"] = link
        return JSONResponse({"orders": page}, headers=headers)
