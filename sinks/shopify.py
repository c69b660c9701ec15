"""Shopify orders from ``order_log`` into ``"order"`` (legacy §11.3)."""

from __future__ import annotations

from typing import Any

from sinks.upsert import Column, UpsertTable, columns
from sinks.values import as_json, as_text
from topics.models import OrderLog

ORDER_TEXTS = ("name", "status", "landing_site", "store_name")

ORDER = UpsertTable(
    "order",
    key=("platform_order_id",),
    columns=(
        *columns("text", "platform_order_id", *ORDER_TEXTS, "utm_params", "store", "platform", "source"),
        Column("order_data", "jsonb"),
        Column("observed_at", "timestamptz"),
    ),
)


def order_row(event: OrderLog) -> dict[str, Any]:
    dims = event.dimensions
    row: dict[str, Any] = {
        "platform_order_id": event.platform_order_id,
        # The legacy column holds the utm_* parameters as JSON text.
        "utm_params": as_text(dims.get("utm_params")),
        "store": as_text(event.store or dims.get("store")),
        "platform": event.platform.value,
        "source": event.source,
        "order_data": as_json(dims.get("order_data")),
        "observed_at": event.observed_at,
    }
    for column in ORDER_TEXTS:
        row[column] = as_text(dims.get(column))
    return row
