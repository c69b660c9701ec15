"""Shopify's GraphQL Admin API in the sandbox: the orders query, and an order's further line items.

``POST /shopify/{store}/admin/api/{version}/graphql.json`` with ``{"query", "variables"}``, the
stores, orders and versions of ``shopify_store.py``. The sandbox does not execute GraphQL: it
knows Beat's two operations by their root field (``orders(`` or ``order(``), reads their variables
and answers every field those operations select, in the shapes of Shopify's reference: global ids
(``gid://shopify/Order/<REST id>``), money bags whose amounts are decimals of any precision
(``"1899.0"``), upper-case enums, UTC date-times, the landing page as an absolute URL, and line
items as a connection of their own. Cursors are opaque and mark a position only: every page
carries its search again, as on Shopify.

Each answer prices itself as Shopify does (objects 1, connections 2 plus ``first`` times a node,
scalars 0) in ``extensions.cost``, refuses a query over 1,000 points (``MAX_COST_EXCEEDED``), and
draws on a bucket of 2,000 points restoring 100 a second. Every store's bucket is full, except a
store whose first label starts with ``throttled-``: its bucket holds 40 points, so any orders
query answers ``THROTTLED``. A store whose first label starts with ``denied-`` has a token without
``read_orders``: ``ACCESS_DENIED``. The search reads ``created_at`` and ``updated_at`` terms with
``>=``, ``<=``, ``>`` or ``<`` and a quoted date (Shopify's syntax wants dates quoted); the sandbox
refuses any other term, where Shopify would only warn, so that a mistyped filter cannot pass unseen.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from providers.sandbox.shopify_store import (
    VERSION_HEADER,
    Store,
    admitted,
    decode_state,
    encode_state,
    moment,
    order,
)

SHOP_ZONE = "Asia/Kolkata"  # the sandbox stores' +05:30
MAX_FIRST = 250
MAX_QUERY_COST = 1000
MAXIMUM_AVAILABLE = 2000.0
RESTORE_RATE = 100.0
THROTTLED_AVAILABLE = 40.0
RATE_LIMITS_GUIDE = "https://shopify.dev/api/usage/rate-limits"
# Cancelled orders with nothing fulfilled answer FULFILLMENT_NOT_REQUIRED from 2026-10 on, UNFULFILLED before.
NOT_REQUIRED_SINCE = "2026-10"

# Costs of the fields Beat's operations select: an order's own objects (itself, four money bags, the
# journey and its first visit, the line items connection and its pageInfo), a fulfillment with its
# tracking, a line item with its product, variant and price bag.
ORDER_OBJECTS = 1 + 4 * 2 + 2 + 3
FULFILLMENT_COST = 2
LINE_ITEM_COST = 5

_FULFILLMENTS_FIRST = re.compile(r"fulfillments\(first:\s*(\d+)\)")
_TERM = re.compile(r"\s*(?:AND\s+)?(\w+):(>=|<=|>|<)?(?:'([^']*)'|\"([^\"]*)\"|(\S+))")
_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_DATE_FIELDS = ("created_at", "updated_at")


def _gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def _utc(text: str | None) -> str | None:
    if text is None:
        return None
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(text: str) -> str:
    """A REST amount (``"1899.00"``) the way GraphQL may serialize it: its shortest form (``"1899.0"``)."""
    shortest = format(Decimal(text).normalize(), "f")
    return shortest if "." in shortest else f"{shortest}.0"


def _bag(amount: str, currency: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": _decimal(amount), "currencyCode": currency}}


def _upper(text: str | None) -> str | None:
    return text.upper() if text is not None else None


def _error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def _errors(*errors: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"errors": list(errors)})


# The REST order as a GraphQL node


def _line_item(item: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "id": _gid("LineItem", item["id"]),
        "title": item["title"],
        "name": item["name"],
        "variantTitle": item["variant_title"],
        "vendor": item["vendor"],
        "quantity": item["quantity"],
        "sku": item["sku"],
        "requiresShipping": item["requires_shipping"],
        "taxable": item["taxable"],
        "isGiftCard": item["gift_card"],
        "product": {"id": _gid("Product", item["product_id"])},
        "variant": {"id": _gid("ProductVariant", item["variant_id"])},
        "originalUnitPriceSet": _bag(item["price"], currency),
    }


def _fulfillment(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _gid("Fulfillment", entry["id"]),
        "name": entry["name"],
        "status": _upper(entry["status"]),
        "createdAt": _utc(entry["created_at"]),
        "updatedAt": _utc(entry["updated_at"]),
        "trackingInfo": [{"company": entry["tracking_company"], "number": entry["tracking_number"]}],
    }


def _line_items(entry: dict[str, Any], first: int, after: str | None) -> dict[str, Any] | None:
    """A window of the order's line items as a connection; None for a cursor of another order."""
    start = 0
    if after is not None:
        state = decode_state(after)
        if state is None or state.get("order") != entry["id"] or not isinstance(state.get("index"), int):
            return None
        start = state["index"] + 1
    items = entry["line_items"]
    window = items[start : start + first]
    end = encode_state({"order": entry["id"], "index": start + len(window) - 1}) if window else None
    return {
        "pageInfo": {"hasNextPage": start + len(window) < len(items), "endCursor": end},
        "nodes": [_line_item(item, entry["currency"]) for item in window],
    }


