"""Instagram entity rows from ProfileLog / PostLog events (legacy §11.7 columns, legacy §4.2 keys)."""

from __future__ import annotations

from typing import Any

from sinks.upsert import UpsertTable
from topics.models import PostLog, ProfileLog

ACCOUNT = UpsertTable(
    "instagram_account",
    "profile_id",
    (
        "handle", "full_name", "profile_type", "biography", "profile_pic_url", "category", "category_id", "fbid",
        "external_url", "followers", "following", "media_count", "is_business_or_creator", "is_private",
        "is_verified", "source", "refreshed_at",
    ),
)

POST = UpsertTable(
    "instagram_post",
    "shortcode",
    (
        "profile_id", "handle", "post_id", "post_type", "content_type", "caption", "display_url", "thumbnail_url",
        "keywords", "likes", "views", "plays", "comments", "publish_time", "source",
    ),
)

# event key -> column, where they differ
_ACCOUNT_DIMENSIONS = {"bio": "biography"}
_POST_DIMENSIONS = {"thumbnail_src": "thumbnail_url"}
_POST_METRICS = {"view_count": "views", "play_count": "plays"}


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def account_row(event: ProfileLog) -> dict[str, Any]:
    dims = {_ACCOUNT_DIMENSIONS.get(k, k): v for k, v in event.dimensions.items()}
    profile_type = dims.get("profile_type")
    return {
        "profile_id": event.profile_id,
        "handle": event.handle or dims.get("handle"),
        "full_name": dims.get("full_name"),
        "profile_type": profile_type,
        "biography": dims.get("biography"),
        "profile_pic_url": dims.get("profile_pic_url"),
        "category": _as_text(dims.get("category")),
        "category_id": _as_text(dims.get("category_id")),
        "fbid": _as_text(dims.get("fbid")),
        "external_url": dims.get("external_url"),
        "followers": _as_int(event.metrics.get("followers")),
        "following": _as_int(event.metrics.get("following")),
        "media_count": _as_int(event.metrics.get("media_count")),
        "is_business_or_creator": dims.get("is_business_or_creator")
        if dims.get("is_business_or_creator") is not None
        else (profile_type in ("business", "creator") if profile_type else None),
        "is_private": dims.get("is_private"),
        "is_verified": dims.get("is_verified"),
        "source": event.source,
        "refreshed_at": event.observed_at,
        "observed_at": event.observed_at,
    }


def post_row(event: PostLog) -> dict[str, Any]:
    dims = {_POST_DIMENSIONS.get(k, k): v for k, v in event.dimensions.items()}
    metrics = {_POST_METRICS.get(k, k): v for k, v in event.metrics.items()}
    return {
        "shortcode": event.shortcode,
        "profile_id": event.profile_id,
        "handle": event.handle,
        "post_id": _as_text(dims.get("post_id")),
        "post_type": dims.get("post_type"),
        "content_type": dims.get("content_type"),
        "caption": dims.get("caption"),
        "display_url": dims.get("display_url"),
        "thumbnail_url": dims.get("thumbnail_url"),
        "keywords": dims.get("keywords"),
        "likes": _as_int(metrics.get("likes")),
        "views": _as_int(metrics.get("views")),
        "plays": _as_int(metrics.get("plays")),
        "comments": _as_int(metrics.get("comments")),
        "publish_time": event.publish_time,
        "source": event.source,
        "observed_at": event.observed_at,
    }
