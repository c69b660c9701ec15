"""Sink benchmark: the batched writer against COPY, then post_log events through a real ``beat sink``.

    python bench/sink.py [--events N] [--batch-size B] [--accounts A] [--work-dir DIR]

Everything runs on this machine against one Postgres (BEAT_TEST_POSTGRES, default
127.0.0.1:5432/test, where each phase gets a fresh database) and an embedded Tansu broker.

The load is ``kind=post`` PostLog events for the posts of A accounts, each with 25 posts
stored before the run, in batches of B records shaped like profile refreshes: an account's
10-30 newest posts together, one to four of them new. In every batch 30 % of the records repeat a key already
in that batch, a fifth of the values are null, and a tenth of the records are older than
what is stored. Every post has its thumbnail, its link freshly signed on every
observation as Instagram's are, so only a new post asks for an upload.

1. writer: ``sinks.upsert.upsert`` over the decoded batches (the merge and one
   INSERT … ON CONFLICT per batch, committed); copy: the same records, batch by batch, with
   COPY into a table of the same columns and indexes (the key's index not unique, since the
   records repeat keys); the two alternate batch by batch. ratio = writer / copy.
   Then the whole batch write, ``sinks.writer.write_batch``, which adds the derived account
   columns and the asset requests (``write_rows_s``).
2. end to end: every event is on the post_log topic before a ``beat sink`` process starts;
   rows/s = records committed / time, from the sink's first offset commit to its last (the
   first batch, group join and start-up excluded; start-up is reported on its own).
   The end state is compared with phase 1's: it must be the same rows.

Progress lines go to stdout; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from app.embedded import EmbeddedBroker  # noqa: E402
from core.settings import load_settings  # noqa: E402
from core.topic_admin import all_topics, ensure_topics  # noqa: E402
from sinks import instagram  # noqa: E402
from sinks.routing import decode  # noqa: E402
from sinks.upsert import upsert  # noqa: E402
from sinks.writer import BATCH_SETTINGS, write_batch  # noqa: E402
from tests.support import BeatProcess, beat_env, migrated_database  # noqa: E402
from topics import names  # noqa: E402
from topics.flows import FLOWS  # noqa: E402
from topics.models import Platform, PostLog, ProfileLog  # noqa: E402

DUPLICATE_SHARE = 0.3
NULL_SHARE = 0.2
OLDER_SHARE = 0.1
HISTORY = 25  # posts each account has stored before the run
POST_TYPES = ("image", "carousel", "reels")
CDN = "https://scontent-bom1-1.cdninstagram.com/v/t51.2885-15"
# Compared between the two phases' databases: everything the events carry.
STATE_SQL = """
SELECT count(*), md5(string_agg(concat_ws('|', shortcode, profile_id, post_type, caption, thumbnail_url, likes,
    comments, plays, publish_time, observed_at), ',' ORDER BY shortcode)) FROM instagram_post
