"""The daily history the CSV exports read: a YouTube profile or post event feeds its entity table and its day's
history row, the day's last observation winning, null-safe, an older observation never overwriting a newer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sinks.routing import decode
from sinks.writer import write_batch
from topics import names
from topics.models import Platform, PostLog, ProfileLog

NOON = datetime(2026, 11, 20, 12, tzinfo=UTC)


def profile(channel: str, at: datetime, **metrics: int | None) -> tuple[str, bytes]:
    event = ProfileLog(
        platform=Platform.YOUTUBE,
        source="ytapitoken",
        profile_id=channel,
        metrics=metrics,
        dimensions={"title": "a channel"},
        event_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        attempt=1,
        observed_at=at,
    )
    return names.PROFILE_LOG, event.to_bytes()


def post(video: str, channel: str, at: datetime, **metrics: int | None) -> tuple[str, bytes]:
    event = PostLog(
        platform=Platform.YOUTUBE,
        source="ytapitoken",
        shortcode=video,
        profile_id=channel,
        metrics=metrics,
        dimensions={},
        event_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        attempt=1,
        observed_at=at,
    )
    return names.POST_LOG, event.to_bytes()


async def write(pool, *records: tuple[str, bytes]) -> None:
    async with pool.acquire() as conn:
        written = await write_batch(conn, decode(records))
    assert written.poison == []


async def test_the_days_last_observation_wins_null_safe(pool):
    channel = f"UChistory{uuid.uuid4().hex[:10]}"
    hour = timedelta(hours=1)
    await write(
        pool,
        profile(channel, NOON, subscriber_count=10, view_count=100, video_count=1),
        profile(channel, NOON + hour, subscriber_count=12, view_count=None, video_count=2),
    )
    # Later batches: an older observation of the same day, and the next day.
    await write(pool, profile(channel, NOON - hour, subscriber_count=5, view_count=50, video_count=0))
    await write(pool, profile(channel, NOON + timedelta(days=1), subscriber_count=20, view_count=300))
    rows = await pool.fetch(
        "SELECT day, subscribers, views, uploads FROM youtube_account_daily WHERE channel_id = $1 ORDER BY day", channel
    )
    assert [tuple(r) for r in rows] == [
        (NOON.date(), 12, 100, 2),
        (NOON.date() + timedelta(days=1), 20, 300, None),
    ]


async def test_post_history_and_events_without_counts(pool):
    channel, video = f"UChistory{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:11]
    await write(
        pool,
        post(video, channel, NOON, view_count=1000, likes=10, comments=1),
        # A type probe or a search snippet: the entity row gets what it says, the history nothing.
        post(video, channel, NOON + timedelta(days=1)),
        profile(channel, NOON),
    )
    rows = await pool.fetch(
        "SELECT day, channel_id, views, likes, comments FROM youtube_post_daily WHERE shortcode = $1", video
    )
    assert [tuple(r) for r in rows] == [(NOON.date(), channel, 1000, 10, 1)]
    assert await pool.fetchval("SELECT count(*) FROM youtube_account_daily WHERE channel_id = $1", channel) == 0
    assert await pool.fetchval("SELECT count(*) FROM youtube_account WHERE channel_id = $1", channel) == 1
