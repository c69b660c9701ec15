"""Legacy import benchmark: ``beat legacy import`` of N ``instagram_post`` rows against COPY into the same table.

    python bench/import.py [--rows N] [--batch-size B] [--work-dir DIR]

On this machine's Postgres (BEAT_TEST_POSTGRES, default 127.0.0.1:5432/test): a fresh legacy database
built with the legacy DDL (``tests/fixtures/legacy_schema.sql``) holding N posts (default 1,000,000) of
10,000 accounts, shaped as the legacy stored them (counts, a caption, CDN URLs, the insight columns
empty), and a fresh Beat database.

1. copy: the same rows, already exported to a CSV file, with ``COPY … FROM STDIN`` into Beat's empty
   ``instagram_post`` (the columns the import writes); timed from the first byte to the commit.
2. import: the table emptied, then ``beat legacy import --from … --table instagram_post`` as a process of
   its own, timed from start to exit (start-up and migrations included); its peak RSS from the kernel
   (``ru_maxrss`` of the waited child).

ratio = import rows/s ÷ copy rows/s (goal ≥ 0.3); peak RSS goal ≤ 300 MiB. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import psycopg  # noqa: E402

from tests.support import ADMIN_URL, FIXTURES, beat_env, migrated_database  # noqa: E402

ACCOUNTS = 10_000

SEED = """
INSERT INTO instagram_post (shortcode, profile_id, handle, post_id, post_type, content_type, caption, display_url,
    thumbnail_url, likes, comments, views, plays, engagement, created_at, updated_at, publish_time)
SELECT 'B' || lpad(n::text, 10, '0'), 'p' || (n % {accounts}), 'handle_' || (n % {accounts}), (17e15 + n)::bigint::text,
    (ARRAY['image', 'carousel', 'reels'])[1 + n % 3], (ARRAY['IMAGE', 'CAROUSEL_ALBUM', 'VIDEO'])[1 + n % 3],
    'caption of post ' || n || ' #travel #food #sunset with a few more words to look like one',
    'https://scontent.cdninstagram.com/v/t51.2885-15/' || n || '_n.jpg?stp=dst-jpg_e35&_nc_ht=x',
    'https://scontent.cdninstagram.com/v/t51.2885-15/' || n || '_t.jpg?stp=c0.0.640.640&_nc_ht=x',
    n % 5000, n % 300, CASE WHEN n % 3 = 2 THEN n % 90000 END, CASE WHEN n % 3 = 2 THEN n % 120000 END,
    (n % 1000) / 100.0, timestamp '2023-01-01' + n * interval '1 minute',
    timestamp '2024-01-01' + n * interval '1 minute', timestamp '2022-06-01' + n * interval '1 minute'
FROM generate_series(1, {rows}) AS n
"""

# The columns COPY writes: the ones the import fills for these rows, legacy names = Beat names.
COPY_COLUMNS = (
    "shortcode",
    "profile_id",
    "handle",
    "post_id",
    "post_type",
    "content_type",
    "caption",
    "display_url",
    "thumbnail_url",
    "likes",
    "comments",
    "views",
    "plays",
    "engagement",
    "created_at",
    "publish_time",
)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def legacy_database(rows: int) -> Iterator[str]:
    name = f"legacy_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((FIXTURES / "legacy_schema.sql").read_text())
            conn.execute(SEED.format(rows=rows, accounts=ACCOUNTS))
            conn.execute("VACUUM ANALYZE instagram_post")
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def copy_phase(legacy_url: str, beat_url: str, csv_path: Path) -> float:
    """COPY's seconds for the rows, from a file exported beforehand (not timed)."""
    selected = ", ".join(f'"{c}"' for c in COPY_COLUMNS)
    legacy = await asyncpg.connect(legacy_url)
    try:
        await legacy.execute("SET TimeZone = 'UTC'")
        exported = f"SELECT {selected}, updated_at FROM instagram_post"
        await legacy.copy_from_query(exported, output=csv_path, format="csv")
    finally:
        await legacy.close()
    beat = await asyncpg.connect(beat_url)
    try:
        started = time.perf_counter()
        async with beat.transaction():
            await beat.copy_to_table(
                "instagram_post", source=csv_path, columns=[*COPY_COLUMNS, "observed_at"], format="csv"
            )
        seconds = time.perf_counter() - started
        await beat.execute("TRUNCATE instagram_post")
        await beat.execute("VACUUM ANALYZE instagram_post")
    finally:
        await beat.close()
    return seconds


def import_phase(legacy_url: str, beat_url: str, batch_size: int) -> tuple[float, float, dict]:
    """The import's seconds, its peak RSS in MiB, and its report line."""
    args = [sys.executable, "-m", "app.cli", "legacy", "import", "--from", legacy_url, "--table", "instagram_post"]
    args += ["--batch-size", str(batch_size)]
    started = time.perf_counter()
    process = subprocess.Popen(args, env=beat_env(database_url=beat_url), cwd=ROOT, stdout=subprocess.PIPE)
    out, _ = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"the import failed with exit code {process.returncode}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kilobytes on Linux
    reports = {line["table"]: line for line in map(json.loads, out.decode().splitlines())}
    return seconds, peak_mib, reports["instagram_post"]


async def count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM instagram_post"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--work-dir", type=Path)
    options = parser.parse_args()
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="beat-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    progress(f"seeding {options.rows:,} legacy posts")
    with legacy_database(options.rows) as legacy_url, migrated_database("beat_bench") as beat_url:
        progress("COPY into instagram_post")
        copy_seconds = asyncio.run(copy_phase(legacy_url, beat_url, work / "posts.csv"))
        progress(f"COPY: {copy_seconds:.1f}s; beat legacy import")
        import_seconds, peak_mib, report = import_phase(legacy_url, beat_url, options.batch_size)
        stored = asyncio.run(count(beat_url))
    if report["written"] != options.rows or stored != options.rows:
        raise SystemExit(f"the import wrote {report['written']} rows and Beat holds {stored}, not {options.rows}")
    import_rate, copy_rate = options.rows / import_seconds, options.rows / copy_seconds
    print(
        json.dumps(
            {
                "rows": options.rows,
                "import_per_s": round(import_rate),
                "copy_per_s": round(copy_rate),
                "ratio": round(import_rate / copy_rate, 3),
                "import_s": round(import_seconds, 1),
                "copy_s": round(copy_seconds, 1),
                "peak_rss_mib": round(peak_mib, 1),
                "batch_size": options.batch_size,
                "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            }
        )
    )


if __name__ == "__main__":
    main()