def _fulfillment_status(entry: dict[str, Any], version: str) -> str:
    if entry["fulfillment_status"] == "fulfilled":
        return "FULFILLED"
    if entry["cancelled_at"] and (version == "unstable" or version >= NOT_REQUIRED_SINCE):
        return "FULFILLMENT_NOT_REQUIRED"
    return "UNFULFILLED"


def order_node(store: Store, entry: dict[str, Any], version: str, line_items: int, fulfillments: int) -> dict[str, Any]:
    """The REST order ``entry`` as the node Beat's orders query selects."""
    currency = entry["currency"]
    landing = entry["landing_site"]
    return {
        "id": entry["admin_graphql_api_id"],
        "name": entry["name"],
        "number": entry["order_number"],
        "email": entry["email"],
        "createdAt": _utc(entry["created_at"]),
        "updatedAt": _utc(entry["updated_at"]),
        "processedAt": _utc(entry["processed_at"]),
        "closedAt": _utc(entry["closed_at"]),
        "cancelledAt": _utc(entry["cancelled_at"]),
        "cancelReason": _upper(entry["cancel_reason"]),
        "confirmed": entry["confirmed"],
        "test": entry["test"],
        "currencyCode": currency,
        "presentmentCurrencyCode": entry["presentment_currency"],
        "taxesIncluded": entry["taxes_included"],
        "displayFinancialStatus": _upper(entry["financial_status"]),
        "displayFulfillmentStatus": _fulfillment_status(entry, version),
        "sourceName": entry["source_name"],
        "tags": [tag.strip() for tag in entry["tags"].split(",") if tag.strip()],
        "note": entry["note"],
        "subtotalPriceSet": _bag(entry["subtotal_price"], currency),
        "totalDiscountsSet": _bag(entry["total_discounts"], currency),
        "totalTaxSet": _bag(entry["total_tax"], currency),
        "totalPriceSet": _bag(entry["total_price"], currency),
        # Orders that never passed through the storefront (point of sale, drafts) had no visit.
        "customerJourneySummary": {
            "firstVisit": None
            if landing is None
            else {"landingPage": f"https://{store.domain}{landing}", "referrerUrl": entry["referring_site"]}
        },
        "fulfillments": [_fulfillment(f) for f in entry["fulfillments"][:fulfillments]],
        "lineItems": _line_items(entry, line_items, None),
    }


# Variables and search


def _count(variables: dict[str, Any], name: str, errors: list[dict[str, Any]]) -> int:
    value = variables.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FIRST:
        errors.append(
            _error(f"Variable ${name} must be an integer from 1 to {MAX_FIRST}; got {value!r}", "BAD_USER_INPUT")
        )
        return 1
    return value


Bound = tuple[str, Callable[[Any, Any], bool], datetime]


def _search(text: Any) -> list[Bound] | str:
    """The date bounds of a search, or the part the sandbox cannot read."""
    if text is None:
        return []
    if not isinstance(text, str):
        return repr(text)
    bounds, position = [], 0
    while position < len(text.rstrip()):
        match = _TERM.match(text, position)
        if match is None:
            return text[position:]
        name, comparator, single, double, bare = match.groups()
        value = single if single is not None else double
        bound = moment(value) if value is not None else None
        if name not in _DATE_FIELDS or comparator is None or bound is None:
            unquoted = bare is not None and name in _DATE_FIELDS
            return match.group(0).strip() + (" (dates must be quoted)" if unquoted else "")
        bounds.append((name, _COMPARATORS[comparator], bound))
        position = match.end()
    return bounds


def _admits(entry: dict[str, Any], bounds: list[Bound]) -> bool:
    return all(compare(datetime.fromisoformat(entry[name]), bound) for name, compare, bound in bounds)


def _cost(requested: int, actual: int | None, available: float) -> dict[str, Any]:
    left = available - (actual or 0)
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": MAXIMUM_AVAILABLE,
                "currentlyAvailable": left,
                "restoreRate": RESTORE_RATE,
            },
        }
    }


def _priced(store: Store, requested: int) -> JSONResponse | float:
    """The bucket's points, or the refusal of a query it cannot or will not pay for."""
    if requested > MAX_QUERY_COST:
        return _errors(
            _error(
                f"Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).",
                "MAX_COST_EXCEEDED",
                cost=requested,
                maxCost=MAX_QUERY_COST,
                documentation=RATE_LIMITS_GUIDE,
            )
        )
    available = THROTTLED_AVAILABLE if store.domain.startswith("throttled-") else MAXIMUM_AVAILABLE
    if requested > available:
        return JSONResponse(
            {
                "errors": [_error("Throttled", "THROTTLED", documentation=RATE_LIMITS_GUIDE)],
                "extensions": _cost(requested, None, available),
            }
        )
    return available


