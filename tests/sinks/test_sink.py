"""The Postgres sink: upsert rules, one statement per table per batch, poison isolation, outages, derived
metrics and asset requests; against the real Postgres, and through a real ``beat sink`` on the real broker."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from providers.sandbox.config import SandboxConfig
from sinks import derived, instagram
from sinks.derived import PostNumbers
from sinks.pictures import ASSET_FLOW, STORY_ASSET_FLOW, half_md5
from sinks.routing import decode
from sinks.upsert import merge_rows
from sinks.writer import Written, write_batch
from tests.conftest import isolated
from tests.support import EventCollector, TcpProxy, unique
from topics import names
from topics.models import ActivityLog, AssetLog, Model, OrderLog, Platform, PostLog, ProfileLog, RelationshipLog

IG, YT = Platform.INSTAGRAM, Platform.YOUTUBE
T0 = datetime(2026, 3, 1, tzinfo=UTC)
CDN = "https://scontent-bom1-1.cdninstagram.com/v/t51.2885-19"
TOPIC_OF = {
    ProfileLog: names.PROFILE_LOG,
    PostLog: names.POST_LOG,
    ActivityLog: names.POST_ACTIVITY_LOG,
    RelationshipLog: names.PROFILE_RELATIONSHIP_LOG,
    OrderLog: names.ORDER_LOG,
    AssetLog: names.ASSET_LOG,
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def post(
    shortcode: str,
    seconds: float,
    *,
    kind: str = "post",
    profile_id: str | None = None,
    metrics: dict | None = None,
    platform: Platform = IG,
    publish_time: datetime | None = None,
    **dimensions,
) -> PostLog:
    return PostLog(
        event_id=str(uuid.uuid4()),
        kind=kind,
        request_id="test-sink",
        source="test",
        platform=platform,
        observed_at=at(seconds),
        profile_id=profile_id,
        shortcode=shortcode,
        publish_time=publish_time,
        metrics=metrics or {},
        dimensions=dimensions,
    )


def profile(
    profile_id: str,
    seconds: float,
    *,
    kind: str = "profile",
    platform: Platform = IG,
    metrics: dict | None = None,
    handle: str | None = None,
    **dimensions,
) -> ProfileLog:
    return ProfileLog(
        event_id=str(uuid.uuid4()),
        kind=kind,
        request_id="test-sink",
        source="test",
        platform=platform,
        observed_at=at(seconds),
        profile_id=profile_id,
        handle=handle,
        metrics=metrics or {},
        dimensions=dimensions,
    )


def picture(name: str, signature: int = 0) -> str:
    return f"{CDN}/{name}_n.jpg?stp=dst-jpg_s320x320&oh=00_{signature:08x}&oe=6A1B2C3D"


def records(events: list[Model]) -> list[tuple[str, bytes]]:
    return [(TOPIC_OF[type(e)], e.to_bytes()) for e in events]


async def write(pool: asyncpg.Pool, *batches: list[Model]) -> list[Written]:
    written = []
    for events in batches:
        async with pool.acquire() as conn:
            written.append(await write_batch(conn, decode(records(events))))
    return written


def post_row_of(event: PostLog) -> dict:
    [(_, row)] = decode(records([event])).rows[instagram.POST]
    return row


async def post_row(pool: asyncpg.Pool, shortcode: str) -> dict:
    row = await pool.fetchrow("SELECT * FROM instagram_post WHERE shortcode = $1", shortcode)
    assert row is not None, f"no instagram_post row for {shortcode}"
    return dict(row)


# The upsert rules, against Postgres


async def test_null_and_empty_values_never_overwrite_stored_ones(pool):
    code = unique("N")
    await write(
        pool,
        [
            post(
                code,
                10,
                metrics={"likes": 10, "comments": 2},
                caption="first",
                keywords="['first']",
                story_links=["https://a"],
            )
        ],
    )
    await write(pool, [post(code, 20, metrics={"likes": None, "comments": 3}, caption="", keywords="", story_links=[])])
    row = await post_row(pool, code)
    assert (row["likes"], row["comments"], row["caption"], row["keywords"], row["story_links"]) == (
        10,
        3,
        "first",
        "['first']",
        ["https://a"],
    )
    assert row["observed_at"] == at(20)


async def test_an_older_observation_never_overwrites_a_newer_one(pool):
    code = unique("O")
    await write(pool, [post(code, 20, metrics={"likes": 20}, caption="newer")])
    await write(pool, [post(code, 10, metrics={"likes": 10, "comments": 1}, caption="older", post_type="image")])
    row = await post_row(pool, code)
    assert (row["likes"], row["caption"]) == (20, "newer")
    # What the newer observation did not know is still filled in, and the row keeps its newer time.
    assert (row["comments"], row["post_type"], row["observed_at"]) == (1, "image", at(20))


async def test_write_once_columns_keep_their_first_value(pool):
    code = unique("W")
    first = {"profile_follower": 1000, "profile_er": 1.5, "profile_static_er": None, "profile_reels_er": 2.5}
    later = {"profile_follower": 2000, "profile_er": 9.9, "profile_static_er": 3.3, "profile_reels_er": 9.9}
    await write(pool, [post(code, 10, kind="story", metrics=first, post_type="story")])
    await write(pool, [post(code, 20, kind="story", metrics=later, post_type="story")])
    row = await post_row(pool, code)
    # An empty write-once column takes its first value; a filled one never changes.
    assert (row["profile_follower"], row["profile_er"], row["profile_static_er"], row["profile_reels_er"]) == (
        1000,
        1.5,
        3.3,
        2.5,
    )


async def test_a_batch_merges_each_key_first_and_writes_each_table_in_one_statement(pool):
    code, other = unique("M"), unique("M")
    await write(pool, [post(code, 50, metrics={"likes": 50}, caption="stored")])
    statements: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda logged: statements.append(logged.query))
        try:
            await write_batch(
                conn,
                decode(
                    records(
                        [
                            # Older than the stored row: its caption must not replace the stored one, its
                            # comments fill a gap.
                            post(code, 40, metrics={"likes": 40, "comments": 4}, caption="older"),
                            # Newer, but without a caption: the merged row must not carry the older caption in
                            # as "newer".
                            post(code, 60, metrics={"likes": 60}),
                            post(other, 5, metrics={"likes": 1}, caption="one"),
                            post(other, 7, metrics={"likes": 3}),
                            post(other, 6, metrics={"likes": 2, "comments": 9}, caption="two"),
                        ]
                    )
                ),
            )
        finally:
            conn.remove_query_logger(statements.append)
    row = await post_row(pool, code)
    assert (row["likes"], row["comments"], row["caption"], row["observed_at"]) == (60, 4, "stored", at(60))
    row = await post_row(pool, other)
    # Applied in arrival order: likes 3 (t=7) stays over the late t=6, which only fills what was empty.
    assert (row["likes"], row["comments"], row["caption"], row["observed_at"]) == (3, 9, "one", at(7))
    inserts = [s for s in statements if 'INSERT INTO "instagram_post"' in s]
    assert len(inserts) == 1 and "unnest(" in inserts[0]


def test_a_merged_row_carries_only_what_its_rows_set():
    """What was read as stored is not written back: a write made in between (another sink, mid-rebalance)
    would be reverted by it."""
    stored = {"K": {"shortcode": "K", "caption": "stored", "likes": 5, "source": "test", "observed_at": at(50)}}
    rows = [
        post_row_of(post("K", 40, metrics={"likes": 4, "comments": 1}, caption="older")),
        post_row_of(post("K", 60, metrics={"likes": 6})),
    ]
    assert merge_rows(instagram.POST, rows, stored) == [
        {"shortcode": "K", "comments": 1, "likes": 6, "source": "test", "observed_at": at(60)}
    ]
    # All older than what is stored: stamped with their own time, so the statement only fills gaps.
    older = merge_rows(instagram.POST, [*rows[:1], post_row_of(post("K", 45, caption="also older"))], stored)
    assert older == [{"shortcode": "K", "comments": 1, "observed_at": at(45)}]


async def test_replaying_changes_nothing(pool):
    account, code, story = unique("r"), unique("R"), unique("S")
    events = [
        profile(account, 10, metrics={"followers": 500}, handle="replay", profile_pic_url=picture(account)),
        post(
            code,
            10,
            profile_id=account,
            metrics={"likes": 5, "comments": 1},
            post_type="image",
            publish_time=at(0),
            thumbnail_src=picture(code),
        ),
        post(code, 30, profile_id=account, metrics={"likes": 7}),
        post(code, 20, metrics={"reach": 70, "impressions": 90}, kind="post_insights"),
        post(
            story,
            15,
            kind="story",
            profile_id=account,
            metrics={"profile_follower": 500},
            post_type="story",
            thumbnail_src=picture(story),
            story_hashtags=["a"],
        ),
        ActivityLog(
            event_id=str(uuid.uuid4()),
            kind="activity",
            request_id="r",
            source="test",
            platform=IG,
            observed_at=at(10),
            activity_type="COMMENT",
            actor_profile_id=account,
            shortcode=code,
            metrics={"likes": 1},
            dimensions={"comment_id": "c1", "text": "hi"},
        ),
    ]
    first = (await write(pool, events))[0]
    assert len(first.asset_requests) == 3

    async def snapshot():
        return (
            await pool.fetch(
                "SELECT xmin::text, * FROM instagram_post WHERE shortcode = ANY($1) ORDER BY shortcode", [code, story]
            ),
            await pool.fetch("SELECT xmin::text, * FROM instagram_account WHERE profile_id = $1", account),
            await pool.fetch("SELECT xmin::text, * FROM post_activity_log WHERE actor_profile_id = $1", account),
        )

    before = await snapshot()
    # The same records again: in one batch, one per batch, and in reverse order.
    replays = await write(pool, events, *([e] for e in events), list(reversed(events)))
    assert await snapshot() == before  # same xmin: not a single row was rewritten
    assert all(not w.asset_requests and not w.poison for w in replays)


async def test_batch_boundaries_do_not_change_the_outcome(pool):
    """The same records, per key in the same order, end in the same rows however they are batched."""
    rng = random.Random(4)
    run = unique("B")

    def events(variant: str) -> list[Model]:
        rng.seed(4)
        out: list[Model] = []
        for n in range(60):
            code = f"{run}{variant}{n % 6}"

            def maybe(value):
                return value if rng.random() < 0.6 else None

            if rng.random() < 0.2:
                out.append(
                    ActivityLog(
                        event_id=str(uuid.uuid4()),
                        kind="activity",
                        request_id="b",
                        source="test",
                        platform=IG,
                        observed_at=at(rng.randint(0, 20)),
                        activity_type="LIKE",
                        actor_profile_id=f"{run}actor",
                        shortcode=code,
                        metrics={"likes": maybe(n), "replies": maybe(n)},
                        dimensions={"handle": maybe(f"h{n}"), "full_name": maybe(f"n{n}")},
                    )
                )
                continue
            out.append(
                post(
                    code,
                    rng.randint(0, 20),
                    kind="story",
                    metrics={"likes": maybe(n), "comments": maybe(n), "profile_follower": maybe(n), "reach": maybe(n)},
                    caption=maybe(f"c{n}"),
                    story_links=maybe([f"l{n}"]),
                    post_type="story",
                )
            )
        return out

    one = events("a")
    await write(pool, one)
    singles = events("b")
    await write(pool, *([e] for e in singles))
    chunked = events("c")
    cuts = sorted(rng.sample(range(1, len(chunked)), 7))
    await write(pool, *(chunked[i:j] for i, j in zip([0, *cuts], [*cuts, len(chunked)], strict=True)))

    async def state(variant: str):
        posts = await pool.fetch(
            "SELECT right(shortcode, 1) AS n, likes, comments, profile_follower, reach, caption, story_links, "
            "observed_at FROM instagram_post WHERE shortcode LIKE $1 ORDER BY 1",
            f"{run}{variant}%",
        )
        likes = await pool.fetch(
            "SELECT right(platform_post_id, 1) AS n, dimensions, metrics, timestamp FROM post_activity_log "
            "WHERE platform_post_id LIKE $1 ORDER BY 1",
            f"{run}{variant}%",
        )
        return [tuple(r) for r in posts], [
            (r["n"], json.loads(r["dimensions"] or "null"), json.loads(r["metrics"] or "null"), r["timestamp"])
            for r in likes
        ]

    expected = await state("a")
    assert expected[0] and expected[1]
    assert await state("b") == expected
    assert await state("c") == expected


async def test_a_refused_value_is_isolated_and_the_rest_of_the_batch_written(pool):
    good = [unique("G") for _ in range(5)]
    batch = [post(code, 10, metrics={"likes": i}) for i, code in enumerate(good)]
    batch.insert(2, post(unique("X"), 10, metrics={"likes": 2**70}))  # beyond bigint
    batch.insert(4, post(unique("X"), 10, caption="nul \x00 byte"))  # Postgres text cannot hold NUL
    [written] = await write(pool, batch)
    assert sorted(origin for origin, _ in written.poison) == [2, 4]
    assert {error.type for _, error in written.poison} <= {"DataError", "CharacterNotInRepertoireError"}
    rows = await pool.fetch("SELECT shortcode, likes FROM instagram_post WHERE shortcode = ANY($1)", good)
    assert sorted((r["shortcode"], r["likes"]) for r in rows) == sorted(zip(good, range(5), strict=True))


# Derived metrics (legacy §9), against numbers worked out by hand


def test_post_formulas_match_hand_computed_values():
    assert derived.engagement_rate(150, 50, 1000) == 20.0  # (150 + 50) / 1000 * 100
    assert derived.engagement_rate(1, 2, 7) == 42.86  # 3 / 7 * 100 = 42.857…
    assert derived.engagement_rate(10, 5, 0) == derived.engagement_rate(10, 5, None) == 0.0
    # reels: 1234 * (0.94 - log2(1024) * 0.001) = 1234 * 0.93 = 1147.62
    assert derived.reach_estimate("reels", likes=0, plays=1234, followers=1024) == 1147
    assert derived.reach_estimate("reels", likes=9, plays=0, followers=1024) == 0
    assert derived.reach_estimate("reels", likes=9, plays=50, followers=0) == 0
    # image: (7.6 - log10(250) * 0.7) * 0.85 * 250 = (7.6 - 1.678558) * 0.85 * 250 = 1258.3
    assert derived.reach_estimate("image", likes=250, plays=None, followers=10) == 1258
    assert derived.reach_estimate("carousel", likes=0, plays=None, followers=10) == 0
    # a stored reach wins over the estimate
    assert derived.reach_of(PostNumbers("image", likes=250, reach=77), 10) == 77
    assert derived.reach_of(PostNumbers("image", likes=250, reach=0), 10) == 1258
    # story: -0.000025017 * 10000 + 1.11 * (10000 * |log2(2 + 2)| * 2 / 100) = -0.25017 + 444 = 443.75
    assert derived.story_reach(10_000, 2.0) == 444.0
    assert derived.story_reach(10_000, 0) == derived.story_reach(0, 2.0) == 0.0


def _window() -> list[PostNumbers]:
    static = [
        PostNumbers("image" if i % 2 else "carousel", likes=likes, comments=1, publish_time=at(100 - i))
        for i, likes in enumerate((10, 20, 30, 40, 50, 60))
    ]
    reels = [
        PostNumbers("reels", likes=5, comments=0, plays=plays, publish_time=at(50 - i))
        for i, plays in enumerate((100, 200, 300))
    ]
    return static + reels


def test_post_metrics_trim_outliers_as_the_legacy_server_did():
    metrics = derived.post_metrics(_window(), followers=1000)
    # static, 6 posts sorted by likes: drop 10, 20 and 50, 60 -> 30, 40
    assert metrics["static"]["count"] == 2
    assert (metrics["static"]["avg_likes"], metrics["static"]["avg_comments"]) == (35, 1)
    assert metrics["static"]["avg_engagement"] == 3.6  # (35 + 1) / 1000 * 100
    # reach of 30 likes: (7.6 - 0.7 log10 30) * 0.85 * 30 = 167.4; of 40: 220.3
    assert metrics["static"]["avg_reach"] == (167 + 220) / 2
    # reels, 3 posts: no trimming; reach 100 * (0.94 - 0.001 log2 1000) = 93.0, then 186.0, 279.0
    assert metrics["reels"] == {
        "count": 3,
        "avg_engagement": 0.5,
        "avg_likes": 5,
        "avg_comments": 0,
        "avg_plays": 200,
        "avg_reach": (93 + 186 + 279) / 3,
    }
    # all, the 9 newest sorted by likes (5, 5, 5, 10, 20, 30, 40, 50, 60): drop two each end
    assert metrics["all"] == {"count": 5, "avg_engagement": 2.18, "avg_likes": 21, "avg_comments": 0.8}
    # reels exist, so theirs is the profile's engagement; story reach from it:
    # -0.000025017 * 1000 + 1.11 * 1000 * log2(2.5) * 2 / 100 = 29.32
    assert (metrics["avg_engagement"], metrics["story_reach"]) == (0.5, 29.0)


async def test_account_averages_follow_the_stored_posts(pool):
    account = unique("d")
    events: list[Model] = [profile(account, 0, metrics={"followers": 1000})]
    for i, p in enumerate(_window()):
        events.append(
            post(
                f"{account}_{i}",
                1,
                profile_id=account,
                post_type=p.post_type,
                publish_time=p.publish_time,
                metrics={"likes": p.likes, "comments": p.comments, "play_count": p.plays},
            )
        )
    events.append(
        post(
            unique("story"),
            1,
            kind="story",
            profile_id=account,
            post_type="story",
            publish_time=at(200),
            metrics={"likes": 10**6},
        )
    )  # stories are not feed posts
    await write(pool, events)
    row = await pool.fetchrow("SELECT * FROM instagram_account WHERE profile_id = $1", account)
    assert (row["avg_likes"], row["avg_comments"], row["avg_engagement"]) == (21, 0.8, 0.5)
    assert (row["avg_reels_plays"], row["avg_reach"], row["avg_impressions"]) == (200, 186, None)
    assert json.loads(row["post_metrics"])["story_reach"] == 29.0
    assert row["refreshed_at"] == at(0)

    # Insights on one reel (by shortcode only) move the account's reach; nothing else is touched by a replay.
    await write(pool, [post(f"{account}_6", 2, kind="post_insights", metrics={"reach": 1000, "impressions": 40})])
    row = await pool.fetchrow("SELECT * FROM instagram_account WHERE profile_id = $1", account)
    assert (row["avg_reach"], row["avg_impressions"]) == ((1000 + 186 + 279) / 3, 40)
    before = row["updated_at"]
    await write(pool, events)
    assert (await pool.fetchval("SELECT updated_at FROM instagram_account WHERE profile_id = $1", account)) == before


# Through a real `beat sink` on the broker


@dataclass
class SinkHandle:
    prefix: str
    producer: AIOKafkaProducer
    collector: EventCollector

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    async def send(self, *events: Model) -> list[int]:
        """Produce the events (keyed as flows key them); returns their offsets."""
        sent = [
            await self.producer.send(self.topic(TOPIC_OF[type(e)]), e.to_bytes(), key=e.key.encode()) for e in events
        ]
        return [metadata.offset for metadata in await asyncio.gather(*sent)]

    def records(self, name: str) -> list[dict]:
        return [value for topic, value in self.collector.by_request.get(None, []) if topic == self.topic(name)]


@pytest_asyncio.fixture(scope="module")
async def sink(broker, database_url, session_dir):
    async with isolated(broker, database_url, session_dir, SandboxConfig(), "sink", sink_batch_timeout="0.05") as (
        prefix,
        _spawn,
        _sandbox,
    ):
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        collector = EventCollector(
            broker,
            [
                f"{prefix}{t}"
                for t in (names.DEAD_LETTER, names.scrape_topic(ASSET_FLOW), names.scrape_topic(STORY_ASSET_FLOW))
            ],
        )
        await collector.start()
        try:
            yield SinkHandle(prefix, producer, collector)
        finally:
            await collector.stop()
            await producer.stop()


async def eventually(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.1)


async def test_every_kind_lands_in_its_table(sink, pool):
    ig, handle, yt, video, order = unique("1"), unique("h"), unique("UC"), unique("v"), unique("o")
    await sink.send(
        profile(
            ig,
            1,
            kind="profile_insights",
            handle=handle,
            audience_country={"IN": 70, "US": 30},
            reached_audience_city={"Pune": 5},
            engaged_audience_gender_age={"male": {"18-24": 3}},
        ),
        profile(
            handle,
            1,
            kind="gpt_enrichment",
            handle=handle,
            gender="FEMALE",
            city="Pune",
            categories="['Beauty', 'Fashion']",
            languages=["hi", "en"],
            audience_city={"Pune": 0.2},
        ),
        profile(handle, 2, kind="gpt_enrichment", handle=handle, gender="", country="India"),
        profile(
            yt,
            1,
            platform=YT,
            handle="chan",
            metrics={"subscriber_count": 1200, "video_count": 30, "view_count": 99, "hidden_subscriber_count": 0},
            title="A channel",
            taken_at_timestamp=1_600_000_000,
            thumbnails={"default": {"url": "u"}},
        ),
        profile(yt, 1, platform=YT, kind="profile_insights", country={"IN": 1.0}, gender_age={"male": {"18": 1}}),
        post(
            video,
            1,
            platform=YT,
            profile_id=yt,
            metrics={"view_count": 1000, "likes": 10, "favourite_count": 0},
            title="A video",
            tags=["a", "b"],
            duration="PT1M2S",
            post_type="video",
            is_licensed=True,
        ),
        ActivityLog(
            event_id="a1",
            kind="activity",
            request_id="k",
            source="test",
            platform=IG,
            observed_at=at(1),
            activity_type="LIKE",
            actor_profile_id=ig,
            shortcode=video,
            dimensions={"handle": "liker"},
        ),
        ActivityLog(
            event_id="a2",
            kind="activity",
            request_id="k",
            source="test",
            platform=IG,
            observed_at=at(1),
            activity_type="COMMENT",
            actor_profile_id=ig,
            shortcode=video,
            metrics={"likes": 2},
            dimensions={"comment_id": "c9", "text": "nice", "keywords": "['nice']"},
        ),
        RelationshipLog(
            event_id="f1",
            request_id="k",
            source="test",
            platform=IG,
            observed_at=at(1),
            relationship_type="FOLLOWS",
            source_profile_id=ig,
            target_profile_id=yt,
            target_dimensions={"handle": "followed"},
        ),
        OrderLog(
            event_id="o1",
            request_id="k",
            source="shopify",
            platform=Platform.SHOPIFY,
            observed_at=at(1),
            platform_order_id=order,
            store="shop.example",
            dimensions={
                "name": "#1001",
                "status": "fulfilled",
                "utm_params": {"source": "ig"},
                "order_data": {"id": order, "total": "12.00"},
            },
        ),
        AssetLog(
            event_id="s1",
            request_id="k",
            platform=IG,
            entity_type="PROFILE",
            entity_id=ig,
            asset_type="IMAGE",
            asset_url=f"assets/profiles/instagram/{ig}.jpg",
            original_url=picture(ig),
            content_type="image/jpeg",
            size=1234,
            observed_at=at(1),
        ),
    )

    for table, column, key in (
        ("instagram_profile_insights", "profile_id", ig),
        ("youtube_account", "channel_id", yt),
        ("youtube_profile_insights", "channel_id", yt),
        ("youtube_post", "shortcode", video),
        ("profile_relationship_log", "source_profile_id", ig),
        ("order", "platform_order_id", order),
        ("asset_log", "entity_id", ig),
    ):

        async def landed(table=table, column=column, key=key):
            return await pool.fetchval(f'SELECT count(*) FROM "{table}" WHERE {column} = $1', key)

        await eventually(landed, what=f"a {table} row")

    async def complete():
        return await pool.fetchval(
            "SELECT count(*) FROM post_activity_log WHERE platform_post_id = $1", video
        ) == 2 and await pool.fetchval(
            "SELECT count(*) FROM instagram_gpt_enrichment WHERE handle = $1 AND country IS NOT NULL", handle
        )

    await eventually(complete, what="both activities and both GPT answers")
    insights = await pool.fetchrow("SELECT * FROM instagram_profile_insights WHERE profile_id = $1", ig)
    assert (
        insights["handle"],
        json.loads(insights["audience_country"]),
        json.loads(insights["engaged_audience_gender_age"]),
        insights["audience_city"],
    ) == (handle, {"IN": 70, "US": 30}, {"male": {"18-24": 3}}, None)
    gpt = await pool.fetchrow("SELECT * FROM instagram_gpt_enrichment WHERE handle = $1", handle)
    # Two partial answers merged; an empty gender did not erase the first.
    assert (gpt["gender"], gpt["city"], gpt["country"]) == ("FEMALE", "Pune", "India")
    assert (json.loads(gpt["categories"]), json.loads(gpt["languages"])) == (["Beauty", "Fashion"], ["hi", "en"])
    assert (
        await pool.fetchval("SELECT count(*) FROM instagram_account WHERE profile_id = $1 OR handle = $1", handle) == 0
    )  # GPT answers never create accounts
    channel = await pool.fetchrow("SELECT * FROM youtube_account WHERE channel_id = $1", yt)
    assert (
        channel["subscribers"],
        channel["uploads"],
        channel["username"],
        channel["is_subscriber_count_hidden"],
        channel["published_at"],
        json.loads(channel["thumbnails"]),
    ) == (1200, 30, "chan", False, datetime.fromtimestamp(1_600_000_000, UTC), {"default": {"url": "u"}})
    assert json.loads(
        await pool.fetchval("SELECT gender_age FROM youtube_profile_insights WHERE channel_id = $1", yt)
    ) == {"male": {"18": 1}}
    clip = await pool.fetchrow("SELECT * FROM youtube_post WHERE shortcode = $1", video)
    assert (clip["channel_id"], clip["views"], clip["favourites"], json.loads(clip["tags"]), clip["is_licensed"]) == (
        yt,
        1000,
        0,
        ["a", "b"],
        True,
    )
    activity = await pool.fetch(
        "SELECT activity_type, comment_id, metrics FROM post_activity_log "
        "WHERE platform_post_id = $1 ORDER BY activity_type",
        video,
    )
    assert [(r["activity_type"], r["comment_id"]) for r in activity] == [("COMMENT", "c9"), ("LIKE", "")]
    follow = await pool.fetchrow("SELECT * FROM profile_relationship_log WHERE source_profile_id = $1", ig)
    assert (follow["target_profile_id"], json.loads(follow["target_dimensions"])) == (yt, {"handle": "followed"})
    shop = await pool.fetchrow('SELECT * FROM "order" WHERE platform_order_id = $1', order)
    assert (shop["name"], shop["store"], json.loads(shop["utm_params"])) == ("#1001", "shop.example", {"source": "ig"})
    asset = await pool.fetchrow("SELECT * FROM asset_log WHERE entity_id = $1", ig)
    assert (asset["asset_url"], asset["content_type"], asset["size"]) == (
        f"assets/profiles/instagram/{ig}.jpg",
        "image/jpeg",
        1234,
    )


async def test_a_poison_row_is_dead_lettered_and_the_rest_of_its_batch_written(sink, pool):
    good = [unique("P") for _ in range(6)]
    bad_number, bad_text = unique("X"), unique("X")
    offsets = await sink.send(
        *(post(code, 1, metrics={"likes": i}) for i, code in enumerate(good[:3])),
        post(bad_number, 1, metrics={"likes": 2**70}),
        post(bad_text, 1, caption="a \x00 in text"),
        *(post(code, 1, metrics={"likes": i}) for i, code in enumerate(good[3:], 3)),
    )
    bad_offsets = {offsets[3], offsets[4]}

    async def written():
        return await pool.fetchval("SELECT count(*) FROM instagram_post WHERE shortcode = ANY($1)", good) == 6

    await eventually(written, what="the good rows")

    async def dead():
        found = [
            r
            for r in sink.records(names.DEAD_LETTER)
            if r["original_topic"] == sink.topic(names.POST_LOG) and r["original_offset"] in bad_offsets
        ]
        return found if len(found) == 2 else None

    letters = await eventually(dead, what="both poison rows dead-lettered")
    assert {json.loads(base64.b64decode(r["original_value"]))["shortcode"] for r in letters} == {bad_number, bad_text}
    assert all(r["error"]["type"] in ("DataError", "CharacterNotInRepertoireError") for r in letters)
    assert (
        await pool.fetchval("SELECT count(*) FROM instagram_post WHERE shortcode = ANY($1)", [bad_number, bad_text])
        == 0
    )


async def test_asset_requests_once_per_new_or_changed_picture(sink, pool):
    account, story, code = unique("a"), unique("st"), unique("T")

    async def stored(seconds: float):
        async def check():
            return await pool.fetchval(
                "SELECT observed_at FROM instagram_account WHERE profile_id = $1", account
            ) == at(seconds)

        await eventually(check, what=f"the profile observed at {seconds}")

    await sink.send(profile(account, 10, profile_pic_url=picture("A", 1)))
    await stored(10)
    await sink.send(profile(account, 20, profile_pic_url=picture("A", 2)))  # the same file, freshly signed
    await stored(20)
    await sink.send(profile(account, 30, profile_pic_url=picture("B", 3)))  # a new picture
    await stored(30)
    await sink.send(
        profile(account, 5, profile_pic_url=picture("C", 4)),  # older: changes nothing
        profile(account, 40, profile_pic_url=picture("B", 5)),
    )
    await stored(40)
    await sink.send(
        post(story, 1, kind="story", profile_id=account, post_type="story", thumbnail_src=picture("S")),
        post(code, 1, profile_id=account, post_type="image"),
    )
    await sink.send(post(code, 2, profile_id=account, thumbnail_src=picture("T")))  # the thumbnail arrives later

    def requests(flow: str, entity: str) -> list[dict]:
        return [r for r in sink.records(names.scrape_topic(flow)) if r["params"]["entity_id"] == entity]

    async def produced():
        return (
            len(requests(ASSET_FLOW, account)) >= 2 and requests(STORY_ASSET_FLOW, story) and requests(ASSET_FLOW, code)
        )

    await eventually(produced, what="the asset requests")
    await asyncio.sleep(1.0)  # anything produced twice would be on the topic by now
    profile_requests = requests(ASSET_FLOW, account)
    assert [r["params"]["original_url"] for r in profile_requests] == [picture("A", 1), picture("B", 3)]
    assert profile_requests[0]["params"] == {
        "entity_type": "PROFILE",
        "entity_id": account,
        "asset_type": "IMAGE",
        "original_url": picture("A", 1),
        "platform": "INSTAGRAM",
        "hash": half_md5(picture("A", 1)),
    }
    [story_request] = requests(STORY_ASSET_FLOW, story)
    [post_request] = requests(ASSET_FLOW, code)
    assert (story_request["params"]["entity_type"], post_request["params"]["original_url"]) == ("POST", picture("T"))
    ids = [r["id"] for r in (*profile_requests, story_request, post_request)]
    rows = await pool.fetch("SELECT id, flow, status, enqueued FROM scrape_request_log WHERE id = ANY($1)", ids)
    assert len(rows) == 4 and all(r["status"] == "PENDING" and r["enqueued"] for r in rows)
    assert requests(ASSET_FLOW, story) == []


# A database outage, through a TCP proxy in front of Postgres that the test cuts and restores


async def test_a_database_outage_mid_stream_loses_nothing(broker, database_url, session_dir, pool):
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    proxied = proxy.url(database_url)
    run = unique("Q")
    codes = [f"{run}_{i}" for i in range(4000)]
    try:
        async with isolated(
            broker, proxied, session_dir, SandboxConfig(), "outage", sink_batch_size="250", sink_batch_timeout="0.02"
        ) as (prefix, _spawn, _sandbox):
            handle = SinkHandle(
                prefix,
                AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=20),
                EventCollector(broker, [f"{prefix}{names.DEAD_LETTER}"]),
            )
            await handle.producer.start()
            await handle.collector.start()
            try:
                # Each post twice, the second observation newer, so a lost or half-applied batch would show.
                await handle.send(
                    *(post(c, 1, metrics={"likes": 1}) for c in codes[:2000]),
                    *(post(c, 2, metrics={"likes": 2}, caption="final") for c in codes[:2000]),
                )

                async def started():
                    return (
                        await pool.fetchval("SELECT count(*) FROM instagram_post WHERE shortcode = ANY($1)", codes) > 0
                    )

                await eventually(started, timeout=60, what="the first rows")
                proxy.cut()
                at_cut = await pool.fetchval("SELECT count(*) FROM instagram_post WHERE shortcode = ANY($1)", codes)
                await handle.send(
                    *(post(c, 1, metrics={"likes": 1}) for c in codes[2000:]),
                    *(post(c, 2, metrics={"likes": 2}, caption="final") for c in codes[2000:]),
                )
                await asyncio.sleep(3)  # the sink keeps retrying against a database that refuses it
                during = await pool.fetchval("SELECT count(*) FROM instagram_post WHERE shortcode = ANY($1)", codes)
                proxy.restore()

                async def complete():
                    return await pool.fetchval(
                        "SELECT count(*) FROM instagram_post WHERE shortcode = ANY($1) AND likes = 2 AND "
                        "caption = 'final'",
                        codes,
                    ) == len(codes)

                await eventually(complete, timeout=60, what="every row after the outage")
                assert at_cut < len(codes) and during < len(codes)
                assert [
                    r for r in handle.records(names.DEAD_LETTER) if r["original_topic"] == handle.topic(names.POST_LOG)
                ] == []
                log = (session_dir / "logs" / prefix / "sink-0.log").read_text()
                assert "database unavailable" in log
            finally:
                await handle.collector.stop()
                await handle.producer.stop()
    finally:
        proxy.stop()
