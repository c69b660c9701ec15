"""CSV export benchmark: a 1,000,000-row export streamed from Postgres, against ``COPY … TO STDOUT`` of the same
query in the same run.

    python bench/reports.py [--channels C] [--days D] [--rounds R]

One fresh, migrated database on the machine's Postgres (BEAT_TEST_POSTGRES, default 127.0.0.1:5432/test)
holds C × D rows of ``youtube_account_daily`` (2,000 × 500 = 1,000,000 by default), seeded with COPY. Then,
R rounds, alternating:

1. export: ``fetch_channel_daily_stats_csv`` for every channel over every day, run in this process as the
   worker runs it (``agents.flows.exports`` with the worker's report tools) into the local store, a file;
   rows/s = rows ÷ time, and the peak RSS growth of this process meanwhile (sampled every 10 ms).
2. copy: the export's query through ``COPY (query) TO STDOUT`` into a file, nothing else.

ratio = the best export round's rows/s ÷ the best copy round's. Last, the same export into S3 through moto
(in this process), reported without a goal: it measures moto. Progress goes to stdout; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aioboto3  # noqa: E402
import asyncpg  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from agents.flows import export_sql  # noqa: E402
from sinks.assets import AssetStore  # noqa: E402
from sinks.local_store import LocalAssetStore  # noqa: E402
from sinks.s3_store import S3AssetStore  # noqa: E402
from tests.export_support import MIB, PeakRss, daily_stats, seed_daily_stats, tools_for  # noqa: E402
from tests.support import migrated_database  # noqa: E402

REGION = "ap-south-1"


async def export(pool: asyncpg.Pool, store: AssetStore, url: str, params: dict) -> tuple[dict, float]:
    started = time.perf_counter()
    result = await daily_stats(tools_for(pool, store, url), params)
    return result, time.perf_counter() - started


async def plain_copy(pool: asyncpg.Pool, path: Path, params: dict) -> tuple[int, float]:
    started = time.perf_counter()
    async with pool.acquire() as conn:
        status = await conn.copy_from_query(
            export_sql.DAILY_STATS,
            params["channel_ids"],
            datetime.fromisoformat(params["start_date"]).date(),
            datetime.fromisoformat(params["end_date"]).date(),
            output=str(path),
            format="csv",
            header=True,
            timeout=3600,
        )
    return int(status.split()[-1]), time.perf_counter() - started


async def to_s3(pool: asyncpg.Pool, url: str, params: dict) -> tuple[int, float]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    bucket = "beat-reports-bench"
    try:
        async with aioboto3.Session().client("s3", endpoint_url=endpoint, region_name=REGION, **keys) as s3:
            await s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        store = await S3AssetStore.open(
            bucket=bucket,
            endpoint_url=endpoint,
            region=REGION,
            access_key_id="bench",
            secret_access_key="bench",  # noqa: S106 - moto's
            timeout=300,
        )
        try:
            result, seconds = await export(pool, store, url, params)
        finally:
            await store.aclose()
        return sum(result["rows"].values()), seconds
    finally:
        server.stop()


async def main(args: argparse.Namespace) -> dict:
    with migrated_database("beat_bench_reports") as url, tempfile.TemporaryDirectory() as work:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            channels = [f"UCbench{n:06d}xxxxxxxxxxx" for n in range(args.channels)]
            print(f"seeding {args.channels * args.days:,} rows", flush=True)
            first, last = await seed_daily_stats(pool, channels, args.days)
            params = {"channel_ids": channels, "start_date": first, "end_date": last}
            store = LocalAssetStore(Path(work) / "assets")
            exported, copied, growth = [], [], []
            rows = 0
            for round_ in range(args.rounds):
                with PeakRss() as memory:
                    result, seconds = await export(pool, store, url, params)
                rows = sum(result["rows"].values())
                exported.append(rows / seconds)
                growth.append(memory.growth / MIB)
                await asyncio.to_thread(os.remove, result["channel_daily_stats_csv"])
                copy_rows, copy_seconds = await plain_copy(pool, Path(work) / "copy.csv", params)
                assert copy_rows == rows, (copy_rows, rows)
                copied.append(copy_rows / copy_seconds)
                print(
                    f"round {round_ + 1}: export {exported[-1]:,.0f} rows/s (RSS +{growth[-1]:.1f} MiB), "
                    f"copy {copied[-1]:,.0f} rows/s",
                    flush=True,
                )
            s3_rows, s3_seconds = await to_s3(pool, url, params)
            print(f"s3 (moto): {s3_rows / s3_seconds:,.0f} rows/s", flush=True)
        finally:
            await pool.close()
    return {
        "rows": rows,
        "export_rows_s": round(max(exported)),
        "copy_rows_s": round(max(copied)),
        "ratio": round(max(exported) / max(copied), 3),
        "peak_rss_growth_mib": round(max(growth), 1),
        "s3_moto_rows_s": round(s3_rows / s3_seconds),
        "rounds": args.rounds,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
