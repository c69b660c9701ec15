"""The daily history of YouTube channels and videos the CSV exports read (migration 0011).

Fed by the same ``profile_log`` and ``post_log`` events as ``youtube_account`` and ``youtube_post``
(``sinks/routing.py`` sends a YouTube profile or post event to both): one row per channel or video
per UTC day of observation, merged by the upsert's null-safe, newer-wins rules, so the day's last
observation wins and a partial event (a type probe, a categorisation) leaves the counts as they were.
An event without any count (a search snippet) makes no history row.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sinks.upsert import Column, UpsertTable, columns
from sinks.values import as_int
from sinks.youtube import ACCOUNT_COUNTS
from topics.models import PostLog, ProfileLog

ACCOUNT_DAILY = UpsertTable(
    "youtube_account_daily",
    key=("channel_id", "day"),
    columns=(
        *columns("text", "channel_id", "source"),
        Column("day", "date"),
        *columns("bigint", *ACCOUNT_COUNTS.values()),
        Column("observed_at", "timestamptz"),
    ),
)

# event metric key -> youtube_post_daily column
POST_DAILY_COUNTS = {"view_count": "views", "likes": "likes", "comments": "comments"}

POST_DAILY = UpsertTable(
    "youtube_post_daily",
    key=("shortcode", "day"),
    columns=(
        *columns("text", "shortcode", "channel_id", "source"),
        Column("day", "date"),
        *columns("bigint", *POST_DAILY_COUNTS.values()),
        Column("observed_at", "timestamptz"),
    ),
)


def account_daily_row(event: ProfileLog) -> dict[str, Any] | None:
    counts = {column: as_int(event.metrics.get(key)) for key, column in ACCOUNT_COUNTS.items()}
    if all(value is None for value in counts.values()):
        return None
    return {
        "channel_id": event.profile_id,
        "day": event.observed_at.astimezone(UTC).date(),
        "source": event.source,
        "observed_at": event.observed_at,
        **counts,
    }


def post_daily_row(event: PostLog) -> dict[str, Any] | None:
    counts = {column: as_int(event.metrics.get(key)) for key, column in POST_DAILY_COUNTS.items()}
    if all(value is None for value in counts.values()):
        return None
    return {
        "shortcode": event.shortcode,
        "day": event.observed_at.astimezone(UTC).date(),
        "channel_id": event.profile_id or event.dimensions.get("channel_id"),
        "source": event.source,
        "observed_at": event.observed_at,
        **counts,
    }
