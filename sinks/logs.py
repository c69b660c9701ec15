"""The activity and relationship logs (legacy ``post_activity_log``, ``profile_relationship_log``).

The legacy engine inserted a row per observation; here a row per natural key
(one like, one comment, one follow), so a retried or replayed request adds nothing.
Its metrics and dimensions are merged key by key, newest observation first.
"""

from __future__ import annotations

from typing import Any

from sinks.upsert import Column, Rule, UpsertTable, columns
from sinks.values import as_text
from topics.models import ActivityLog, RelationshipLog

ACTIVITY = UpsertTable(
    "post_activity_log",
    # A person likes a post once but may comment on it many times: comments are told apart by their id.
    key=("platform", "platform_post_id", "activity_type", "actor_profile_id", "comment_id"),
    columns=(
        *columns("text", "platform", "platform_post_id", "activity_type", "actor_profile_id", "comment_id", "source"),
        *columns("jsonb", "dimensions", "metrics", rule=Rule.MERGE),
        Column("publish_time", "timestamptz"),
        Column("timestamp", "timestamptz"),
    ),
    observed="timestamp",
)

RELATIONSHIP = UpsertTable(
    "profile_relationship_log",
    key=("platform", "source_profile_id", "target_profile_id", "relationship_type"),
    columns=(
        *columns("text", "platform", "source_profile_id", "target_profile_id", "relationship_type", "source"),
        *columns(
            "jsonb", "source_dimensions", "source_metrics", "target_dimensions", "target_metrics", rule=Rule.MERGE
        ),
        Column("timestamp", "timestamptz"),
    ),
    observed="timestamp",
)


def activity_row(event: ActivityLog) -> dict[str, Any]:
    return {
        "platform": event.platform.value,
        "platform_post_id": event.shortcode,
        "activity_type": event.activity_type,
        # Key columns hold no NULL (a NULL never conflicts, so a replay would add a row): as with comment_id,
        # "" stands for none. A comment without an author is still told apart by its comment_id.
        "actor_profile_id": event.actor_profile_id or "",
        "comment_id": as_text(event.dimensions.get("comment_id")) or "",
        "source": event.source,
        "dimensions": event.dimensions,
        "metrics": event.metrics,
        "publish_time": event.publish_time,
        "timestamp": event.observed_at,
    }


def relationship_row(event: RelationshipLog) -> dict[str, Any]:
    return {
        "platform": event.platform.value,
        "source_profile_id": event.source_profile_id,
        "target_profile_id": event.target_profile_id,
        "relationship_type": event.relationship_type,
        "source": event.source,
        "source_dimensions": event.source_dimensions,
        "source_metrics": event.source_metrics,
        "target_dimensions": event.target_dimensions,
        "target_metrics": event.target_metrics,
        "timestamp": event.observed_at,
    }
