"""Shopify flows (legacy §2.5, §11.3): a store's orders, with the store's own credential.

The legacy engine read only the first page of orders and crashed on a store without
any; this flow pages through them all (GraphQL cursors, or REST's ``page_info`` with
``BEAT_SHOPIFY_API=rest``) and completes with zero orders for an empty store.
"""

from __future__ import annotations

from agents.flows.context import FlowContext
from providers import operations as ops
from providers.shopify import shopify
from topics.params import OrdersParams


async def refresh_orders_by_store(ctx: FlowContext, params: OrdersParams) -> dict:
    filters = params.model_dump(include=set(shopify.FILTERS), exclude_none=True)
    source: str | None = None
    cursor: str | None = None
    orders = pages = 0
    while True:
        # Later pages stick to the first page's source: a cursor means nothing anywhere else.
        page, source = await ctx.fetch(
            ops.FETCH_ORDERS, params.store, params.limit, filters, cursor, only=source, handle=params.store
        )
        pages += 1
        for order in page.items:
            ctx.emit(order)
        orders += len(page.items)
        if page.next_cursor is None:
            return ctx.summary(orders=orders, pages=pages)
        cursor = page.next_cursor
        # The store's API budget sets the pace: REST's bucket of calls, GraphQL's of query points.
        await ctx.wait(page.wait)
