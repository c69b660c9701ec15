"""The API keys kept in Postgres (table ``api_key``): made, listed, revoked, and loaded by the facade.

Only a key's hash is stored (``core/api_keys.py`` says why a fast hash is enough); the key itself
exists once, in what ``create_key`` returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from core.api_keys import KnownKey, key_hash, new_key
from topics.errors import BeatError, Decision


class NameTaken(BeatError, ValueError):
    """A live key already has this name."""

    decision = Decision.DEFINITIVE


async def create_key(db: asyncpg.Pool | asyncpg.Connection, name: str, scopes: Iterable[str]) -> tuple[int, str]:
    """A new key with these scopes: its id and the key, which is not kept anywhere."""
    key = new_key()
    try:
        key_id = await db.fetchval(
            "INSERT INTO api_key (name, hash, scopes) VALUES ($1, $2, $3) RETURNING id",
            name,
            key_hash(key),
            list(scopes),
        )
    except asyncpg.UniqueViolationError:
        raise NameTaken(f"a live key is already named {name!r}; revoke it first or pick another name") from None
    return key_id, key


async def replace_key(pool: asyncpg.Pool, name: str, scopes: Iterable[str]) -> str:
    """Revoke the live key named ``name`` (if any) and make a new one in its place; the new key."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE api_key SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
        _, key = await create_key(conn, name, scopes)
    return key


async def list_keys(db: asyncpg.Pool | asyncpg.Connection, *, revoked: bool) -> list[dict[str, Any]]:
    """Every key, oldest first, without its hash; revoked ones only when asked."""
    try:
        rows = await db.fetch(
            "SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_key "
            "WHERE $1 OR revoked_at IS NULL ORDER BY id",
            revoked,
        )
    except asyncpg.UndefinedTableError:
        return []  # a database nothing has migrated yet has no keys
    return [dict(row) for row in rows]


async def revoke_key(db: asyncpg.Pool | asyncpg.Connection, name_or_id: str) -> int:
    """Revoke the live key with this id or name; how many were revoked (0 or 1)."""
    key_id = int(name_or_id) if name_or_id.isdigit() else None
    try:
        status = await db.execute(
            "UPDATE api_key SET revoked_at = now() "
            "WHERE revoked_at IS NULL AND (id = $1 OR ($1 IS NULL AND name = $2))",
            key_id,
            name_or_id,
        )
    except asyncpg.UndefinedTableError:
        return 0
    return int(status.split()[-1])


async def live_keys(db: asyncpg.Pool | asyncpg.Connection) -> list[KnownKey]:
    """The keys the facade accepts from Postgres; none while the table does not exist yet (no ``beat sink`` or
    ``beat up`` has migrated this database, so nobody can have made one)."""
    try:
        rows = await db.fetch("SELECT id, name, scopes, hash FROM api_key WHERE revoked_at IS NULL")
    except asyncpg.UndefinedTableError:
        return []
    return [KnownKey(row["name"], tuple(row["scopes"]), row["hash"], row["id"]) for row in rows]


async def mark_used(db: asyncpg.Pool | asyncpg.Connection, key_ids: Iterable[int]) -> None:
    """Date the last use of these keys (the facade batches them, so this is a few seconds late)."""
    ids = list(key_ids)
    if ids:
        await db.execute("UPDATE api_key SET last_used_at = now() WHERE id = ANY($1)", ids)