# Operations


def _orders(store: Store, version: str, query: str, variables: dict[str, Any]) -> JSONResponse:
    if store.domain.startswith("denied-"):
        return JSONResponse(
            {
                "data": None,
                "errors": [
                    _error(
                        "Access denied for orders field. Required access: `read_orders` access scope.",
                        "ACCESS_DENIED",
                        documentation="https://shopify.dev/api/usage/access-scopes",
                        requiredAccess="`read_orders` access scope.",
                    )
                    | {"path": ["orders"]}
                ],
            }
        )
    errors: list[dict[str, Any]] = []
    first, line_items = _count(variables, "first", errors), _count(variables, "lineItems", errors)
    if errors:
        return _errors(*errors)
    asked_fulfillments = _FULFILLMENTS_FIRST.search(query)
    if asked_fulfillments is None:
        return _errors(_error("the sandbox answers fulfillments(first: N) only", "BAD_USER_INPUT"))
    bounds = _search(variables.get("query"))
    if isinstance(bounds, str):
        return _errors(_error(f"the sandbox cannot read the search term {bounds!r}", "BAD_USER_INPUT"))
    boundary = None
    if (after := variables.get("after")) is not None:
        state = decode_state(after) if isinstance(after, str) else None
        if state is None or state.get("store") != store.domain or not isinstance(state.get("id"), int):
            return _errors(_error("Invalid cursor", "BAD_USER_INPUT"))
        boundary = state["id"]
    fulfillments = int(asked_fulfillments.group(1))
    requested = 1 + 3 + first * (ORDER_OBJECTS + fulfillments * FULFILLMENT_COST + line_items * LINE_ITEM_COST)
    available = _priced(store, requested)
    if isinstance(available, JSONResponse):
        return available

    # Newest first: Beat asks sortKey CREATED_AT, reverse true; a later order has a larger id here.
    listed = (order(store, position) for position in reversed(range(store.orders)))
    matching = [entry for entry in listed if _admits(entry, bounds) and (boundary is None or entry["id"] < boundary)]
    page = matching[:first]
    nodes = [order_node(store, entry, version, line_items, fulfillments) for entry in page]
    actual = (
        1
        + 3
        + sum(
            ORDER_OBJECTS
            + len(node["fulfillments"]) * FULFILLMENT_COST
            + len(node["lineItems"]["nodes"]) * LINE_ITEM_COST
            for node in nodes
        )
    )
    end = encode_state({"store": store.domain, "id": page[-1]["id"]}) if page else None
    return JSONResponse(
        {
            "data": {
                "shop": {"ianaTimezone": SHOP_ZONE},
                "orders": {"pageInfo": {"hasNextPage": len(matching) > first, "endCursor": end}, "nodes": nodes},
            },
            "extensions": _cost(requested, actual, available),
        }
    )


def _order_line_items(store: Store, variables: dict[str, Any]) -> JSONResponse:
    errors: list[dict[str, Any]] = []
    first = _count(variables, "first", errors)
    if errors:
        return _errors(*errors)
    order_gid = variables.get("id")
    position = None
    if isinstance(order_gid, str) and order_gid.startswith("gid://shopify/Order/"):
        offset = order_gid.removeprefix("gid://shopify/Order/")
        if offset.isdigit() and 0 <= int(offset) - store.first_id < store.orders:
            position = int(offset) - store.first_id
    requested = 1 + 3 + first * LINE_ITEM_COST
    available = _priced(store, requested)
    if isinstance(available, JSONResponse):
        return available
    if position is None:
        # Shopify answers an id it does not know with a null order.
        return JSONResponse({"data": {"order": None}, "extensions": _cost(requested, 1, available)})
    after = variables.get("after")
    items = _line_items(order(store, position), first, after if isinstance(after, str) else None)
    if items is None:
        return _errors(_error("Invalid cursor", "BAD_USER_INPUT"))
    actual = 1 + 3 + len(items["nodes"]) * LINE_ITEM_COST
    return JSONResponse({"data": {"order": {"lineItems": items}}, "extensions": _cost(requested, actual, available)})


async def graphql(request: Request) -> JSONResponse:
    checked = admitted(request)
    if isinstance(checked, JSONResponse):
        return checked
    store, version = checked
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    query = body.get("query") if isinstance(body, dict) else None
    variables = (body.get("variables") or {}) if isinstance(body, dict) else {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, status_code=400)
    if re.search(r"\borders\(", query):
        answer = _orders(store, version, query, variables)
    elif re.search(r"\border\(", query):
        answer = _order_line_items(store, variables)
    else:
        answer = _errors(
            _error("the sandbox answers the orders query and an order's line items only", "undefinedField")
        )
    answer.headers[VERSION_HEADER] = version
    return answer
