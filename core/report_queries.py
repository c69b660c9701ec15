"""The reads of the keyword and sentiment collection reports (legacy §11.2), over Beat's own tables.

The legacy matched captions in ClickHouse with ``(?i).*\\b(\\S*?)(<kw>)\\b.*``. Postgres runs the same match:
its word boundary is spelled ``\\y``, and the keyword is escaped so that its regex metacharacters match
themselves (in Postgres' advanced regexes a backslash before a non-alphanumeric character makes it literal).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from core.queries import StoredData

_SPECIAL = re.compile(r"([^\w\s])")


def keyword_pattern(keyword: str) -> str:
    """The legacy per-keyword caption regex in Postgres' syntax, for ``~*`` (case-insensitive)."""
    return r"\y\S*?" + _SPECIAL.sub(r"\\\1", keyword.strip()) + r"\y"


def _window(start: date, end: date) -> tuple[datetime, datetime]:
    # Both dates are whole days, the end included.
    utc = UTC
    return datetime.combine(start, time(), utc), datetime.combine(end + timedelta(days=1), time(), utc)


INSTAGRAM_MATCHES = """
SELECT k.keyword, p.shortcode, p.handle, p.profile_id, p.caption, p.publish_time, p.post_type,
       p.likes, p.comments, p.plays, p.reach, a.followers
FROM unnest($1::text[], $2::text[]) AS k(keyword, pattern)
JOIN instagram_post p ON p.caption ~* k.pattern
LEFT JOIN instagram_account a ON a.profile_id = p.profile_id
WHERE p.publish_time >= $3 AND p.publish_time < $4
ORDER BY k.keyword, p.plays DESC NULLS LAST, p.shortcode
"""

# A video matching several keywords is one row: the YouTube report has no keyword column.
YOUTUBE_MATCHES = """
SELECT DISTINCT ON (p.views, p.shortcode)
       p.shortcode AS video_id, p.channel_id, p.title, p.views, p.likes, p.comments, a.subscribers
FROM unnest($1::text[], $2::text[]) AS k(keyword, pattern)
JOIN youtube_post p ON p.title ~* k.pattern
LEFT JOIN youtube_account a ON a.channel_id = p.channel_id
WHERE p.published_at >= $3 AND p.published_at < $4
ORDER BY p.views DESC NULLS LAST, p.shortcode
"""

INSTAGRAM_AUDIENCES = """
SELECT profile_id AS account, audience_gender_age AS gender_age
FROM instagram_profile_insights WHERE profile_id = ANY($1::text[])
"""

YOUTUBE_AUDIENCES = """
SELECT channel_id AS account, gender_age FROM youtube_profile_insights WHERE channel_id = ANY($1::text[])
"""

SENTIMENTS = """
SELECT platform_post_id AS shortcode, comment_id, comment, sentiment, score
FROM sentiment_log WHERE platform_post_id = ANY($1::text[])
ORDER BY platform_post_id, comment_id
"""


async def keyword_matches(
    data: StoredData, platform: str, keywords: Sequence[str], start: date, end: date
) -> list[asyncpg.Record]:
    query = INSTAGRAM_MATCHES if platform == "INSTAGRAM" else YOUTUBE_MATCHES
    unique = list(dict.fromkeys(keyword.strip() for keyword in keywords))
    return await data.fetch(query, unique, [keyword_pattern(k) for k in unique], *_window(start, end))


async def audiences(data: StoredData, platform: str, accounts: Sequence[str]) -> dict[str, Any]:
    """``{account: gender_age}`` of the accounts Beat holds insights for."""
    query = INSTAGRAM_AUDIENCES if platform == "INSTAGRAM" else YOUTUBE_AUDIENCES
    rows = await data.fetch(query, list(accounts))
    # The worker's pool decodes no jsonb: a value arrives as its JSON text.
    return {row["account"]: json.loads(row["gender_age"]) for row in rows if row["gender_age"] is not None}


async def sentiments(data: StoredData, shortcodes: Sequence[str]) -> list[asyncpg.Record]:
    return await data.fetch(SENTIMENTS, list(dict.fromkeys(shortcodes)))
