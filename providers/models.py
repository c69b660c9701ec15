"""What parsers return: provider-neutral profile and post data, before a flow turns them into events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from topics.models import Platform


@dataclass(slots=True)
class ProfileData:
    platform: Platform
    source: str
    profile_id: str
    handle: str | None
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    dimensions: dict[str, Any] = field(default_factory=dict)
    kind: str = "profile"
    # Posts that arrived embedded in the profile payload; they become their own PostLogs.
    embedded_posts: list["PostData"] = field(default_factory=list)


@dataclass(slots=True)
class PostData:
    platform: Platform
    source: str
    shortcode: str
    profile_id: str | None
    handle: str | None
    publish_time: datetime | None
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    dimensions: dict[str, Any] = field(default_factory=dict)
    kind: str = "post"


@dataclass(slots=True)
class ActivityData:
    """A like or a comment on a post (legacy post_activity_log): ``actor_profile_id`` did it to ``shortcode``."""

    platform: Platform
    source: str
    activity_type: str  # LIKE or COMMENT
    shortcode: str
    actor_profile_id: str | None  # None: a YouTube comment whose author has no channel
    publish_time: datetime | None = None
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    dimensions: dict[str, Any] = field(default_factory=dict)
    kind: str = "activity"


@dataclass(slots=True)
class RelationshipData:
    """``source_profile_id`` FOLLOWS ``target_profile_id`` (legacy profile_relationship_log)."""

    platform: Platform
    source: str
    source_profile_id: str
    target_profile_id: str
    relationship_type: str = "FOLLOWS"
    source_dimensions: dict[str, Any] = field(default_factory=dict)
    target_dimensions: dict[str, Any] = field(default_factory=dict)
    kind: str = "relationship"


@dataclass(slots=True)
class Page:
    """One page of a paged listing: the items and the cursor of the next page (None = last page)."""

    items: list[Any]
    next_cursor: str | None


@dataclass(slots=True)
class YtActivityData:
    """One entry of a channel's activity feed: ``actor_channel_id`` subscribed, uploaded or added to a playlist."""

    platform: Platform
    source: str
    activity_id: str
    activity_type: str  # subscription, upload, playlistItem, …
    actor_channel_id: str
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    dimensions: dict[str, Any] = field(default_factory=dict)
    kind: str = "yt_activity"


@dataclass(slots=True)
class YtRelationshipData:
    """``source_channel_id`` subscribes to ``target_channel_id`` (one subscriptions item)."""

    platform: Platform
    source: str
    relationship_id: str
    source_channel_id: str | None
    target_channel_id: str
    subscribed_on: datetime | None = None
    source_dimensions: dict[str, Any] = field(default_factory=dict)
    target_dimensions: dict[str, Any] = field(default_factory=dict)
    kind: str = "yt_relationship"


@dataclass(slots=True)
class OrderData:
    """One Shopify order with the legacy order dimensions (legacy §11.3)."""

    platform: Platform
    source: str
    platform_order_id: str
    store: str
    dimensions: dict[str, Any] = field(default_factory=dict)
    kind: str = "order"
