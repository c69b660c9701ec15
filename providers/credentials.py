"""The ``credential`` table, read side: least-recently-used selection among usable credentials.

Selection is best-effort LRU without row locks: two concurrent picks may get the
same credential (a source with one key must serve every caller), and the rate
limiter, not the selection, keeps a credential under its provider's limit.

Secrets never leave this module except inside a ``Credential`` (whose repr hides them);
logs and events only ever carry the credential id.
"""

from __future__ import annotations

import json

import asyncpg

from providers.http import Credential

_PICK = """
UPDATE credential SET last_used_at = now()
WHERE id = (
    SELECT id FROM credential
    WHERE source = $1
      AND enabled
      AND NOT data_access_expired
      AND (disabled_till IS NULL OR disabled_till < now())
      AND ($2::text IS NULL OR handle = $2)
    ORDER BY last_used_at NULLS FIRST, id
    LIMIT 1
)
RETURNING id, source, credentials, handle
"""


class CredentialStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def pick(self, source: str, handle: str | None = None) -> Credential | None:
        row = await self._pool.fetchrow(_PICK, source, handle)
        if row is None:
            return None
        secrets = row["credentials"]
        if isinstance(secrets, str):
            secrets = json.loads(secrets)
        return Credential(id=str(row["id"]), source=row["source"], secrets=secrets, handle=row["handle"])

    async def add(self, source: str, secrets: dict, handle: str | None = None, idempotency_key: str | None = None) -> str:
        """Insert or refresh a credential; the idempotency key defaults to source plus handle or first secret."""
        key = idempotency_key or f"{source}:{handle or next(iter(secrets.values()), '')}"
        row = await self._pool.fetchrow(
            """
            INSERT INTO credential (idempotency_key, source, credentials, handle, enabled, data_access_expired)
            VALUES ($1, $2, $3::jsonb, $4, true, false)
            ON CONFLICT (idempotency_key) DO UPDATE
              SET credentials = EXCLUDED.credentials, enabled = true, data_access_expired = false,
                  disabled_till = NULL, updated_at = now()
            RETURNING id
            """,
            key,
            source,
            json.dumps(secrets),
            handle,
        )
        return str(row["id"])
