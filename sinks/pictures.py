"""Pictures: the ``asset_log`` table, and asking for an upload when a picture is new or changed.

The sink asks the way any upstream service would (contract §5): a ScrapeRequest on
``beat.scrape.asset_upload_flow`` (stories: ``…_stories``). The request is recorded
PENDING in ``scrape_request_log`` inside the batch's transaction and produced after
the commit; if the sink dies in between, the reconciler produces it. Its id is
derived from the entity, the picture and the observation, so a retried batch or a
second sink asks once.

A picture is compared by its URL's path: Instagram CDN links carry per-fetch
signatures and edge hosts, so a fresh link to the same file is not a new picture.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from app.settings import Settings
from sinks.producing import send_batched
from sinks.requests import Placed, entity_key
from sinks.upsert import Column, UpsertTable, columns
from topics import names
from topics.models import (
    AssetLog,
    Platform,
    RequestStatus,
    ScrapeRequest,
    Status,
    deterministic_id,
    utcnow,
)

ASSET_FLOW = "asset_upload_flow"
STORY_ASSET_FLOW = "asset_upload_flow_stories"

ASSET_LOG = UpsertTable(
    "asset_log",
    key=("entity_id",),
    columns=(
        *columns("text", "entity_id", "entity_type", "platform", "asset_type", "asset_url", "original_url",
                 "content_type"),
        Column("size", "bigint"),
        Column("observed_at", "timestamptz"),
    ),
)


def asset_log_row(event: AssetLog) -> dict[str, Any]:
    return {
        "entity_id": event.entity_id,
        "entity_type": event.entity_type,
        "platform": event.platform.value,
        "asset_type": event.asset_type,
        "asset_url": event.asset_url,
        "original_url": event.original_url,
        "content_type": event.content_type,
        "size": event.size,
        "observed_at": event.observed_at,
    }


def picture_identity(url: str | None) -> str | None:
    """The URL's path: what names the file, without the signature and the edge host."""
    if not url:
        return None
    # Plain string work: this runs for every post a batch changes, and urlsplit is ten times slower.
    address = url.split("?", 1)[0].split("#", 1)[0]
    start = address.find("//")
    if start < 0:
        return address
    slash = address.find("/", start + 2)
    return address[slash:] if slash >= 0 else address


def half_md5(url: str) -> int:
    """ClickHouse ``halfMD5(url)``, the ``hash`` param upstream producers send (legacy §7)."""
    return int.from_bytes(hashlib.md5(url.encode(), usedforsecurity=False).digest()[:8], "big")


def asset_request(flow: str, entity_type: str, entity_id: str, url: str, observed_at: datetime) -> ScrapeRequest:
    platform = Platform.INSTAGRAM
    return ScrapeRequest(
        id=deterministic_id("asset", flow, entity_type, platform.value, entity_id, picture_identity(url),
                            observed_at.isoformat()),
        flow=flow,
        platform=platform,
        params={"entity_type": entity_type, "entity_id": entity_id, "asset_type": "IMAGE", "original_url": url,
                "platform": platform.value, "hash": half_md5(url)},
        created_at=utcnow(),
    )


def _changed(new: str | None, old: str | None) -> bool:
    return new is not None and picture_identity(new) != picture_identity(old)


def changed_pictures(accounts: Iterable[asyncpg.Record], posts: Iterable[asyncpg.Record]) -> list[ScrapeRequest]:
    """Upload requests for the profile pictures and post thumbnails a batch changed (from the upserts'
    ``RETURNING``, which holds each row's picture before and after)."""
    requests = [
        asset_request(ASSET_FLOW, "PROFILE", row["profile_id"], row["profile_pic_url"], row["observed_at"])
        for row in accounts if _changed(row["profile_pic_url"], row["old_profile_pic_url"])
    ]
    requests += [
        asset_request(STORY_ASSET_FLOW if row["post_type"] == "story" else ASSET_FLOW, "POST", row["shortcode"],
                      row["thumbnail_url"], row["observed_at"])
        for row in posts if _changed(row["thumbnail_url"], row["old_thumbnail_url"])
    ]
    return requests


_RECORD_SQL = """
INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, priority, retry_count, created_at,
                                status_at)
SELECT u.id, u.flow, u.platform, u.params, 'PENDING', 1, u.priority, 0, u.created_at, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::int[], $6::timestamptz[])
    AS u(id, flow, platform, params, priority, created_at)
ON CONFLICT DO NOTHING
RETURNING id
"""


async def record_requests(conn: asyncpg.Connection, requests: Sequence[ScrapeRequest]) -> list[ScrapeRequest]:
    """Record the requests PENDING; returns those not recorded before (the ones to produce)."""
    if not requests:
        return []
    rows = await conn.fetch(
        _RECORD_SQL,
        [r.id for r in requests], [r.flow for r in requests],
        [r.platform.value if r.platform else None for r in requests],
        [json.dumps(r.params) for r in requests], [r.priority for r in requests],
        [r.created_at for r in requests],
    )
    recorded = {row["id"] for row in rows}
    return [r for r in requests if r.id in recorded]


async def produce_requests(producer: AIOKafkaProducer, settings: Settings,
                           requests: Sequence[ScrapeRequest]) -> list[Placed]:
    """Every request, then every PENDING event (a PENDING event implies its request is on the broker); where
    each request landed."""
    by_flow: dict[str, list[ScrapeRequest]] = {}
    for request in requests:
        by_flow.setdefault(request.flow or "", []).append(request)
    placed = []
    for flow, batch in by_flow.items():
        landed = await send_batched(producer, settings.topic(names.scrape_topic(flow)),
                                    [((entity_key(r.params) or r.id or "").encode(), r.to_bytes()) for r in batch])
        placed += [Placed(r.id or "", partition, offset) for r, (partition, offset) in zip(batch, landed, strict=True)]
    await send_batched(producer, settings.topic(names.STATUS),
                       [((r.id or "").encode(), RequestStatus.of(r, Status.PENDING).to_bytes()) for r in requests])
    return placed
