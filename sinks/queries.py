"""What flows may read from Postgres (contract §3: flows read stored data, they never write entity tables)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class StoredPost:
    shortcode: str
    post_id: str | None
    profile_id: str | None
    handle: str | None
    post_type: str | None


class StoredData:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def profile_id_for_handle(self, handle: str) -> str | None:
        return await self._pool.fetchval(
            "SELECT profile_id FROM instagram_account WHERE handle = $1 ORDER BY updated_at DESC LIMIT 1", handle
        )

    async def instagram_post(self, shortcode: str) -> StoredPost | None:
        row = await self._pool.fetchrow(
            "SELECT shortcode, post_id, profile_id, handle, post_type FROM instagram_post WHERE shortcode = $1",
            shortcode,
        )
        return StoredPost(**dict(row)) if row else None
