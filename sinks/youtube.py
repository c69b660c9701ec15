"""YouTube tables and their rows (legacy §11.7 columns, legacy §3.3 and §4.2 keys).

The legacy engine overwrote these rows with nulls (legacy §11.9); here they follow
the same null-safe, newer-wins rules as every other entity table.
"""

from __future__ import annotations

from typing import Any

from sinks.upsert import Column, UpsertTable, columns
from sinks.values import as_bool, as_int, as_json, as_text, as_time
from topics.models import PostLog, ProfileLog

# Dimensions stored under their own name. gplsuid, yt_category*, locale, shorts and er12p are legacy columns no
# event key feeds; they stay in the table for the readers that expect them.
ACCOUNT_TEXTS = (
    "description",
    "custom_url",
    "title",
    "thumbnails",
    "thumbnail",
    "country",
    "uploads_playlist_id",
    "external_urls",
)
# event metric key -> youtube_account column
ACCOUNT_COUNTS = {"subscriber_count": "subscribers", "video_count": "uploads", "view_count": "views"}

ACCOUNT = UpsertTable(
    "youtube_account",
    key=("channel_id",),
    columns=(
        *columns("text", "channel_id", *ACCOUNT_TEXTS, "username", "source"),
        *columns("bigint", *ACCOUNT_COUNTS.values()),
        *columns("boolean", "is_subscriber_count_hidden", "is_verified"),
        Column("published_at", "timestamptz"),
        Column("observed_at", "timestamptz"),
    ),
)

POST_TEXTS = (
    "channel_id",
    "title",
    "description",
    "thumbnails",
    "thumbnail",
    "tags",
    "channel_title",
    "duration",
    "category_id",
    "category",
    "audio_language",
    "content_rating",
    "playlist_id",
    "privacy_status",
    "keywords",
    "post_type",
)
# event metric key -> youtube_post column
POST_COUNTS = {"view_count": "views", "likes": "likes", "comments": "comments", "favourite_count": "favourites"}

POST = UpsertTable(
    "youtube_post",
    key=("shortcode",),
    columns=(
        *columns("text", "shortcode", *POST_TEXTS, "source"),
        *columns("bigint", *POST_COUNTS.values()),
        Column("is_licensed", "boolean"),
        Column("published_at", "timestamptz"),
        Column("observed_at", "timestamptz"),
    ),
)

PROFILE_INSIGHTS = UpsertTable(
    "youtube_profile_insights",
    key=("channel_id",),
    columns=(
        *columns("text", "channel_id", "source"),
        *columns("jsonb", "country", "city", "gender_age"),
        Column("observed_at", "timestamptz"),
    ),
)


def account_row(event: ProfileLog) -> dict[str, Any]:
    dims, metrics = event.dimensions, event.metrics
    # The Data API's hiddenSubscriberCount is a boolean; events carry it as a 0/1 metric (or a dimension).
    hidden = metrics.get("hidden_subscriber_count")
    row: dict[str, Any] = {
        "channel_id": event.profile_id,
        "source": event.source,
        "username": as_text(event.handle or dims.get("username")),
        "is_subscriber_count_hidden": as_bool(hidden if hidden is not None else dims.get("hidden_subscriber_count")),
        "is_verified": as_bool(dims.get("is_verified")),
        "published_at": as_time(dims.get("taken_at_timestamp")),
        "observed_at": event.observed_at,
    }
    for column in ACCOUNT_TEXTS:
        row[column] = as_text(dims.get(column))
    for key, column in ACCOUNT_COUNTS.items():
        row[column] = as_int(metrics.get(key))
    return row


def post_row(event: PostLog) -> dict[str, Any]:
    dims, metrics = event.dimensions, event.metrics
    row: dict[str, Any] = {
        "shortcode": event.shortcode,
        "source": event.source,
        "is_licensed": as_bool(dims.get("is_licensed")),
        "published_at": event.publish_time or as_time(dims.get("taken_at_timestamp")),
        "observed_at": event.observed_at,
    }
    for column in POST_TEXTS:
        row[column] = as_text(dims.get(column))
    row["channel_id"] = row["channel_id"] or as_text(event.profile_id)
    row["channel_title"] = row["channel_title"] or as_text(event.handle)
    for key, column in POST_COUNTS.items():
        row[column] = as_int(metrics.get(key))
    return row


def profile_insights_row(event: ProfileLog) -> dict[str, Any]:
    dims = event.dimensions
    return {
        "channel_id": event.profile_id,
        "source": event.source,
        "country": as_json(dims.get("country")),
        "city": as_json(dims.get("city")),
        "gender_age": as_json(dims.get("gender_age")),
        "observed_at": event.observed_at,
    }
