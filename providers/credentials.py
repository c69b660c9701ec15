"""The ``credential`` table, read side: least-recently-used selection among usable credentials.

Selection is best-effort LRU without row locks: two concurrent picks may get the
same credential (a source with one key must serve every caller), and the rate
limiter, not the selection, keeps a credential under its provider's limit.

Secrets never leave this module except inside a ``Credential`` (whose repr hides them);
logs and events only ever carry the credential id.
"""

from __future__ import annotations

import hashlib
import json
import logging

import asyncpg

from providers.http import Credential

log = logging.getLogger(__name__)

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

    async def set_enabled(self, credential_id: str, enabled: bool) -> bool:
        """Enable (clearing any rest and expiry) or disable a credential; False if there is no such id."""
        status = await self._pool.execute(
            "UPDATE credential SET enabled = $2, disabled_till = NULL, "
            "data_access_expired = CASE WHEN $2 THEN false ELSE data_access_expired END, updated_at = now() "
            "WHERE id = $1",
            int(credential_id), enabled,
        )
        return status == "UPDATE 1"

    async def list(self, source: str | None = None) -> list[dict]:
        rows = await self._pool.fetch(
            "SELECT id, source, handle, credentials, enabled, disabled_till, data_access_expired, last_used_at "
            "FROM credential WHERE $1::text IS NULL OR source = $1 ORDER BY source, id",
            source,
        )
        listed = []
        for row in rows:
            entry = dict(row)
            secrets = entry.pop("credentials")
            entry["secrets"] = masked(json.loads(secrets) if isinstance(secrets, str) else secrets)
            listed.append(entry)
        return listed

    async def add(self, source: str, secrets: dict, handle: str | None = None, idempotency_key: str | None = None) -> str:
        """Insert or refresh a credential; the idempotency key defaults to source plus handle, else a digest
        of the secrets (never a secret itself: the key is shown in listings and logs)."""
        digest = hashlib.sha256(json.dumps(secrets, sort_keys=True).encode()).hexdigest()[:16]
        key = idempotency_key or f"{source}:{handle or digest}"
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


class CredentialPolicy:
    """What a provider's answer means for the credential that got it (contract §4).

    429 / quota: rest until the provider's reset (Retry-After or reset headers), else a
    configured cooldown per source. Auth failure: ``data_access_expired`` takes it out of
    rotation until a fresh token arrives (``beat credentials add`` or ``enable``).
    """

    def __init__(self, pool: asyncpg.Pool, cooldowns: dict[str, float], default_cooldown: float) -> None:
        self._pool = pool
        self._cooldowns = cooldowns
        self._default_cooldown = default_cooldown

    def cooldown_for(self, source: str, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > 0:
            return retry_after
        return self._cooldowns.get(source, self._default_cooldown)

    async def rest(self, credential: Credential, retry_after: float | None) -> float:
        seconds = self.cooldown_for(credential.source, retry_after)
        await self._pool.execute(
            "UPDATE credential SET disabled_till = now() + make_interval(secs => $2), updated_at = now() "
            "WHERE id = $1",
            int(credential.id), seconds,
        )
        log.warning("credential %s of %s rests for %.0fs after a quota answer", credential.id, credential.source,
                    seconds)
        return seconds

    async def expire(self, credential: Credential) -> None:
        await self._pool.execute(
            "UPDATE credential SET data_access_expired = true, updated_at = now() WHERE id = $1", int(credential.id)
        )
        log.warning("credential %s of %s is out of rotation: its token was refused", credential.id,
                    credential.source)


def masked(secrets: dict) -> dict:
    """A credential's secrets as shown to people: the names, and the last 3 characters of each value."""
    return {name: ("…" + str(value)[-3:] if len(str(value)) > 6 else "***") for name, value in secrets.items()}
