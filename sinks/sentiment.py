"""The ``sentiment_log`` table: one row per comment, its latest verdict (legacy table of the same name,
which the legacy engine left to its event consumers; Beat's own reports read it)."""

from __future__ import annotations

from typing import Any

from sinks.upsert import Column, Rule, UpsertTable, columns
from topics.sentiment import SentimentLog

SENTIMENT = UpsertTable(
    "sentiment_log",
    key=("platform", "comment_id"),
    columns=(
        *columns("text", "platform", "platform_post_id", "comment_id", "comment", "sentiment", "source"),
        Column("score", "double precision"),
        *columns("jsonb", "dimensions", "metrics", rule=Rule.MERGE),
        Column("timestamp", "timestamptz"),
    ),
    observed="timestamp",
)


def sentiment_row(event: SentimentLog) -> dict[str, Any]:
    return {
        "platform": event.platform.value,
        "platform_post_id": event.shortcode,
        "comment_id": event.comment_id,
        "comment": event.comment,
        "sentiment": event.sentiment,
        "source": event.source,
        "score": event.score,
        "dimensions": event.dimensions,
        "metrics": event.metrics,
        "timestamp": event.observed_at,
    }
