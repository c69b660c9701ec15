"""The keyword and sentiment collection reports (legacy §11.2, driven by the legacy listeners of §8), as flows.

Both read what Beat has stored in Postgres, write Parquet to the asset store at the legacy paths, and
announce the files with one ``report_log`` event (legacy: the ``coffee.dx`` completion messages).

- ``fetch_keyword_collection`` matches stored captions (Instagram) or titles (YouTube) against each keyword
  with the legacy regex, run in Postgres (``core/report_queries.py``), categorises the top posts by plays
  (views) through RAY, and writes one row per matched post plus the demographic file: per category scoring
  over 0.5, the mean audience gender/age split of the accounts behind its posts, from the insights Beat
  stores, and how many of those accounts have none. Without ``BEAT_RAY_URL`` the categories are left empty
  and the result says "skipped", as keyword categorisation does.
- ``fetch_sentiment_report`` writes one row per stored comment sentiment of the collection's posts, and a
  summary per post (counts per sentiment, mean score) next to it. Beat cannot resolve a Coffee collection id,
  so the request names the posts (``shortcodes``); without them it fails definitively, saying so.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from agents.flows import report_files as files
from agents.flows.context import FlowContext
from core import report_queries as reads
from providers.errors import InputRejected
from providers.youtube import ray
from topics.models import Platform, Post, utcnow
from topics.params import KeywordCollectionParams, SentimentReportParams
from topics.sentiment import ReportDone

CATEGORIZE_MAX_POSTS = 1000
CATEGORIZE_CHUNK = 100
CATEGORIZATION_SOURCE = "categorization"
# Categories a demographic row is given for (legacy: mart_genre_overview over categories scoring > 0.5).
DEMOGRAPHIC_MIN_SCORE = 0.5
REELS = "reels"
NO_SHORTCODES = (
    "fetch_sentiment_report needs the collection's posts as shortcodes: Beat cannot resolve a Coffee "
    "collection id (collectionType/collectionId) itself"
)


class CollectionUnknown(InputRejected):
    """A sentiment report without the collection's posts."""


def _int(value: Any) -> int:
    return int(value or 0)


def reach_estimate(post_class: str, plays: int, likes: int, followers: int) -> int:
    """Legacy §9's reach formulas, floored at 0: reels by plays and followers, static posts by likes."""
    if post_class == REELS:
        if plays <= 0 or followers <= 0:
            return 0
        return max(int(plays * (0.94 - math.log2(followers) * 0.001)), 0)
    if likes <= 0:
        return 0
    return max(int((7.6 - math.log10(likes) * 0.7) * 0.85 * likes), 0)


def instagram_row(match: Any) -> dict[str, Any]:
    likes, comments, plays, followers = (_int(match[k]) for k in ("likes", "comments", "plays", "followers"))
    post_class = REELS if match["post_type"] == REELS else "static"
    stored_reach = _int(match["reach"])
    return {
        "keyword": match["keyword"],
        "shortcode": match["shortcode"],
        "handle": match["handle"],
        "profile_id": match["profile_id"],
        "caption": match["caption"],
        "publish_time": match["publish_time"],
        "post_class": post_class,
        "likes": match["likes"],
        "comments": match["comments"],
        "plays": match["plays"],
        "followers": match["followers"],
        # Legacy §9 (report): a fraction, not a percentage, 2 decimals.
        "er": round((likes + comments) / followers, 2) if followers else 0.0,
        "reach": stored_reach or reach_estimate(post_class, plays, likes, followers),
    }


def youtube_row(match: Any) -> dict[str, Any]:
    likes, comments, subscribers = (_int(match[k]) for k in ("likes", "comments", "subscribers"))
    return {
        "video_id": match["video_id"],
        "channel_id": match["channel_id"],
        "title": match["title"],
        "views": match["views"],
        "likes": match["likes"],
        "comments": match["comments"],
        "subscribers": match["subscribers"],
        "er": (likes + comments) / subscribers if subscribers else 0.0,
        "post_reach": match["views"],
    }


async def _categorize(
    ctx: FlowContext, platform: Platform, posts: list[dict[str, Any]], id_key: str, text_key: str, plays_key: str
) -> tuple[dict[str, dict[str, Any]], str]:
    """Categories of the top posts by plays (views), by post id; each emitted as a post event (legacy
    source "categorization")."""
    client = ctx.tools.ray if ctx.tools else None
    if client is None:
        return {}, "skipped: BEAT_RAY_URL is not set"
    unique = {post[id_key]: post for post in posts}
    chosen = sorted(unique.values(), key=lambda post: (-_int(post[plays_key]), post[id_key]))[:CATEGORIZE_MAX_POSTS]
    labels: dict[str, dict[str, Any]] = {}
    for start in range(0, len(chosen), CATEGORIZE_CHUNK):
        chunk = chosen[start : start + CATEGORIZE_CHUNK]
        texts = [(post[id_key], post[text_key] or "") for post in chunk]
        labels.update(await client.categorize([(i, t) for i, t in texts if t.strip()], request_id=ctx.request_id))
    for post_id, label in labels.items():
        post = unique[post_id]
        ctx.emit(
            Post(
                platform=platform,
                source=CATEGORIZATION_SOURCE,
                shortcode=post_id,
                profile_id=post.get("profile_id") or post.get("channel_id"),
                handle=post.get("handle"),
                publish_time=post.get("publish_time"),
                dimensions={"categorization": label},
            )
        )
    ctx.used(ray.SOURCE)
    return labels, "done"


