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
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from sinks.upsert import Column, UpsertTable, columns
from topics.models import (
    AssetLog,
    Platform,
    ScrapeRequest,
    deterministic_id,
    utcnow,
)

ASSET_FLOW = "asset_upload_flow"
STORY_ASSET_FLOW = "asset_upload_flow_stories"

ASSET_LOG = UpsertTable(
    "asset_log",
    key=("entity_id",),
    columns=(
        *columns(
            "text", "entity_id", "entity_type", "platform", "asset_type", "asset_url", "original_url", "content_type"
        ),
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
        id=deterministic_id(
            "asset", flow, entity_type, platform.value, entity_id, picture_identity(url), observed_at.isoformat()
        ),
        flow=flow,
        platform=platform,
        params={
            "entity_type": entity_type,
            "entity_id": entity_id,
            "asset_type": "IMAGE",
            "original_url": url,
            "platform": platform.value,
            "hash": half_md5(url),
        },
        created_at=utcnow(),
    )


def _changed(new: str | None, old: str | None) -> bool:
    return new is not None and picture_identity(new) != picture_identity(old)


def changed_pictures(accounts: Iterable[asyncpg.Record], posts: Iterable[asyncpg.Record]) -> list[ScrapeRequest]:
    """Upload requests for the profile pictures and post thumbnails a batch changed (from the upserts'
    ``RETURNING``, which holds each row's picture before and after)."""
    requests = [
        asset_request(ASSET_FLOW, "PROFILE", row["profile_id"], row["profile_pic_url"], row["observed_at"])
        for row in accounts
        if _changed(row["profile_pic_url"], row["old_profile_pic_url"])
    ]
    requests += [
        asset_request(
            STORY_ASSET_FLOW if row["post_type"] == "story" else ASSET_FLOW,
            "POST",
            row["shortcode"],
            row["thumbnail_url"],
            row["observed_at"],
        )
        for row in posts
        if _changed(row["thumbnail_url"], row["old_thumbnail_url"])
    ]
    return requests
