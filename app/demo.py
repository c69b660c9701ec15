"""``beat demo``: the embedded stack against the sandbox, a batch of mixed requests, and a summary.

The sandbox misbehaves a little, as real providers do: a small share of calls answer 500
and JoTucker answers 429 for a few seconds once work is flowing. The summary shows the
retries that absorbed it, then one CSV export runs and the demo prints where its file landed. The demo
exits 0 only if every request reached COMPLETE and is stored with none of its events refused, and the
export completed. Events are counted by consuming the log topics
(as an analytics team would), never from end offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from app.demo_export import run_export
from app.progress import tracked, waiting
from app.stack import Stack
from core.kafka_security import client_options
from core.settings import Settings
from topics import names
from topics.models import TERMINAL, PostLog, ProfileLog

if TYPE_CHECKING:
    from providers.sandbox.config import SandboxConfig

DEMO_TIMEOUT = 600.0
# After the last terminal status, how long the sink may take to account for every announced event.
STORED_WAIT = 30.0
# A burst of 429s without Retry-After on the source that pages full refreshes, once work is flowing.
BURST_PATH = "/rapidapi-jotucker/"
BURST_SECONDS = 3.0


def demo_faults() -> SandboxConfig:
    """Real providers fail now and then; a demo that never does would not show what Beat does about it."""
    # Each function imports the sandbox where it uses it: importing app.demo loads none of it.
    from providers.sandbox.config import SandboxConfig

    return SandboxConfig(error_rate=0.02, seed=11)


def _other_platforms(i: int, run: str) -> dict:
    """YouTube, GPT enrichment and Shopify against the sandbox's demo channel, creators and store."""
    from providers.sandbox.seeds import SANDBOX_STORE
    from providers.sandbox.youtube import DEMO_CHANNEL_ID, channel_id_for

    choices = (
        {"flow": "refresh_yt_profiles", "params": {"channel_ids": [DEMO_CHANNEL_ID, channel_id_for(100 + i)]}},
        {"flow": "refresh_yt_posts_by_playlist_id", "params": {"channel_id": DEMO_CHANNEL_ID, "max_posts": 5}},
        {
            "flow": "refresh_instagram_gpt_data_base_gender",
            "params": {"data": {"handle": f"demo_{run}_{i}", "name": "Demo Creator", "bio": "Food and travel"}},
        },
        {"flow": "refresh_orders_by_store", "params": {"store": SANDBOX_STORE, "limit": 50}},
    )
    return choices[(i // 12) % len(choices)]


def demo_requests(total: int, run: str) -> list[dict]:
    """A deterministic mix: mostly basic profile refreshes, posts by shortcode and full refreshes, with one
    request in twelve for YouTube, GPT enrichment or Shopify."""
    batch = []
    for i in range(total):
        handle = f"demo_{run}_{i % max(1, total // 3)}"
        if i % 12 == 11:
            batch.append(_other_platforms(i, run))
        elif i % 6 in (0, 1, 2):
            batch.append({"flow": "refresh_profile_basic", "params": {"handle": handle}})
        elif i % 6 in (3, 4):
            batch.append({"flow": "refresh_post_by_shortcode", "params": {"shortcode": f"Dm{run[:4]}{i:05d}"}})
        else:
            batch.append({"flow": "refresh_profile_by_handle", "params": {"handle": handle}})
    return batch


async def _submit(api_url: str, batch: list[dict]) -> list[str]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        semaphore = asyncio.Semaphore(20)

        async def one(body: dict) -> str:
            async with semaphore:
                response = await client.post("/requests", json=body)
                response.raise_for_status()
                return response.json()["id"]

        return await asyncio.gather(*(one(body) for body in batch))


async def _count_events(settings: Settings, ids: set[str], done: asyncio.Event, counts: Counter) -> None:
    consumer = AIOKafkaConsumer(
        settings.topic(names.PROFILE_LOG),
        settings.topic(names.POST_LOG),
        bootstrap_servers=settings.kafka_url,
        **client_options(settings),
        group_id=f"beat-demo-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
    )
    await consumer.start()
    try:
        while not done.is_set():
            polled = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in polled.values():
                for record in records:
                    model = ProfileLog if record.topic == settings.topic(names.PROFILE_LOG) else PostLog
                    event = model.model_validate_json(record.value)
                    if event.request_id in ids:
                        counts[record.topic.removeprefix(settings.topic_prefix)] += 1
    finally:
        await consumer.stop()


async def _burst(sandbox_url: str) -> None:
    """JoTucker answers 429 for BURST_SECONDS, then the demo's usual faults again."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        burst = demo_faults().model_copy(update={"fail_paths": {BURST_PATH: 429}})
        (await client.put("/_sandbox/config", json=burst.model_dump(mode="json"))).raise_for_status()
        await asyncio.sleep(BURST_SECONDS)
        (await client.put("/_sandbox/config", json=demo_faults().model_dump(mode="json"))).raise_for_status()


async def _sandbox_totals(sandbox_url: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        response = await client.get("/_sandbox/stats")
        response.raise_for_status()
        return response.json()["total"]


async def _watch(settings: Settings, endpoints: dict[str, str], total: int) -> int:
    api_url, sandbox_url = endpoints["api"], endpoints["sandbox"]
    run = uuid.uuid4().hex[:8]
    batch = demo_requests(total, run)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    events: Counter = Counter()
    done = asyncio.Event()
    started = time.monotonic()
    with waiting(f"submitting {len(batch)} requests…"):
        ids = await _submit(api_url, batch)
    id_set = set(ids)
    consumer = asyncio.create_task(_count_events(settings, id_set, done, events))
    print(f"submitted {len(ids)} requests through {api_url}/requests in {time.monotonic() - started:.1f}s")
    statuses: dict[str, int] = {}
    terminal_at: float | None = None
    burst: asyncio.Task | None = None
    try:
        with tracked("requests", len(ids)) as bar:
            while time.monotonic() - started < DEMO_TIMEOUT:
                rows = await pool.fetch(
                    "SELECT status, count(*) AS n, count(*) FILTER (WHERE stored) AS stored "
                    "FROM scrape_request_log WHERE id = ANY($1) GROUP BY status",
                    ids,
                )
                statuses = {row["status"]: row["n"] for row in rows}
                stored = sum(row["stored"] for row in rows)
                finished = sum(n for status, n in statuses.items() if status in {s.value for s in TERMINAL})
                if burst is None and statuses.get("COMPLETE"):
                    burst = asyncio.create_task(_burst(sandbox_url))
                bar.show(finished, "  ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + f"  (stored {stored})")
                if finished == len(ids):
                    # Readers of Postgres wait for stored, not for COMPLETE (contract §2); so does the summary.
                    terminal_at = terminal_at or time.monotonic()
                    if stored == statuses.get("COMPLETE", 0) or time.monotonic() - terminal_at > STORED_WAIT:
                        break
                await asyncio.sleep(1.0)
        elapsed = (terminal_at or time.monotonic()) - started
        if burst is not None:
            await burst
        calls = await _sandbox_totals(sandbox_url)
        retries = await pool.fetchrow(
            "WITH retried AS (SELECT request_id, count(*) AS n FROM scrape_request_event "
            "                 WHERE request_id = ANY($1) AND status = 'RETRYING' GROUP BY request_id) "
            "SELECT count(*) AS requests, coalesce(sum(n), 0) AS retries, coalesce(max(n), 0) AS most, "
            "count(*) FILTER (WHERE log.status = 'COMPLETE') AS recovered "
            "FROM retried JOIN scrape_request_log log ON log.id = retried.request_id",
            ids,
        )
        window = await pool.fetchval(
            "SELECT EXTRACT(EPOCH FROM max(scraped_at) - min(picked_at)) FROM scrape_request_log WHERE id = ANY($1)",
            ids,
        )
        await asyncio.sleep(2.0)  # let the consumer catch the last events
        done.set()
        await consumer
        accounts = await pool.fetchval("SELECT count(*) FROM instagram_account WHERE handle LIKE $1", f"demo_{run}_%")
        posts = await pool.fetchval(
            "SELECT count(*) FROM instagram_post WHERE handle LIKE $1 OR shortcode LIKE $2",
            f"demo_{run}_%",
            f"Dm{run[:4]}%",
        )
        failures = await pool.fetch(
            "SELECT id, flow, status, error_type, error_message FROM scrape_request_log "
            "WHERE id = ANY($1) AND status <> 'COMPLETE' LIMIT 5",
            ids,
        )
        storage = await pool.fetchrow(
            "SELECT count(*) FILTER (WHERE stored AND events_refused = 0) AS whole, "
            "count(*) FILTER (WHERE events_refused > 0) AS partial, "
            "count(*) FILTER (WHERE status = 'COMPLETE' AND NOT stored) AS unaccounted "
            "FROM scrape_request_log WHERE id = ANY($1)",
            ids,
        )
        partial = await pool.fetch(
            "SELECT id, flow, events_announced, events_refused, refused_reason FROM scrape_request_log "
            "WHERE id = ANY($1) AND events_refused > 0 LIMIT 5",
            ids,
        )
        with waiting("running one CSV export (fetch_channels_csv)…"):
            exported, export_line = await run_export(api_url, pool)
    finally:
        done.set()
        await pool.close()

    complete = statuses.get("COMPLETE", 0)
    print()
    print(
        f"requests   {len(ids)} submitted, {complete} COMPLETE, "
        f"{sum(v for k, v in statuses.items() if k != 'COMPLETE')} not complete"
    )
    print(
        f"stored     {storage['whole']} with every announced event written, {storage['partial']} partial "
        f"(events refused by Postgres), {storage['unaccounted']} COMPLETE still missing events"
    )
    print(f"postgres   {accounts} instagram_account rows, {posts} instagram_post rows for this run")
    print(f"log topics {events[names.PROFILE_LOG]} profile_log and {events[names.POST_LOG]} post_log events consumed")
    print(
        f"faults     {calls['errors']} of {calls['arrivals']} calls to the sandbox answered 500 "
        f"({demo_faults().error_rate:.0%} at random), {calls['rate_limited']} answered 429 "
        f"(a {BURST_SECONDS:g}s burst on {BURST_PATH.strip('/')})"
    )
    print(
        f"retries    {retries['retries']} retries of {retries['requests']} requests (at most {retries['most']} "
        f"for one); {retries['recovered']} of those requests ended COMPLETE"
    )
    print(
        f"throughput {len(ids) / elapsed:.1f} requests/s from submission to the last COMPLETE ({elapsed:.1f}s, "
        f"including the workers' first group join); {len(ids) / max(float(window or 0), 1e-3):.1f} requests/s "
        f"from the first pick-up to the last COMPLETE"
    )
    print(f"export     {export_line}")
    for row in failures:
        print(f"  not complete: {row['id']} {row['flow']} {row['status']} {row['error_type']}: {row['error_message']}")
    for row in partial:
        print(
            f"  partial: {row['id']} {row['flow']} {row['events_refused']} of {row['events_announced']} events "
            f"refused: {row['refused_reason']}"
        )
    print()
    print(
        "Next: `beat up --sandbox` keeps it running; `beat status <id>`, GET /requests/<id>/timeline, "
        "`beat flows`, and logs under " + str(settings.data_dir.resolve() / "logs")
    )
    return 0 if complete == storage["whole"] == len(ids) and exported else 1


def run_demo(settings: Settings, *, total: int) -> int:
    # The demo shows its own progress; library chatter stays in the process logs.
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    settings = settings.model_copy(update={"data_dir": settings.data_dir / "demo", "api_port": 0})
    stack = Stack(settings, sandbox=True, sandbox_config=demo_faults())
    try:
        with waiting("starting the embedded stack (broker, Postgres, sandbox, worker, sink, api)…"):
            settings = stack.start()
        return asyncio.run(_watch(settings, stack.endpoints, total))
    finally:
        with waiting("stopping the embedded stack…"):
            stack.stop()
