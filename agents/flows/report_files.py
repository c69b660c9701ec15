"""Report rows as Parquet (pyarrow), with a fixed schema per report so an empty report keeps its columns,
written to the asset store (S3 when configured, the local directory otherwise) under the legacy paths."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from agents.flows.context import FlowContext

CONTENT_TYPE = "application/vnd.apache.parquet"
TIME = pa.timestamp("us", tz="UTC")

KEYWORD_INSTAGRAM = pa.schema(
    [
        ("keyword", pa.string()),
        ("shortcode", pa.string()),
        ("handle", pa.string()),
        ("profile_id", pa.string()),
        ("caption", pa.string()),
        ("publish_time", TIME),
        ("post_class", pa.string()),
        ("likes", pa.int64()),
        ("comments", pa.int64()),
        ("plays", pa.int64()),
        ("followers", pa.int64()),
        ("er", pa.float64()),
        ("reach", pa.int64()),
        ("category", pa.string()),
        ("category_score", pa.float64()),
    ]
)
KEYWORD_YOUTUBE = pa.schema(
    [
        ("video_id", pa.string()),
        ("channel_id", pa.string()),
        ("title", pa.string()),
        ("views", pa.int64()),
        ("likes", pa.int64()),
        ("comments", pa.int64()),
        ("subscribers", pa.int64()),
        ("er", pa.float64()),
        ("post_reach", pa.int64()),
        ("category", pa.string()),
        ("category_score", pa.float64()),
    ]
)
DEMOGRAPHIC = pa.schema(
    [
        ("category", pa.string()),
        ("accounts", pa.int64()),
        ("accounts_without_insights", pa.int64()),
        ("gender", pa.string()),
        ("age_group", pa.string()),
        ("share", pa.float64()),
    ]
)
SENTIMENT = pa.schema(
    [
        ("shortcode", pa.string()),
        ("comment_id", pa.string()),
        ("comment", pa.string()),
        ("sentiment", pa.string()),
        ("score", pa.float64()),
    ]
)
SENTIMENT_SUMMARY = pa.schema(
    [
        ("shortcode", pa.string()),
        ("comments", pa.int64()),
        ("positive", pa.int64()),
        ("negative", pa.int64()),
        ("neutral", pa.int64()),
        ("mean_score", pa.float64()),
    ]
)


def dated(prefix: str, day: date) -> str:
    """``prefix/{y}/{m}/{d}``, the date without zero padding (legacy §11.2)."""
    return f"{prefix}/{day.year}/{day.month}/{day.day}"


def parquet_bytes(schema: pa.Schema, rows: Sequence[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(list(rows), schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


async def store(ctx: FlowContext, key: str, schema: pa.Schema, rows: Sequence[dict[str, Any]]) -> str:
    """Write ``rows`` as Parquet at ``key``; the stored key."""
    assert ctx.assets is not None, "the worker runtime opens the asset store"
    stored = await ctx.assets.store.put(key, parquet_bytes(schema, rows), CONTENT_TYPE)
    return stored.key
