"""Instagram tables and the rows each event kind contributes (legacy §11.7 columns, legacy §4.2 keys).

A post, a story and a post's insights all land in ``instagram_post``: each row
carries only the columns its event knows, and the null-safe upsert merges them.
"""

from __future__ import annotations

from typing import Any

from sinks.upsert import Column, Rule, UpsertTable, columns
from sinks.values import as_bool, as_float, as_int, as_json, as_text, as_texts, as_time
from topics.models import PostLog, ProfileLog

ACCOUNT = UpsertTable(
    "instagram_account",
    key=("profile_id",),
    columns=(
        *columns(
            "text",
            "profile_id",
            "handle",
            "full_name",
            "profile_type",
            "biography",
            "profile_pic_url",
            "category",
            "category_id",
            "fbid",
            "external_url",
            "source",
        ),
        *columns("bigint", "followers", "following", "media_count"),
        *columns("boolean", "is_business_or_creator", "is_creator", "is_private", "is_verified"),
        Column("refreshed_at", "timestamptz", Rule.MAX),
        Column("observed_at", "timestamptz"),
    ),
    returning=("observed_at",),
    watch=("profile_pic_url",),
)

# event metric key -> instagram_post column (legacy §4.2 names on the left, legacy §11.7 columns on the right).
# Graph's insights "views" has a column of its own (migration 0006): the legacy "views" column holds the
# scrapers' public view_count, a different count that the two would overwrite in turn.
POST_COUNTS = {
    "likes": "likes",
    "comments": "comments",
    "view_count": "views",
    "views": "insight_views",
    "play_count": "plays",
    "reach": "reach",
    "impressions": "impressions",
    "saved": "saved",
    "shares": "shares",
    "interactions": "interactions",
    "video_views": "video_views",
    "follows": "follows",
    "profile_visits": "profile_visits",
    "profile_activity": "profile_activity",
    "replies": "replies",
    "navigation": "navigation",
    "tap_forward": "taps_forward",
    "tap_back": "taps_back",
    "tap_exit": "exits",
    "automatic_forward": "automatic_forward",
    "swipe_back": "swipe_back",
    "swipe_down": "swipe_down",
    "swipe_forward": "swipe_forward",
    "swipe_up": "swipe_up",
}
# The profile's numbers when a story was first seen: they describe that moment, so they are write-once.
STORY_PROFILE_COUNTS = {"profile_follower": "profile_follower"}
STORY_PROFILE_RATES = {
    "profile_er": "profile_er",
    "profile_static_er": "profile_static_er",
    "profile_reels_er": "profile_reels_er",
}
POST_TEXTS = (
    "profile_id",
    "handle",
    "post_id",
    "post_type",
    "content_type",
    "caption",
    "display_url",
    "thumbnail_url",
    "keywords",
)

POST = UpsertTable(
    "instagram_post",
    key=("shortcode",),
    columns=(
        *columns("text", "shortcode", *POST_TEXTS, "source"),
        *columns("bigint", *POST_COUNTS.values()),
        Column("engagement", "double precision"),
        *columns("text[]", "story_links", "story_hashtags"),
        *columns("bigint", *STORY_PROFILE_COUNTS.values(), rule=Rule.ONCE),
        *columns("double precision", *STORY_PROFILE_RATES.values(), rule=Rule.ONCE),
        Column("publish_time", "timestamptz"),
        Column("observed_at", "timestamptz"),
    ),
    returning=("profile_id", "post_type", "observed_at"),
    watch=("thumbnail_url",),
)

AUDIENCE_COLUMNS = (
    *(
        f"{prefix}_{breakdown}"
        for prefix in ("audience", "reached_audience", "engaged_audience")
        for breakdown in ("country", "city", "gender_age")
    ),
    "audience_locale",
)

PROFILE_INSIGHTS = UpsertTable(
    "instagram_profile_insights",
    key=("profile_id",),
    columns=(
        *columns("text", "profile_id", "handle", "source"),
        *columns("jsonb", *AUDIENCE_COLUMNS),
        Column("observed_at", "timestamptz"),
    ),
)

GPT_TEXTS = ("gender", "city", "state", "country")
GPT_JSON = ("categories", "languages", "topics", "audience_gender_age", "audience_city", "row_data")