"""

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


# the load


def accounts(count: int, base: datetime) -> list[ProfileLog]:
    rng = random.Random(7)
    return [
        ProfileLog(
            event_id=f"bench-profile-{i}",
            kind="profile",
            request_id="bench",
            source="bench",
            platform=Platform.INSTAGRAM,
            observed_at=base,
            profile_id=f"9{i:08d}",
            handle=f"bench_{i}",
            metrics={
                "followers": rng.randint(1_000, 5_000_000),
                "following": rng.randint(10, 2_000),
                "media_count": rng.randint(30, 3_000),
            },
            # No picture: the seeding batch would leave 5000 asset requests for the reconciler to send
            # while the end-to-end phase runs.
            dimensions={"full_name": f"Bench {i}"},
        )
        for i in range(count)
    ]


def post_events(
    total: int, batch_size: int, account_count: int, base: datetime
) -> tuple[list[PostLog], list[list[PostLog]]]:
    """Each account's stored history, and batches of post events shaped like profile refreshes (an account's
    newest posts together, a few of them new), with the duplicate, null and older shares of the module
    docstring."""
    rng = random.Random(11)
    posts: list[list[int]] = []  # per account, its post numbers, oldest first
    batches: list[list[PostLog]] = []
    serial = 0
    next_post = 0

    def event(number: int, owner: int, observed_at: datetime) -> PostLog:
        nonlocal serial
        serial += 1
        post_type = POST_TYPES[number % len(POST_TYPES)]

        def maybe(value):
            return None if rng.random() < NULL_SHARE else value

        return PostLog(
            event_id=f"bench-{serial}",
            kind="post",
            request_id="bench",
            source="bench",
            platform=Platform.INSTAGRAM,
            observed_at=observed_at,
            profile_id=f"9{owner:08d}",
            handle=f"bench_{owner}",
            shortcode=f"P{number}",
            publish_time=base + timedelta(minutes=number),
            metrics={
                "likes": maybe(rng.randint(0, 200_000)),
                "comments": maybe(rng.randint(0, 5_000)),
                "play_count": maybe(rng.randint(0, 2_000_000)) if post_type == "reels" else None,
            },
            dimensions={
                "post_type": post_type,
                "caption": maybe(f"caption {number} #{rng.randint(0, 99)}"),
                "thumbnail_src": f"{CDN}/{number}_n.jpg?oh={rng.getrandbits(64):016x}",
                "keywords": maybe("['bench', 'post']"),
            },
        )

    history = []
    for owner in range(account_count):
        posts.append(list(range(next_post, next_post + HISTORY)))
        history += [event(number, owner, base - timedelta(days=2)) for number in posts[owner]]
        next_post += HISTORY
    serial = 0
    while serial < total:
        size = min(batch_size, total - serial)
        distinct = max(1, round(size * (1 - DUPLICATE_SHARE)))
        keys: list[tuple[int, int]] = []
        while len(keys) < distinct:
            owner = rng.randrange(account_count)
            for _ in range(rng.randint(1, 4)):  # a refresh finds a few new posts...
                posts[owner].append(next_post)
                next_post += 1
            # ...and returns the newest ones it pages through
            refreshed = posts[owner][-rng.randint(10, 30) :][: distinct - len(keys)]
            keys.extend((number, owner) for number in refreshed if (number, owner) not in keys[-30:])
        now = base + timedelta(minutes=len(batches) + 1)
        batch = []
        for number, owner in keys + [rng.choice(keys) for _ in range(size - len(keys))]:
            older = rng.random() < OLDER_SHARE
            observed = base - timedelta(days=1) if older else now + timedelta(seconds=rng.randint(0, 59))
            batch.append(event(number, owner, observed))
        batches.append(batch)
    return history, batches


def as_records(events: list) -> list[tuple[str, bytes]]:
    topic = names.PROFILE_LOG if isinstance(events[0], ProfileLog) else names.POST_LOG
    return [(topic, e.to_bytes()) for e in events]


# phase 1: the writer against COPY


async def seed(conn: asyncpg.Connection, profiles: list[ProfileLog], history: list[PostLog]) -> None:
    """The accounts, and their stored posts as plain rows (no asset requests left behind for the reconciler)."""
    await write_batch(conn, decode(as_records(profiles)))
    rows = [row for _, row in decode(as_records(history)).rows[instagram.POST]]
    for start in range(0, len(rows), 10_000):
        async with conn.transaction():
            await upsert(conn, instagram.POST, rows[start : start + 10_000])


async def create_copy_table(conn: asyncpg.Connection) -> None:
    """instagram_post's columns, storage and indexes, the key's not unique: COPY cannot take a batch's repeated
    keys."""
    await conn.execute(
        "CREATE TABLE bench_copy (LIKE instagram_post INCLUDING DEFAULTS INCLUDING IDENTITY) WITH (fillfactor = 70)"
    )
    await conn.execute("ALTER TABLE bench_copy ADD PRIMARY KEY (id)")
    await conn.execute("CREATE INDEX ON bench_copy (shortcode)")
    await conn.execute("CREATE INDEX ON bench_copy (profile_id, publish_time DESC)")


async def upsert_phase(
    url: str, profiles: list[ProfileLog], history: list[PostLog], batches: list[list[PostLog]]
) -> tuple[float, float]:
    """The batched writer (merge, one INSERT … ON CONFLICT) and COPY, batch by batch, alternating, so that a
    change in the machine's load falls on both."""
    columns = instagram.POST.names
    decoded = [[row for _, row in decode(as_records(batch)).rows[instagram.POST]] for batch in batches]
    conn = await asyncpg.connect(url)
    try:
        await seed(conn, profiles, history)
        await create_copy_table(conn)
        upsert_time = copy_time = 0.0
        for rows in decoded:
            copied = [tuple(row.get(c) for c in columns) for row in rows]
            started = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table("bench_copy", records=copied, columns=columns)
            copy_time += time.perf_counter() - started
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(BATCH_SETTINGS)
                await upsert(conn, instagram.POST, rows)
            upsert_time += time.perf_counter() - started
        records = sum(len(rows) for rows in decoded)
        return records / upsert_time, records / copy_time
    finally:
        await conn.close()


async def write_phase(
    url: str, profiles: list[ProfileLog], history: list[PostLog], batches: list[list[PostLog]]
) -> tuple[float, tuple]:
    """Everything a batch's write does: the upserts, the derived account columns, the asset requests."""
    decoded = [decode(as_records(batch)) for batch in batches]
    conn = await asyncpg.connect(url)
    try:
        await seed(conn, profiles, history)
        elapsed = 0.0
        for one in decoded:
            started = time.perf_counter()
            await write_batch(conn, one)
            elapsed += time.perf_counter() - started
        return sum(len(batch) for batch in batches) / elapsed, tuple(await conn.fetchrow(STATE_SQL))
    finally:
        await conn.close()


# phase 2: end to end through `beat sink`


