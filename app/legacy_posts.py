"""The legacy server's recent-posts read and profile ``post_metrics`` (legacy §5, §9), from Postgres.

Every number comes from the sink's formulas (``sinks.derived``): engagement rate, the reach estimate used
when a post has no stored reach, and ``post_metrics`` over the 12 newest reels and 12 newest static posts.
A post whose thumbnail Beat stored (an ``asset_log`` row for its shortcode) is answered with the CDN URL of
the stored copy, as the legacy did, when a CDN base URL is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from sinks.assets import cdn_url
from sinks.derived import REELS, STATIC, WINDOW, PostNumbers, engagement_rate, reach_of
from sinks.derived import post_metrics as derived_post_metrics

# Every post type the recent-posts read answers by default: stories are left out (legacy §5).
NON_STORY = (REELS, *STATIC)
_POST_URLS = {REELS: "https://www.instagram.com/reel/"}
_POST_URL = "https://www.instagram.com/p/"

_RECENT_SQL = """
SELECT p.shortcode, p.post_id, p.post_type, p.publish_time, p.updated_at, p.reach, p.views, p.likes, p.comments,
       p.plays, p.caption, p.thumbnail_url, p.display_url, a.asset_url
FROM instagram_post p
LEFT JOIN asset_log a ON a.entity_id = p.shortcode
WHERE p.profile_id = $1 AND p.post_type = ANY($2::text[])
  AND p.thumbnail_url IS NOT NULL AND p.thumbnail_url <> ''
  AND (NOT $3 OR p.plays >= 0)
ORDER BY p.publish_time DESC NULLS LAST, p.shortcode
LIMIT $4
"""

_FOLLOWERS_SQL = "SELECT followers FROM instagram_account WHERE profile_id = $1"


class RecentPostMetrics(BaseModel):
    reach: int
    views: int | None
    likes: int | None
    comments: int | None
    play_count: int | None
    engagement_rate: float


class RecentPostDimensions(BaseModel):
    caption: str | None
    comments: int | None
    thumbnail_url: str | None
    display_url: str | None


class RecentPost(BaseModel):
    """One post of the legacy ``recent_posts`` list."""

    shortcode: str
    post_id: str | None
    post_type: str | None
    post_url: str
    publish_time: datetime | None
    updated_at: datetime
    metrics: RecentPostMetrics
    dimensions: RecentPostDimensions


class MetricGroup(BaseModel):
    """One class of posts in ``post_metrics``, after the outlier trimming (§9); ``count`` is what was kept."""

    count: int
    avg_engagement: float | None
    avg_likes: float | None
    avg_comments: float | None


class StaticMetrics(MetricGroup):
    avg_reach: float | None


class ReelsMetrics(StaticMetrics):
    avg_plays: float | None


class StoryMetrics(BaseModel):
    avg_reach: float


class PostMetrics(BaseModel):
    """The legacy profile ``post_metrics`` (``get_recent_post_metrics``, §9)."""

    all: MetricGroup
    static: StaticMetrics
    reels: ReelsMetrics
    story: StoryMetrics
    avg_engagement: float | None
    story_reach: float


def _post_url(shortcode: str, post_type: str | None) -> str:
    return _POST_URLS.get(post_type or "", _POST_URL) + shortcode


async def _followers(conn: asyncpg.Connection | asyncpg.Pool, profile_id: str) -> int | None:
    followers: int | None = await conn.fetchval(_FOLLOWERS_SQL, profile_id)
    return followers


async def _recent_rows(
    conn: asyncpg.Connection | asyncpg.Pool, profile_id: str, post_types: Sequence[str]
) -> list[asyncpg.Record]:
    # The reels variant also requires a play count, as the legacy's plays >= 0 filter did.
    reels_only = set(post_types) == {REELS}
    return list(await conn.fetch(_RECENT_SQL, profile_id, list(post_types), reels_only, WINDOW))


def _recent_post(row: asyncpg.Record, followers: int | None, cdn_base_url: str | None) -> RecentPost:
    numbers = _numbers(row)
    thumbnail = row["thumbnail_url"]
    if cdn_base_url and row["asset_url"]:
        thumbnail = cdn_url(cdn_base_url, row["asset_url"])
    return RecentPost(
        shortcode=row["shortcode"],
        post_id=row["post_id"],
        post_type=row["post_type"],
        post_url=_post_url(row["shortcode"], row["post_type"]),
        publish_time=row["publish_time"],
        updated_at=row["updated_at"],
        metrics=RecentPostMetrics(
            reach=reach_of(numbers, followers),
            views=row["views"],
            likes=row["likes"],
            comments=row["comments"],
            play_count=row["plays"],
            engagement_rate=engagement_rate(row["likes"], row["comments"], followers),
        ),
        dimensions=RecentPostDimensions(
            caption=row["caption"],
            comments=row["comments"],
            thumbnail_url=thumbnail,
            display_url=row["display_url"],
        ),
    )


def _numbers(row: asyncpg.Record) -> PostNumbers:
    return PostNumbers(
        row["post_type"], row["likes"], row["comments"], row["plays"], row["reach"], publish_time=row["publish_time"]
    )


async def recent_posts(
    pool: asyncpg.Pool,
    profile_id: str,
    *,
    post_types: Sequence[str] = NON_STORY,
    cdn_base_url: str | None = None,
) -> list[RecentPost]:
    """The 12 newest posts of ``profile_id`` among ``post_types`` that have a thumbnail, newest first (legacy
    recent-posts logic); ``cdn_base_url`` (``BEAT_CDN_BASE_URL``) serves the thumbnails Beat stored."""
    async with pool.acquire() as conn:
        followers = await _followers(conn, profile_id)
        rows = await _recent_rows(conn, profile_id, post_types)
    return [_recent_post(row, followers, cdn_base_url) for row in rows]


async def post_metrics(pool: asyncpg.Pool, profile_id: str) -> PostMetrics:
    """The profile's ``post_metrics`` over its 12 newest reels and 12 newest static posts, picked by the
    recent-posts logic, with the sink's formulas."""
    async with pool.acquire() as conn:
        followers = await _followers(conn, profile_id)
        rows = await _recent_rows(conn, profile_id, (REELS,)) + await _recent_rows(conn, profile_id, STATIC)
    return post_metrics_of([_numbers(row) for row in rows], followers)


def post_metrics_of(posts: Sequence[PostNumbers], followers: int | None) -> PostMetrics:
    metrics: dict[str, Any] = derived_post_metrics(posts, followers)
    return PostMetrics.model_validate({**metrics, "story": {"avg_reach": metrics["story_reach"]}})
