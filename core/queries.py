"""What flows may read from Postgres (contract §3: flows read stored data, they never write entity tables).

Postgres away is an outage, not the request's failure: every read raises ``DependencyDown`` then, and
the worker waits for Postgres instead of judging the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from core.outage import POSTGRES, postgres_down, reported


@dataclass(frozen=True, slots=True)
class StoredPost:
    shortcode: str
    post_id: str | None
    profile_id: str | None
    handle: str | None
    post_type: str | None


@dataclass(frozen=True, slots=True)
class StoredAssetRecord:
    asset_url: str
    content_type: str | None
    size: int | None
    observed_at: datetime


class StoredData:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _fetchval(self, query: str, *args: Any) -> Any:
        with reported(POSTGRES, postgres_down):
            return await self._pool.fetchval(query, *args)

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        with reported(POSTGRES, postgres_down):
            return await self._pool.fetchrow(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of a read; the reports' queries are in ``core/report_queries.py``."""
        with reported(POSTGRES, postgres_down):
            return await self._pool.fetch(query, *args)

    async def profile_id_for_handle(self, handle: str) -> str | None:
        return await self._fetchval(
            "SELECT profile_id FROM instagram_account WHERE handle = $1 ORDER BY updated_at DESC LIMIT 1", handle
        )

    async def instagram_post(self, shortcode: str) -> StoredPost | None:
        row = await self._fetchrow(
            "SELECT shortcode, post_id, profile_id, handle, post_type FROM instagram_post WHERE shortcode = $1",
            shortcode,
        )
        return StoredPost(**dict(row)) if row else None

    async def recent_asset(self, entity_id: str, original_url: str, since: datetime) -> StoredAssetRecord | None:
        """The entity's asset when it was stored from this very URL at or after ``since``."""
        row = await self._fetchrow(
            "SELECT asset_url, content_type, size, observed_at FROM asset_log "
            "WHERE entity_id = $1 AND original_url = $2 AND observed_at >= $3",
            entity_id,
            original_url,
            since,
        )
        return StoredAssetRecord(**dict(row)) if row else None

    async def uploads_playlist_id(self, channel_id: str) -> str | None:
        return await self._fetchval("SELECT uploads_playlist_id FROM youtube_account WHERE channel_id = $1", channel_id)