async def produce(bootstrap: str, topic: str, batches: list[list[PostLog]]) -> dict[int, int]:
    """Every event, keyed as the flows key them; returns partition -> offset after its last record."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    ends: dict[int, int] = {}
    try:
        for batch in batches:
            sent = [await producer.send(topic, e.to_bytes(), key=e.key.encode()) for e in batch]
            for metadata in await asyncio.gather(*sent):
                ends[metadata.partition] = max(ends.get(metadata.partition, 0), metadata.offset + 1)
    finally:
        await producer.stop()
    return ends


async def committed(consumer: AIOKafkaConsumer, topic: str, ends: dict[int, int]) -> int:
    done = 0
    for partition in ends:
        offset = await consumer.committed(TopicPartition(topic, partition))
        done += offset or 0
    return done


async def e2e_phase(
    url: str,
    work: Path,
    profiles: list[ProfileLog],
    history: list[PostLog],
    batches: list[list[PostLog]],
    batch_size: int,
) -> dict:
    broker = EmbeddedBroker(work / "broker")
    broker.start()
    sink = None
    try:
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        settings = load_settings(kafka_url=broker.bootstrap, topic_prefix=prefix)
        await ensure_topics(broker.bootstrap, all_topics(settings, FLOWS))
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        async with pool.acquire() as conn:
            await seed(conn, profiles, history)
        topic = settings.topic(names.POST_LOG)
        started = time.monotonic()
        ends = await produce(broker.bootstrap, topic, batches)
        total = sum(ends.values())
        progress(f"produced {total} events in {time.monotonic() - started:.1f}s")
        env = beat_env(
            kafka_url=broker.bootstrap,
            database_url=url,
            topic_prefix=prefix,
            data_dir=str(work / "sink"),
            broker_session_timeout="6",
            sink_batch_size=str(batch_size),
            log_level="WARNING",
        )
        monitor = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap, group_id=settings.group("sink"), enable_auto_commit=False
        )
        await monitor.start()
        spawned = time.monotonic()
        sink = BeatProcess("sink", env, work / "sink.log").start()
        first: tuple[float, int] | None = None
        done = 0
        deadline = spawned + 600
        while done < total:
            if not sink.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sink stopped at {done}/{total}:\n{sink.log_tail()}")
            await asyncio.sleep(0.05)
            done = await committed(monitor, topic, ends)
            if first is None and done:
                first = (time.monotonic(), done)
        finished = time.monotonic()
        await monitor.stop()
        assert first is not None
        async with pool.acquire() as conn:
            state = tuple(await conn.fetchrow(STATE_SQL))
        await pool.close()
        steady = (total - first[1]) / (finished - first[0]) if finished > first[0] else float("nan")
        return {
            "e2e_rows_s": steady,
            "e2e_total_s": finished - spawned,
            "e2e_startup_s": first[0] - spawned,
            "e2e_first_batch": first[1],
            "state": state,
        }
    finally:
        if sink is not None:
            sink.terminate(30)
        broker.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="beat-bench-sink-"))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    profiles = accounts(args.accounts, base)
    history, batches = post_events(args.events, args.batch_size, args.accounts, base)
    records = sum(len(b) for b in batches)
    distinct = len({e.shortcode for b in batches for e in b})
    progress(
        f"{records} events over {distinct} posts of {args.accounts} accounts ({len(history)} stored before), "
        f"batches of {args.batch_size}"
    )

    with migrated_database("beat_bench") as url:
        upsert_rows_s, copy_rows_s = await upsert_phase(url, profiles, history, batches)
    progress(f"writer: {upsert_rows_s:,.0f} rows/s, COPY: {copy_rows_s:,.0f} rows/s")
    with migrated_database("beat_bench") as url:
        write_rows_s, writer_state = await write_phase(url, profiles, history, batches)
    progress(f"whole batch write (with derived columns and asset requests): {write_rows_s:,.0f} rows/s")
    with migrated_database("beat_bench") as url:
        e2e = await e2e_phase(url, work, profiles, history, batches, args.batch_size)
    progress(f"end to end: {e2e['e2e_rows_s']:,.0f} rows/s (start-up {e2e['e2e_startup_s']:.1f}s)")
    same = e2e.pop("state") == writer_state
    if not same:
        progress("the sink's rows differ from the writer's")
    result = {
        "upsert_rows_s": round(upsert_rows_s),
        "copy_rows_s": round(copy_rows_s),
        "ratio": round(upsert_rows_s / copy_rows_s, 3),
        "write_rows_s": round(write_rows_s),
        "e2e_rows_s": round(e2e["e2e_rows_s"]),
        "e2e_ratio": round(e2e["e2e_rows_s"] / copy_rows_s, 3),
        "e2e_total_s": round(e2e["e2e_total_s"], 2),
        "e2e_startup_s": round(e2e["e2e_startup_s"], 2),
        "events": records,
        "posts": distinct,
        "batch_size": args.batch_size,
        "same_rows": same,
    }
    print(json.dumps(result), flush=True)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
