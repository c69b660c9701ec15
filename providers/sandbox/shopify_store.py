"""The sandbox's Shopify stores: their orders in the REST Admin API's shape, and the API versions.

Every ``*.myshopify.com`` store exists and holds a deterministic list of orders (seeded by the
domain): ``three-pages.myshopify.com`` has 125, two and a half of Shopify's default REST page of
50; a first label with ``orders-<n>`` in it (``orders-7-ab12.myshopify.com``) has ``n``,
``orders-0`` none; any other store a seeded few dozen. ``items-<n>`` in it gives every order ``n``
line items (at most 16). Any other domain answers 404 ``{"errors": "Not Found"}``, a request
without an ``X-Shopify-Access-Token`` 401. REST (``shopify.py``) and GraphQL
(``shopify_graphql.py``) serve the same orders.

Versions are Shopify's on 2026-12-03: the stable 2026-01 to 2026-10, the 2027-01 release
candidate and ``unstable`` answer as asked; an older, retired version falls forward to the oldest
stable one, as Shopify's do (shopify.dev/docs/api/usage/versioning), and ``X-Shopify-API-Version``
names the version that answered; a path naming no version Shopify ever released (``2026-02``,
``2030-01``) answers 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from providers.sandbox.instagram import seeded

# Shopify's stable versions on 2026-12-03, oldest first (release notes 2026-01 … 2026-10), and the
# versions it serves besides: the next release candidate and the unstable one.
STABLE_VERSIONS = ("2026-01", "2026-04", "2026-07", "2026-10")
PREVIEW_VERSIONS = ("2027-01", "unstable")
FIRST_VERSION = "2019-04"
_VERSION = re.compile(r"\d{4}-(?:01|04|07|10)")
VERSION_HEADER = "X-Shopify-API-Version"
SHOP_SUFFIX = ".myshopify.com"
THREE_PAGES = "three-pages.myshopify.com"
THREE_PAGES_ORDERS = 125
# Order ids are the store's block of MAX_ORDERS ids plus the position, so stores never share one.
MAX_ORDERS = 10_000
_ID_BASE = 5_000_000_000_000
_STORE_BLOCKS = 100_000_000

# Sandbox stores keep Indian time, like the legacy engine's stores.
SHOP_TIME = timezone(timedelta(hours=5, minutes=30))
FIRST_ORDER_AT = datetime(2023, 1, 2, 9, 0, tzinfo=SHOP_TIME)
# Wider than the random minutes added to each order, so creation times rise with the position.
ORDER_SPACING = timedelta(hours=3)
_JITTER_MINUTES = 170

NOT_FOUND = {"errors": "Not Found"}
INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}

_COUNT_IN_NAME = re.compile(r"(?:^|-)orders-(\d+)(?:-|$)")
_ITEMS_IN_NAME = re.compile(r"(?:^|-)items-(\d+)(?:-|$)")
MAX_LINE_ITEMS = 16
_PRODUCTS = (
    ("Kurta Set", "1899.00"),
    ("Silk Saree", "4599.00"),
    ("Cotton Dupatta", "699.00"),
    ("Block Print Shirt", "1299.00"),
    ("Jhumka Earrings", "549.00"),
    ("Linen Trousers", "1499.00"),
)
_FIRST_NAMES = ("Aarav", "Diya", "Kabir", "Meera", "Rohan", "Sana", "Vikram", "Zoya", "Ananya", "Ishaan")
_LAST_NAMES = ("Sharma", "Iyer", "Khan", "Reddy", "Mehta", "Das", "Kapoor", "Nair")
_UTM_SOURCES = (
    ("instagram", "https://l.instagram.com/"),
    ("youtube", "https://www.youtube.com/"),
    ("facebook", "https://m.facebook.com/"),
)
_UTM_MEDIUMS = ("social", "influencer", "story")
_CAMPAIGNS = ("diwali_sale", "kabir.fit", "meera.style", "summer_drop", "sana.makeup")


@dataclass(frozen=True, slots=True)
class Store:
    domain: str
    orders: int
    first_id: int
    items: int | None = None

    @property
    def vendor(self) -> str:
        return " ".join(word.capitalize() for word in self.domain.removesuffix(SHOP_SUFFIX).split("-") if word)


def store_of(domain: str) -> Store | None:
    """The sandbox store at ``domain``, or None if no store lives there."""
    name = domain.removesuffix(SHOP_SUFFIX)
    if name == domain or not name:
        return None
    if domain == THREE_PAGES:
        count = THREE_PAGES_ORDERS
    elif match := _COUNT_IN_NAME.search(name):
        count = min(int(match.group(1)), MAX_ORDERS)
    else:
        count = seeded("shopify-store", domain).randint(3, 80)
    block = int.from_bytes(hashlib.blake2b(domain.encode(), digest_size=8).digest(), "big") % _STORE_BLOCKS
    items = _ITEMS_IN_NAME.search(name)
    return Store(
        domain, count, _ID_BASE + block * MAX_ORDERS, min(int(items.group(1)), MAX_LINE_ITEMS) if items else None
    )


def served_version(asked: str) -> str | None:
    """The version that answers a request for ``asked``; None when Shopify never released it (404)."""
    if asked in STABLE_VERSIONS or asked in PREVIEW_VERSIONS:
        return asked
    if _VERSION.fullmatch(asked) and FIRST_VERSION <= asked < STABLE_VERSIONS[0]:
        return STABLE_VERSIONS[0]
    return None


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _at(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _landing(rng: random.Random) -> tuple[str | None, str | None, str]:
    """Where the buyer arrived, where from, and through which channel (landing_site, referring_site, source_name)."""
    product = f"/products/{rng.choice(_PRODUCTS)[0].lower().replace(' ', '-')}"
    channel = rng.random()
    if channel < 0.55:
        source, referrer = rng.choice(_UTM_SOURCES)
        query = {"utm_source": source, "utm_medium": rng.choice(_UTM_MEDIUMS), "utm_campaign": rng.choice(_CAMPAIGNS)}
        if rng.random() < 0.3:
            query["utm_content"] = f"reel_{rng.randint(1, 40)}"
        return f"{product}?{urlencode(query)}", referrer, "web"
    if channel < 0.8:
        return rng.choice(("/", "/collections/all", product)), rng.choice(("https://www.google.com/", None)), "web"
    # Point-of-sale and draft orders never passed through the storefront.
    return None, None, rng.choice(("pos", "shopify_draft_order"))


def _customer(rng: random.Random, order_id: int, created: datetime) -> dict[str, Any]:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    customer_id = 7_000_000_000_000 + order_id % 1_000_000_000_000
    return {
        "id": customer_id,
        "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.com",
        "accepts_marketing": rng.random() < 0.4,
        "created_at": _at(created - timedelta(days=rng.randint(0, 400))),
        "updated_at": _at(created),
        "first_name": first,
        "last_name": last,
        "state": "enabled",
        "note": None,
        "verified_email": True,
        "tax_exempt": False,
        "phone": None,
        "tags": "",
        "currency": "INR",
        "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
    }


def _line_item(rng: random.Random, store: Store, order_id: int, index: int, fulfilled: bool) -> dict[str, Any]:
    title, price = rng.choice(_PRODUCTS)
    item_id = order_id * MAX_LINE_ITEMS + index
    product_id = 8_000_000_000_000 + _PRODUCTS.index((title, price))
    size = rng.choice(("S", "M", "L", "XL"))
    return {
        "id": item_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{item_id}",
        "title": title,
        "name": f"{title} - {size}",
        "variant_title": size,
        "vendor": store.vendor,
        "quantity": rng.randint(1, 3),
        "price": price,
        "sku": f"{title[:3].upper()}-{size}",
        "product_id": product_id,
        "variant_id": product_id * 10 + ("S", "M", "L", "XL").index(size),
        "fulfillment_status": "fulfilled" if fulfilled else None,
        "requires_shipping": True,
        "taxable": True,
        "gift_card": False,
        "grams": rng.randint(150, 900),
        "total_discount": "0.00",
    }


def order(store: Store, position: int) -> dict[str, Any]:
    """The store's order number ``position`` (0 = its first), the same on every call."""
    rng = seeded("shopify-order", store.domain, position)
    order_id = store.first_id + position
    created = FIRST_ORDER_AT + position * ORDER_SPACING + timedelta(minutes=rng.randrange(_JITTER_MINUTES))
    updated = created + timedelta(minutes=rng.randrange(4 * 24 * 60))
    fate = rng.random()
    cancelled, closed, shipped = fate < 0.05, 0.05 <= fate < 0.4, 0.05 <= fate < 0.65
    landing_site, referring_site, source_name = _landing(rng)
    count = rng.randint(1, 3)
    items = [_line_item(rng, store, order_id, index, shipped) for index in range(store.items or count)]
    total = sum((Decimal(item["price"]) * item["quantity"] for item in items), Decimal(0))
    fulfillments = []
    if shipped or 0.65 <= fate < 0.7:
        fulfillments.append(
            {
                "id": order_id * 2,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{order_id * 2}",
                "order_id": order_id,
                "name": f"#{1001 + position}.1",
                "status": "success" if shipped else "cancelled",
                "service": "manual",
                "shipment_status": "delivered" if closed else None,
                "tracking_company": "Delhivery",
                "tracking_number": f"DL{order_id % 10**10:010d}",
                "created_at": _at(created + timedelta(hours=20)),
                "updated_at": _at(updated),
            }
        )
    customer = _customer(rng, order_id, created)
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{1001 + position}",
        "number": position + 1,
        "order_number": 1001 + position,
        "email": customer["email"],
        "contact_email": customer["email"],
        "created_at": _at(created),
        "updated_at": _at(updated),
        "processed_at": _at(created),
        "closed_at": _at(updated) if closed else None,
        "cancelled_at": _at(created + timedelta(hours=2)) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "confirmed": True,
        "test": False,
        "currency": "INR",
        "presentment_currency": "INR",
        "subtotal_price": _money(total),
        "total_line_items_price": _money(total),
        "total_discounts": "0.00",
        "total_tax": _money(total * Decimal(5) / Decimal(105)),
        "taxes_included": True,
        "total_price": _money(total),
        "financial_status": "refunded" if cancelled else rng.choice(("paid", "paid", "paid", "pending")),
        "fulfillment_status": "fulfilled" if shipped else None,
        "landing_site": landing_site,
        "landing_site_ref": None,
        "referring_site": referring_site,
        "source_name": source_name,
        "tags": "",
        "note": None,
        "token": hashlib.blake2b(f"{store.domain}:{position}".encode(), digest_size=16).hexdigest(),
        "customer": customer,
        "line_items": items,
        "fulfillments": fulfillments,
    }


def moment(text: str) -> datetime | None:
    """An ISO 8601 date or time as Shopify reads it: without an offset, in the shop's time zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=SHOP_TIME)


def encode_state(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_state(text: str) -> dict[str, Any] | None:
    """The object an ``encode_state`` text holds; None for any other text."""
    try:
        state = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return state if isinstance(state, dict) else None


def admitted(request: Request) -> tuple[Store, str] | JSONResponse:
    """The store and the version answering a request, or the refusal Shopify would answer it with."""
    store = store_of(request.path_params["store"])
    version = served_version(request.path_params["version"])
    if store is None or version is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    if not request.headers.get("x-shopify-access-token", "").strip():
        return JSONResponse(INVALID_TOKEN, status_code=401)
    return store, version
