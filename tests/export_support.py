"""What the export test and the export bench share: seeding ``youtube_account_daily`` with COPY, running the
daily stats export in this process as the worker runs it, and measuring this process's peak RSS."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from agents.flows import exports
from agents.flows.children import Children
from agents.flows.context import FlowContext
from agents.flows.report_tools import ReportTools
from core.settings import load_settings
from sinks.assets import AssetStore
from topics.export_params import ChannelRangeParams
from topics.models import ScrapeRequest

MIB = 1024 * 1024


async def _no_children(topic: str, key: bytes | None, value: bytes) -> asyncio.Future:
    raise AssertionError("the stats exports have no scrape step")


def tools_for(pool: asyncpg.Pool, store: AssetStore, database_url: str) -> ReportTools:
    settings = load_settings(database_url=database_url, default_flow_timeout=3600)
    return ReportTools(pool, store, Children(pool, _no_children, settings), settings)


async def daily_stats(tools: ReportTools, params: dict) -> dict:
    """``fetch_channel_daily_stats_csv`` run as the worker runs it; its result."""
    request = ScrapeRequest(id=str(uuid.uuid4()), flow="fetch_channel_daily_stats_csv", params=params)
    ctx = FlowContext(request=request, crawler=None, reports=tools)  # type: ignore[arg-type]
    return await exports.fetch_channel_daily_stats_csv(ctx, ChannelRangeParams.model_validate(params))


async def seed_daily_stats(pool: asyncpg.Pool, channels: list[str], days: int) -> tuple[str, str]:
    """``days`` days of history up to today for each channel, streamed in with COPY; the first and last day.
    Day d of channel c has subscribers 1000 + d, views 10·d + c and uploads 100 + d // 7."""
    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    observed = datetime.now(UTC)

    # Generated a thousand rows at a time: memory the seeding freed would hide the export's own growth.
    async def rows() -> AsyncIterator[bytes]:
        for c, channel in enumerate(channels):
            for start in range(0, days, 1000):
                yield "".join(
                    f"{channel},{first + timedelta(days=d)},{1000 + d},{10 * d + c},{100 + d // 7},{observed}\n"
                    for d in range(start, min(start + 1000, days))
                ).encode()

    await pool.copy_to_table(
        "youtube_account_daily",
        source=rows(),
        columns=["channel_id", "day", "subscribers", "views", "uploads", "observed_at"],
        format="csv",
    )
    await pool.execute("ANALYZE youtube_account_daily")
    return first.isoformat(), last.isoformat()


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """The highest RSS of this process while the block runs, sampled every 10 ms from a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()

    def __enter__(self) -> PeakRss:
        self.base = rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base