GPT_ENRICHMENT = UpsertTable(
    "instagram_gpt_enrichment",
    key=("handle",),
    columns=(
        *columns("text", "handle", *GPT_TEXTS, "source"),
        *columns("jsonb", *GPT_JSON),
        Column("observed_at", "timestamptz"),
    ),
)


def account_row(event: ProfileLog) -> dict[str, Any]:
    dims, metrics = event.dimensions, event.metrics
    profile_type = as_text(dims.get("profile_type"))
    is_business_or_creator = as_bool(dims.get("is_business_or_creator"))
    if is_business_or_creator is None and profile_type:
        is_business_or_creator = profile_type in ("business", "creator")
    return {
        "profile_id": event.profile_id,
        "handle": as_text(event.handle or dims.get("handle")),
        "full_name": as_text(dims.get("full_name")),
        "profile_type": profile_type,
        "biography": as_text(dims.get("bio")),
        "profile_pic_url": as_text(dims.get("profile_pic_url")),
        "category": as_text(dims.get("category")),
        "category_id": as_text(dims.get("category_id")),
        "fbid": as_text(dims.get("fbid")),
        "external_url": as_text(dims.get("external_url")),
        "source": event.source,
        "followers": as_int(metrics.get("followers")),
        "following": as_int(metrics.get("following")),
        "media_count": as_int(metrics.get("media_count")),
        "is_business_or_creator": is_business_or_creator,
        "is_creator": profile_type == "creator" if profile_type else None,
        "is_private": as_bool(dims.get("is_private")),
        "is_verified": as_bool(dims.get("is_verified")),
        "refreshed_at": event.observed_at,
        "observed_at": event.observed_at,
    }


# event metric key -> (column, reader), for the metrics an event carries (most carry a handful)
_POST_METRICS = (
    {key: (column, as_int) for key, column in (POST_COUNTS | STORY_PROFILE_COUNTS).items()}
    | {key: (column, as_float) for key, column in STORY_PROFILE_RATES.items()}
    | {"engagement": ("engagement", as_float)}
)


def post_row(event: PostLog) -> dict[str, Any]:
    """A post, a story or a post's insights: whatever columns the event knows."""
    dims = event.dimensions
    row: dict[str, Any] = {
        "shortcode": event.shortcode,
        "profile_id": as_text(event.profile_id or dims.get("profile_id")),
        "handle": as_text(event.handle or dims.get("handle")),
        "post_id": as_text(dims.get("post_id")),
        "post_type": as_text(dims.get("post_type")),
        "content_type": as_text(dims.get("content_type")),
        "caption": as_text(dims.get("caption")),
        "display_url": as_text(dims.get("display_url")),
        "thumbnail_url": as_text(dims.get("thumbnail_src") or dims.get("thumbnail_url")),
        "keywords": as_text(dims.get("keywords")),
        "source": event.source,
        "story_links": as_texts(dims.get("story_links")),
        "story_hashtags": as_texts(dims.get("story_hashtags")),
        "publish_time": event.publish_time or as_time(dims.get("taken_at_timestamp")),
        "observed_at": event.observed_at,
    }
    for key, value in event.metrics.items():
        target = _POST_METRICS.get(key)
        if target is not None:
            column, read = target
            row[column] = read(value)
    return row


def profile_insights_row(event: ProfileLog) -> dict[str, Any]:
    row: dict[str, Any] = {
        "profile_id": event.profile_id,
        "handle": as_text(event.handle or event.dimensions.get("handle")),
        "source": event.source,
        "observed_at": event.observed_at,
    }
    for column in AUDIENCE_COLUMNS:
        row[column] = as_json(event.dimensions.get(column))
    return row


def gpt_row(event: ProfileLog) -> dict[str, Any]:
    """A GPT enrichment answer; the legacy events put the handle in ``profile_id``."""
    dims = event.dimensions
    row: dict[str, Any] = {
        "handle": as_text(dims.get("handle") or event.handle or event.profile_id),
        "source": event.source,
        "observed_at": event.observed_at,
    }
    for column in GPT_TEXTS:
        row[column] = as_text(dims.get(column))
    for column in GPT_JSON:
        row[column] = as_json(dims.get(column))
    return row
