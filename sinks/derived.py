"""Derived Instagram metrics (legacy §9) and the account columns kept from them.

The formulas are the legacy server's (``instagram/helper.py``, ``get_recent_post_metrics``),
as pure functions. ``refresh_accounts`` recomputes ``instagram_account.avg_*`` and
``post_metrics`` for the accounts a batch touched, from their stored posts, inside
the batch's transaction; the legacy engine left those columns null (legacy §11.9).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

REELS = "reels"
STATIC = ("image", "carousel")
WINDOW = 12  # the newest posts of each class the legacy server averaged over
TRIM = 2  # dropped from each end of a sorted group...
TRIM_ABOVE = 4  # ...when it holds more posts than this


@dataclass(frozen=True, slots=True)
class PostNumbers:
    post_type: str | None
    likes: int | None = None
    comments: int | None = None
    plays: int | None = None
    reach: int | None = None
    impressions: int | None = None
    publish_time: datetime | None = None


def profile_type(is_business_or_creator: bool | None) -> str:
    """The legacy server's ``profile_type`` of an account: business and creator accounts are one kind, and an
    account whose kind is unknown counts as personal."""
    return "business_or_creator" if is_business_or_creator else "personal"


def engagement_rate(likes: float | None, comments: float | None, followers: int | None) -> float:
    """(likes + comments) / followers in percent, 2 decimals; 0 without followers."""
    if not followers:
        return 0.0
    return round(((likes or 0) + (comments or 0)) / followers * 100, 2)


def reach_estimate(post_type: str | None, likes: int | None, plays: int | None, followers: int | None) -> int:
    """The legacy estimate of a post's reach, for posts whose stored reach is null or 0."""
    if post_type == REELS:
        if not plays or not followers:
            return 0
        return int(plays * (0.94 - math.log2(followers) * 0.001))
    if post_type in STATIC:
        if not likes:
            return 0
        return int((7.6 - math.log10(likes) * 0.7) * 0.85 * likes)
    return 0


def reach_of(post: PostNumbers, followers: int | None) -> int:
    return post.reach if post.reach else reach_estimate(post.post_type, post.likes, post.plays, followers)


def story_reach(followers: int | None, avg_engagement: float | None) -> float:
    """The legacy estimate of a story's reach from the profile's size and engagement."""
    if not followers or followers <= 0 or not avg_engagement or avg_engagement <= 0:
        return 0.0
    return float(round(-0.000025017 * followers + 1.11 * (followers * abs(math.log2(avg_engagement + 2)) * 2 / 100)))


def _trimmed(posts: Sequence[PostNumbers], by: str) -> list[PostNumbers]:
    ordered = sorted(posts, key=lambda post: getattr(post, by) or 0)
    return ordered[TRIM:-TRIM] if len(ordered) > TRIM_ABOVE else ordered


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _group(posts: Sequence[PostNumbers], by: str, followers: int | None, *, reach: bool, plays: bool) -> dict[str, Any]:
    kept = _trimmed(posts, by)
    count = len(kept)
    avg_likes = _mean([p.likes or 0 for p in kept])
    avg_comments = _mean([p.comments or 0 for p in kept])
    out: dict[str, Any] = {
        "count": count,
        "avg_engagement": engagement_rate(avg_likes, avg_comments, followers) if count else None,
        "avg_likes": avg_likes,
        "avg_comments": avg_comments,
    }
    if plays:
        out["avg_plays"] = _mean([p.plays or 0 for p in kept])
    if reach:
        out["avg_reach"] = _mean([reach_of(p, followers) for p in kept])
    return out


def _newest(posts: Sequence[PostNumbers]) -> list[PostNumbers]:
    dated = [p for p in posts if p.publish_time is not None]
    dated.sort(key=lambda p: p.publish_time, reverse=True)  # type: ignore[arg-type, return-value]
    return dated[:WINDOW]


def post_metrics(posts: Sequence[PostNumbers], followers: int | None) -> dict[str, Any]:
    """The legacy profile ``post_metrics`` over ``posts`` (the 12 newest reels and 12 newest static posts),
    plus the story reach estimate that follows from them."""
    return _post_metrics(posts, _newest(posts), followers)


