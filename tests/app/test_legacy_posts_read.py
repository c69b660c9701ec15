"""The recent-posts read and post_metrics against real Postgres: filters, order, derived numbers, CDN URLs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.legacy_posts import post_metrics, recent_posts
from sinks.derived import PostNumbers, engagement_rate, reach_estimate
from sinks.derived import post_metrics as derived_post_metrics

NOW = datetime(2026, 11, 1, tzinfo=UTC)


async def _account(pool, followers: int | None = 1000) -> str:
    profile_id = f"p{uuid.uuid4().hex[:10]}"
    await pool.execute(
        "INSERT INTO instagram_account (profile_id, handle, followers) VALUES ($1, $2, $3)",
        profile_id,
        f"h_{profile_id}",
        followers,
    )
    return profile_id


async def _post(pool, profile_id: str, n: int, post_type: str, **values) -> str:
    shortcode = f"{profile_id}_{post_type}_{n}"
    row = {
        "thumbnail_url": f"https://scontent.cdninstagram.com/v/{shortcode}.jpg?sig=1",
        "publish_time": NOW - timedelta(hours=n),
        "likes": 100 + n,
        "comments": 10,
        "plays": 5000 + n if post_type == "reels" else None,
        **values,
    }
    names = ", ".join(row)
    marks = ", ".join(f"${i}" for i in range(4, len(row) + 4))
    await pool.execute(
        f"INSERT INTO instagram_post (shortcode, profile_id, post_type, {names}) VALUES ($1, $2, $3, {marks})",
        shortcode,
        profile_id,
        post_type,
        *row.values(),
    )
    return shortcode


async def test_twelve_newest_non_story_posts_with_a_thumbnail(pool) -> None:
    profile_id = await _account(pool)
    for n in range(10):
        await _post(pool, profile_id, n, "image")
        await _post(pool, profile_id, n, "reels")
    await _post(pool, profile_id, 0, "story", publish_time=NOW + timedelta(hours=1))
    await _post(pool, profile_id, 0, "carousel", thumbnail_url=None, publish_time=NOW + timedelta(hours=1))
    await _post(pool, profile_id, 1, "carousel", thumbnail_url="", publish_time=NOW + timedelta(hours=1))

    posts = await recent_posts(pool, profile_id)

    assert len(posts) == 12
    assert [p.publish_time for p in posts] == sorted((p.publish_time for p in posts), reverse=True)
    assert {p.post_type for p in posts} == {"image", "reels"}
    assert posts[0].shortcode in (f"{profile_id}_image_0", f"{profile_id}_reels_0")


async def test_the_reels_variant_needs_a_play_count(pool) -> None:
    profile_id = await _account(pool)
    await _post(pool, profile_id, 0, "reels", plays=None)
    await _post(pool, profile_id, 1, "reels", plays=0)
    await _post(pool, profile_id, 2, "image")

    posts = await recent_posts(pool, profile_id, post_types=("reels",))

    assert [p.shortcode for p in posts] == [f"{profile_id}_reels_1"]


async def test_numbers_come_from_the_sink_formulas(pool) -> None:
    profile_id = await _account(pool, followers=2500)
    await _post(pool, profile_id, 0, "reels", likes=300, comments=20, plays=9000, reach=None, views=12)
    await _post(pool, profile_id, 1, "image", likes=200, comments=5, reach=0)
    await _post(pool, profile_id, 2, "carousel", likes=50, comments=1, reach=777)

    reel, image, carousel = await recent_posts(pool, profile_id)

    assert reel.post_url == f"https://www.instagram.com/reel/{reel.shortcode}"
    assert image.post_url == f"https://www.instagram.com/p/{image.shortcode}"
    assert carousel.post_url == f"https://www.instagram.com/p/{carousel.shortcode}"
    assert reel.metrics.model_dump() == {
        "reach": reach_estimate("reels", 300, 9000, 2500),
        "views": 12,
        "likes": 300,
        "comments": 20,
        "play_count": 9000,
        "engagement_rate": engagement_rate(300, 20, 2500),
    }
    assert image.metrics.reach == reach_estimate("image", 200, None, 2500) > 0
    assert carousel.metrics.reach == 777
    assert image.dimensions.comments == 5


async def test_a_stored_thumbnail_is_answered_from_the_cdn(pool) -> None:
    profile_id = await _account(pool)
    stored = await _post(pool, profile_id, 0, "image")
    other = await _post(pool, profile_id, 1, "image")
    await pool.execute(
        "INSERT INTO asset_log (entity_id, entity_type, platform, asset_type, asset_url) "
        "VALUES ($1, 'POST', 'INSTAGRAM', 'IMAGE', $2)",
        stored,
        f"assets/posts/instagram/{stored}.jpg",
    )

    with_cdn = await recent_posts(pool, profile_id, cdn_base_url="https://cdn.example.com/")
    without = await recent_posts(pool, profile_id)

    assert with_cdn[0].dimensions.thumbnail_url == f"https://cdn.example.com/assets/posts/instagram/{stored}.jpg"
    assert with_cdn[1].dimensions.thumbnail_url == f"https://scontent.cdninstagram.com/v/{other}.jpg?sig=1"
    assert without[0].dimensions.thumbnail_url == f"https://scontent.cdninstagram.com/v/{stored}.jpg?sig=1"


async def test_post_metrics_over_twelve_reels_and_twelve_statics(pool) -> None:
    profile_id = await _account(pool, followers=4000)
    for n in range(15):
        await _post(pool, profile_id, n, "reels", likes=100 + 7 * n)
        await _post(pool, profile_id, n, "image" if n % 2 else "carousel", likes=40 + 3 * n)
    await _post(pool, profile_id, 0, "story", likes=10_000)

    metrics = await post_metrics(pool, profile_id)

    window = [
        PostNumbers(
            t,
            (100 if t == "reels" else 40) + (7 if t == "reels" else 3) * n,
            10,
            5000 + n if t == "reels" else None,
            publish_time=NOW - timedelta(hours=n),
        )
        for n in range(12)
        for t in ("reels", "image" if n % 2 else "carousel")
    ]
    expected = derived_post_metrics(window, 4000)
    assert metrics.model_dump(exclude={"story"}) == expected
    assert metrics.story.avg_reach == expected["story_reach"] > 0
    assert metrics.reels.count == 8 and metrics.static.count == 8 and metrics.all.count == 8


async def test_no_posts_no_followers(pool) -> None:
    profile_id = await _account(pool, followers=None)
    assert await recent_posts(pool, profile_id) == []
    metrics = await post_metrics(pool, profile_id)
    assert metrics.all.count == 0 and metrics.avg_engagement is None and metrics.story_reach == 0.0
