"""The queries behind the CSV exports: the legacy columns, in the legacy order, under the legacy names
(legacy §11.2), read from Beat's own tables. Every value is a parameter; ids travel as arrays and keep
the order they were given in (``WITH ORDINALITY``)."""

from __future__ import annotations

# ISO 8601 durations as the Data API gives them (PT1H2M3S, P1DT2S) in seconds; anything else is NULL rather
# than an error that would stop the whole export.
SECONDS = (
    "CASE WHEN p.duration ~ '^P(\\d+D)?(T(?=\\d)(\\d+H)?(\\d+M)?(\\d+S)?)?$' AND p.duration <> 'P' "
    "THEN EXTRACT(EPOCH FROM p.duration::interval)::bigint END"
)
PUBLISHED = "to_char(p.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


def _video_columns(tags: str, duration_name: str) -> str:
    return (
        f'p.shortcode AS "id", {PUBLISHED} AS "publishedAt", p.channel_id AS "channelId", '
        f'p.title AS "title", p.description AS "description", p.channel_title AS "channelTitle", '
        f'{tags} AS "tags", p.category_id AS "categoryId", p.audio_language AS "defaultAudioLanguage", '
        f'{SECONDS} AS "{duration_name}", p.views AS "viewCount", p.likes AS "likeCount", '
        f'p.comments AS "commentCount"'
    )


CHANNELS = """
SELECT a.channel_id AS "id", a.title AS "title", a.description AS "description", a.custom_url AS "customUrl",
       a.country AS "country", a.views AS "viewCount", a.subscribers AS "subscriberCount", a.uploads AS "videoCount"
FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n) JOIN youtube_account a ON a.channel_id = i.id
ORDER BY i.n
"""

FRESH_CHANNELS = """
SELECT channel_id FROM youtube_account
WHERE channel_id = ANY($1::text[]) AND observed_at >= now() - make_interval(secs => $2)
"""

CHANNEL_VIDEOS = f"""
SELECT {_video_columns("p.keywords", "seconds")}
FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n) JOIN youtube_post p ON p.channel_id = i.id
WHERE p.published_at >= $2::date::timestamp AT TIME ZONE 'UTC'
      AND p.published_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'
ORDER BY i.n, p.published_at DESC, p.shortcode
"""

PLAYLIST_VIDEOS = f"""
SELECT p.shortcode AS "id", {PUBLISHED} AS "publishedAt", p.channel_id AS "channelId", i.playlist AS "playlistId",
       p.title AS "title", p.description AS "description", p.channel_title AS "channelTitle", p.tags AS "tags",
       p.category_id AS "categoryId", p.audio_language AS "defaultAudioLanguage", {SECONDS} AS "seconds",
       p.views AS "viewCount", p.likes AS "likeCount", p.comments AS "commentCount"
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS i(playlist, id, n) JOIN youtube_post p ON p.shortcode = i.id
ORDER BY i.n
"""

VIDEO_DETAILS = f"""
SELECT {_video_columns("p.tags", "duration")}
FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n) JOIN youtube_post p ON p.shortcode = i.id
ORDER BY i.n
"""

# The keyword job's videos: each once, in the order the mapping first names it.
KEYWORD_VIDEOS = f"""
SELECT {_video_columns("p.tags", "duration")}, p.keywords AS "post_keywords", p.thumbnail AS "post_thumbnail",
       p.post_type AS "post_type"
FROM (SELECT id, min(n) AS n FROM unnest($1::text[]) WITH ORDINALITY AS m(id, n) GROUP BY id) AS i
JOIN youtube_post p ON p.shortcode = i.id
ORDER BY i.n
"""

# The channels behind the job's videos; a thumbnail's default size becomes the high-quality one (legacy).
KEYWORD_CHANNELS = """
SELECT a.channel_id AS "channelId", a.title AS "title", a.description AS "description",
       a.custom_url AS "custom_url", to_char(a.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
       AS "publishedAt", a.country AS "country", a.views AS "viewCount", a.subscribers AS "subscriberCount",
       a.uploads AS "videoCount",
       CASE a.is_subscriber_count_hidden WHEN true THEN 'true' WHEN false THEN 'false' END AS "hiddenSubscriberCount",
       regexp_replace(a.thumbnail, '/default\\.jpg', '/hqdefault.jpg') AS "profile_pic_url"
FROM youtube_account a
WHERE a.channel_id IN (SELECT DISTINCT p.channel_id FROM youtube_post p WHERE p.shortcode = ANY($1::text[]))
ORDER BY a.channel_id
"""

KEYWORD_MAPPING = """
SELECT m.topic AS "topic", m.video_id AS "video_id" FROM unnest($1::text[], $2::text[]) AS m(topic, video_id)
"""