def _post_metrics(posts: Sequence[PostNumbers], newest: Sequence[PostNumbers], followers: int | None) -> dict[str, Any]:
    static = [p for p in posts if p.post_type in STATIC]
    reels = [p for p in posts if p.post_type == REELS]
    metrics: dict[str, Any] = {
        "all": _group(newest, "likes", followers, reach=False, plays=False),
        "static": _group(static, "likes", followers, reach=True, plays=False),
        "reels": _group(reels, "plays", followers, reach=True, plays=True),
    }
    preferred = metrics["reels"] if reels else metrics["all"]
    metrics["avg_engagement"] = preferred["avg_engagement"]
    metrics["story_reach"] = story_reach(followers, metrics["avg_engagement"])
    return metrics


def account_averages(posts: Sequence[PostNumbers], followers: int | None) -> dict[str, Any]:
    """instagram_account's avg_* columns and post_metrics for one account.

    avg_engagement and avg_reach come from the reels when the account has any (as the legacy
    server's avg_engagement did), else from all posts and the static posts; avg_impressions is
    the mean over the newest posts that have Graph insights.
    """
    newest = _newest(posts)
    metrics = _post_metrics(posts, newest, followers)
    reels = metrics["reels"]["count"] > 0
    return {
        "avg_likes": metrics["all"]["avg_likes"],
        "avg_comments": metrics["all"]["avg_comments"],
        "avg_engagement": metrics["avg_engagement"],
        "avg_reach": metrics["reels" if reels else "static"]["avg_reach"],
        "avg_reels_plays": metrics["reels"]["avg_plays"],
        "avg_impressions": _mean([p.impressions for p in newest if p.impressions is not None]),
        "post_metrics": metrics,
    }


_WINDOW_SQL = f"""
SELECT a.profile_id, a.followers, p.post_type, p.likes, p.comments, p.plays, p.reach, p.impressions, p.publish_time
FROM instagram_account a
LEFT JOIN LATERAL (
    (SELECT post_type, likes, comments, plays, reach, impressions, publish_time FROM instagram_post
     WHERE profile_id = a.profile_id AND post_type = '{REELS}' AND publish_time IS NOT NULL
     ORDER BY publish_time DESC LIMIT {WINDOW})
    UNION ALL
    (SELECT post_type, likes, comments, plays, reach, impressions, publish_time FROM instagram_post
     WHERE profile_id = a.profile_id AND post_type IN ('{STATIC[0]}', '{STATIC[1]}') AND publish_time IS NOT NULL
     ORDER BY publish_time DESC LIMIT {WINDOW})
) p ON true
WHERE a.profile_id = ANY($1::text[])
"""

_AVERAGES = ("avg_likes", "avg_comments", "avg_engagement", "avg_reach", "avg_reels_plays", "avg_impressions")

_UPDATE_SQL = f"""
UPDATE instagram_account AS a SET {", ".join(f"{c} = u.{c}" for c in _AVERAGES)}, post_metrics = u.post_metrics,
    updated_at = now()
FROM unnest($1::text[], {", ".join(f"${i}::float8[]" for i in range(2, len(_AVERAGES) + 2))},
            ${len(_AVERAGES) + 2}::jsonb[]) AS u(profile_id, {", ".join(_AVERAGES)}, post_metrics)
WHERE a.profile_id = u.profile_id
  AND ROW({", ".join(f"a.{c}" for c in _AVERAGES)}, a.post_metrics)
      IS DISTINCT FROM ROW({", ".join(f"u.{c}" for c in _AVERAGES)}, u.post_metrics)
"""


async def refresh_accounts(conn: asyncpg.Connection, profile_ids: Iterable[str]) -> int:
    """Recompute the derived columns of these accounts from their stored posts; returns how many changed."""
    ids = sorted(set(profile_ids))
    if not ids:
        return 0
    followers: dict[str, int | None] = {}
    posts: dict[str, list[PostNumbers]] = {}
    # Positional: this loop runs for every post in the window of every account a batch touched.
    for profile_id, count, post_type, likes, comments, plays, reach, impressions, published in await conn.fetch(
        _WINDOW_SQL, ids
    ):
        followers[profile_id] = count
        bucket = posts.setdefault(profile_id, [])
        if post_type is not None:
            bucket.append(PostNumbers(post_type, likes, comments, plays, reach, impressions, published))
    columns: list[list[Any]] = [[] for _ in range(len(_AVERAGES) + 2)]
    for profile_id, account_posts in posts.items():
        values = account_averages(account_posts, followers[profile_id])
        columns[0].append(profile_id)
        for i, name in enumerate(_AVERAGES, 1):
            columns[i].append(values[name])
        columns[-1].append(json.dumps(values["post_metrics"]))
    status = await conn.execute(_UPDATE_SQL, *columns)
    return int(status.split()[-1])