def _shares(gender_age: Any) -> dict[tuple[str, str], float]:
    """An account's gender/age audience as fractions of its whole: ``{(gender, age group): share}``."""
    if not isinstance(gender_age, dict):
        return {}
    cells = {
        (str(gender), str(age)): float(value)
        for gender, ages in gender_age.items()
        if isinstance(ages, dict)
        for age, value in ages.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    }
    total = sum(cells.values())
    return {cell: value / total for cell, value in cells.items()} if total > 0 else {}


def demographic_rows(
    posts: Sequence[dict[str, Any]], account_key: str, audiences: dict[str, Any]
) -> list[dict[str, Any]]:
    """Per category scoring over 0.5: the mean gender/age split of the accounts behind its posts."""
    accounts_by_category: dict[str, set[str]] = {}
    for post in posts:
        if post.get("category") and (post.get("category_score") or 0) > DEMOGRAPHIC_MIN_SCORE and post[account_key]:
            accounts_by_category.setdefault(post["category"], set()).add(post[account_key])
    rows = []
    for category in sorted(accounts_by_category):
        accounts = accounts_by_category[category]
        splits = [shares for account in sorted(accounts) if (shares := _shares(audiences.get(account)))]
        base = {
            "category": category,
            "accounts": len(accounts),
            "accounts_without_insights": len(accounts) - len(splits),
        }
        if not splits:
            rows.append({**base, "gender": None, "age_group": None, "share": None})
            continue
        cells = sorted({cell for shares in splits for cell in shares})
        for gender, age in cells:
            mean = sum(shares.get((gender, age), 0.0) for shares in splits) / len(splits)
            rows.append({**base, "gender": gender, "age_group": age, "share": round(mean, 6)})
    return rows


def _completion(ctx: FlowContext, platform: Platform, paths: dict[str, str], **fields: Any) -> None:
    bucket = ctx.tools.bucket if ctx.tools else None
    ctx.emit(ReportDone(platform=platform, paths=paths, bucket=bucket, **fields))


async def fetch_keyword_collection(ctx: FlowContext, params: KeywordCollectionParams) -> dict:
    assert ctx.queries is not None, "the worker runtime opens the Postgres reads"
    platform = Platform(params.platform)
    matches = await reads.keyword_matches(
        ctx.queries, params.platform, params.keywords, params.start_date, params.end_date
    )
    if platform is Platform.INSTAGRAM:
        rows = [instagram_row(match) for match in matches]
        id_key, text_key, plays_key, account_key, schema = (
            "shortcode",
            "caption",
            "plays",
            "profile_id",
            files.KEYWORD_INSTAGRAM,
        )
    else:
        rows = [youtube_row(match) for match in matches]
        id_key, text_key, plays_key, account_key, schema = (
            "video_id",
            "title",
            "views",
            "channel_id",
            files.KEYWORD_YOUTUBE,
        )
    labels, categorization = await _categorize(ctx, platform, rows, id_key, text_key, plays_key)
    for row in rows:
        label = labels.get(row[id_key])
        row["category"] = label["label"] if label else None
        row["category_score"] = label["score"] if label else None
    audiences = await reads.audiences(
        ctx.queries, params.platform, sorted({r[account_key] for r in rows if r[account_key]})
    )
    folder = files.dated("keyword_collections", utcnow().date())
    paths = {
        "report": await files.store(ctx, f"{folder}/{params.job_id}.parquet", schema, rows),
        "demographic": await files.store(
            ctx,
            f"{folder}/{params.job_id}_demographic.parquet",
            files.DEMOGRAPHIC,
            demographic_rows(rows, account_key, audiences),
        ),
    }
    _completion(ctx, platform, paths, report="keyword_collection", job_id=params.job_id, summary={"rows": len(rows)})
    return ctx.summary(
        job_id=params.job_id,
        rows=len(rows),
        categorized=len(labels),
        categorization=categorization,
        report_path=paths["report"],
        demographic_report_path=paths["demographic"],
    )


def sentiment_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per post: its comments, the count of each sentiment and the mean score."""
    by_post: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_post.setdefault(row["shortcode"], []).append(row)
    summary = []
    for shortcode, comments in by_post.items():
        counts = Counter(str(row["sentiment"]).upper() for row in comments)
        scores = [row["score"] for row in comments if row["score"] is not None]
        summary.append(
            {
                "shortcode": shortcode,
                "comments": len(comments),
                "positive": counts["POSITIVE"],
                "negative": counts["NEGATIVE"],
                "neutral": counts["NEUTRAL"],
                "mean_score": sum(scores) / len(scores) if scores else None,
            }
        )
    return summary


async def fetch_sentiment_report(ctx: FlowContext, params: SentimentReportParams) -> dict:
    assert ctx.queries is not None, "the worker runtime opens the Postgres reads"
    if not params.shortcodes:
        raise CollectionUnknown(NO_SHORTCODES)
    rows = [dict(row) for row in await reads.sentiments(ctx.queries, params.shortcodes)]
    environment = ctx.tools.environment if ctx.tools else "local"
    folder = files.dated(f"sentiment_report/{environment}", utcnow().date())
    name = f"{params.collectionType}_{params.collectionId}"
    paths = {
        "report": await files.store(ctx, f"{folder}/{name}.parquet", files.SENTIMENT, rows),
        "summary": await files.store(
            ctx, f"{folder}/{name}_summary.parquet", files.SENTIMENT_SUMMARY, sentiment_summary(rows)
        ),
    }
    posts = len({row["shortcode"] for row in rows})
    _completion(
        ctx,
        ctx.request.platform or Platform.INSTAGRAM,
        paths,
        report="sentiment_collection",
        collection_type=params.collectionType,
        collection_id=params.collectionId,
        summary={"comments": len(rows), "posts": posts},
    )
    return ctx.summary(
        comments=len(rows), posts=posts, sentiment_report_path=paths["report"], summary_path=paths["summary"]
    )