def _stats(period: str, label: str, label_format: str, gap: str) -> str:
    """Lifetime counts per channel per ``period`` (its last observed day) with the change from the period
    before, when that one was observed at most ``gap`` before (legacy gap rules); the period before the
    range is read so the first row in it has its change."""
    return f"""
WITH last AS (
    SELECT DISTINCT ON (d.channel_id, date_trunc('{period}', d.day)) d.channel_id, i.n,
           date_trunc('{period}', d.day)::date AS period, d.day, d.views, d.subscribers, d.uploads
    FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n) JOIN youtube_account_daily d ON d.channel_id = i.id
    WHERE d.day >= date_trunc('{period}', $2::date - interval '1 {period}') AND d.day <= $3::date
    ORDER BY d.channel_id, date_trunc('{period}', d.day), d.day DESC
), changes AS (
    SELECT l.*,
           CASE WHEN l.day - lag(l.day) OVER w <= {gap} THEN l.views - lag(l.views) OVER w END AS netviewchange,
           CASE WHEN l.day - lag(l.day) OVER w <= {gap} THEN l.subscribers - lag(l.subscribers) OVER w END
               AS subchange,
           CASE WHEN l.day - lag(l.day) OVER w <= {gap} THEN l.uploads - lag(l.uploads) OVER w END AS uploadchange
    FROM last l
    WINDOW w AS (PARTITION BY l.channel_id ORDER BY l.period)
)
SELECT channel_id AS "id", to_char(period, '{label_format}') AS "{label}", views AS "lifetime_views",
       subscribers AS "lifetime_subscribers", uploads AS "lifetime_uploads", netviewchange AS "netviewchange",
       subchange AS "subchange", uploadchange AS "uploadchange"
FROM changes
WHERE period >= date_trunc('{period}', $2::date)
ORDER BY n, period
"""


MONTHLY_STATS = _stats("month", "month", "YYYY-MM-DD", "31")
DAILY_STATS = _stats("day", "created_at", "YYYY-MM-DD", "1")

AGE_GROUPS = (
    ("13_17", "age13-17"),
    ("18_24", "age18-24"),
    ("25_34", "age25-34"),
    ("35_44", "age35-44"),
    ("45_54", "age45-54"),
    ("55_64", "age55-64"),
    ("65", "age65-"),
)


def _share(gender: str, group: str) -> str:
    return f"(g.gender_age -> '{gender}' ->> '{group}')::float8"


_MALE = [f'{_share("male", group)} AS "m_{name}"' for name, group in AGE_GROUPS]
_FEMALE = [f'{_share("female", group)} AS "f_{name}"' for name, group in AGE_GROUPS]

# The audience's gender and age split (YouTube Analytics viewer percentages), its sums per gender, and the
# channel's subscribers as the audience the shares are of.
DEMOGRAPHIC_ROWS = f"""
SELECT {", ".join(_MALE)}, {", ".join(_FEMALE)},
       (SELECT sum(value::float8) FROM jsonb_each_text(g.gender_age -> 'male')) AS "male",
       (SELECT sum(value::float8) FROM jsonb_each_text(g.gender_age -> 'female')) AS "female",
       a.subscribers AS "total_audience", i.id AS "id"
FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n)
JOIN youtube_profile_insights g ON g.channel_id = i.id
LEFT JOIN youtube_account a ON a.channel_id = i.id
WHERE jsonb_typeof(g.gender_age) = 'object'
ORDER BY i.n
"""
DEMOGRAPHIC_CSV = DEMOGRAPHIC_ROWS
DEMOGRAPHIC_JSON = f"SELECT row_to_json(r)::text FROM ({DEMOGRAPHIC_ROWS}) AS r"

GEOGRAPHY = """
SELECT g.channel_id AS "channel_id", c.key AS "country",
       round(100 * (c.value::text)::numeric / NULLIF(sum((c.value::text)::numeric) OVER w, 0), 2) AS "percentage"
FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n)
JOIN youtube_profile_insights g ON g.channel_id = i.id
CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(g.country) = 'object' THEN g.country END) AS c
WHERE jsonb_typeof(c.value) = 'number'
WINDOW w AS (PARTITION BY g.channel_id)
ORDER BY i.n, (c.value::text)::numeric DESC, c.key
"""

# filter_by -> the youtube_post column whose most frequent value over the range is the channel's category.
ENGAGEMENT_CATEGORY = {"channel_gcc_category": "category", "channel_yt_category": "category_id"}


def engagement(filter_by: str) -> str:
    column = ENGAGEMENT_CATEGORY[filter_by]  # one of two fixed names, never the caller's text
    return f"""
SELECT i.id AS "Channel Id",
       (SELECT mode() WITHIN GROUP (ORDER BY p.{column}) FROM youtube_post p
        WHERE p.channel_id = i.id AND p.published_at >= $2::date::timestamp AT TIME ZONE 'UTC'
      AND p.published_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC') AS "{filter_by}",
       a.subscribers AS "Subscriber Count"
FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n) LEFT JOIN youtube_account a ON a.channel_id = i.id
ORDER BY i.n
"""


AD_FEATURES = f"""
SELECT p.shortcode AS "videoId", p.views AS "view", a.uploads AS "Channel_videoCount", {SECONDS} AS "duration",
       a.subscribers AS "Channel_SubscriberCount", NULL::bigint AS "DislikeCount",
       (current_date - (p.published_at AT TIME ZONE 'UTC')::date) AS "Videoage", p.likes AS "likecount",
       p.comments AS "commentcount"
FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n) JOIN youtube_post p ON p.shortcode = i.id
LEFT JOIN youtube_account a ON a.channel_id = p.channel_id
ORDER BY i.n
"""

VIDEO_CHANNELS = (
    "SELECT DISTINCT channel_id FROM youtube_post WHERE shortcode = ANY($1::text[]) AND channel_id IS NOT NULL"
)
