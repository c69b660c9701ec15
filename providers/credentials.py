"""The ``credential`` table: the admin side (add, list, enable, disable) and what a provider's answer
means for the credential that got it.

Workers pick credentials from memory (``providers/credential_cache.py``); this module writes the table.
Secrets never leave these modules except inside a ``Credential`` (whose repr hides them);
logs and events only ever carry the credential id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import asyncpg

from providers.credential_cache import CredentialCache
from providers.credential_writes import SINCE_QUEUED
from providers.http import Credential

log = logging.getLogger(__name__)

# Written behind the requests (CredentialCache.write_behind). In a rest, $2 is the seconds the write
# waited, so the rest begins when the answer came, not when Postgres took the write after an outage.

_REST_FOR = """
UPDATE credential SET disabled_till = now() + make_interval(secs => $3::float8 - $2::float8), updated_at = now()
WHERE id = $1
RETURNING GREATEST(EXTRACT(EPOCH FROM disabled_till - now()), 0)::float8 AS rest_in
"""

# The right-hand sides read the row as it was: the rest doubles with the strikes before this one. A 429
# that arrives while the key already rests came from a call sent before the rest began (a burst meets
# every call in flight): it neither doubles nor extends the rest.
_REST_DOUBLING = """
UPDATE credential
SET disabled_till = CASE WHEN disabled_till > answer.at THEN disabled_till
        ELSE answer.at + make_interval(secs => LEAST($3 * power(2, LEAST(quota_strikes, 30)), $4)) END,
    quota_strikes = CASE WHEN disabled_till > answer.at THEN quota_strikes ELSE quota_strikes + 1 END,
    updated_at = now()
FROM (SELECT now() - make_interval(secs => $2::float8) AS at) AS answer
WHERE id = $1
RETURNING GREATEST(EXTRACT(EPOCH FROM disabled_till - now()), 0)::float8 AS rest_in, quota_strikes
"""

_STREAK_OVER = """
UPDATE credential SET quota_strikes = 0 WHERE id = $1 AND quota_strikes > 0
RETURNING quota_strikes
"""

_EXPIRE = """
UPDATE credential SET data_access_expired = true, updated_at = now() WHERE id = $1
RETURNING data_access_expired
"""


class CredentialStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def set_enabled(self, credential_id: str, enabled: bool) -> bool:
        """Enable (clearing any rest and expiry) or disable a credential; False if there is no such id."""
        status: str = await self._pool.execute(
            "UPDATE credential SET enabled = $2, disabled_till = NULL, "
            "data_access_expired = CASE WHEN $2 THEN false ELSE data_access_expired END, updated_at = now() "
            "WHERE id = $1",
            int(credential_id),
            enabled,
        )
        return status == "UPDATE 1"

    async def list(self, source: str | None = None) -> list[dict[str, Any]]:
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

    async def find(
        self, *, credential_id: str | None = None, source: str | None = None, handle: str | None = None
    ) -> tuple[Credential, ...]:
        """The credential with this id, or every credential of a source for a handle."""
        rows = await self._pool.fetch(
            "SELECT id, source, handle, credentials FROM credential "
            "WHERE ($1::bigint IS NOT NULL AND id = $1) OR ($1::bigint IS NULL AND source = $2 AND handle = $3) "
            "ORDER BY id",
            int(credential_id) if credential_id is not None else None,
            source,
            handle,
        )
        return tuple(
            Credential(
                id=str(row["id"]),
                source=row["source"],
                secrets=json.loads(row["credentials"]) if isinstance(row["credentials"], str) else row["credentials"],
                handle=row["handle"],
            )
            for row in rows
        )

    async def set_expired(self, credential_id: str, expired: bool) -> None:
        """Record what a token check found: refused (out of rotation) or valid (back in, unless disabled)."""
        await self._pool.execute(
            "UPDATE credential SET data_access_expired = $2, updated_at = now() WHERE id = $1",
            int(credential_id),
            expired,
        )

    async def add(
        self, source: str, secrets: dict[str, Any], handle: str | None = None, idempotency_key: str | None = None
    ) -> str:
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

    429 / quota: rest until the provider's reset (Retry-After or reset headers). Without a reset
    time the rest starts short (``first_rest``) and doubles on each consecutive quota answer up to
    the source's configured cooldown, so a burst of a few seconds does not cost a source its key
    for the whole cooldown; a successful call ends the streak. The streak (``quota_strikes``) lives
    in Postgres so every process doubles the same count. Auth failure: ``data_access_expired``
    takes it out of rotation until a fresh token arrives (``beat credentials add`` or ``enable``).

    Each decision takes effect in this process's cache at once (a rested or refused key is not picked
    again) and reaches Postgres behind the request, where the same rules decide between processes.
    """

    def __init__(
        self, cache: CredentialCache, cooldowns: dict[str, float], default_cooldown: float, first_rest: float = 5.0
    ) -> None:
        self._cache = cache
        self._cooldowns = cooldowns
        self._default_cooldown = default_cooldown
        self._first_rest = first_rest

    def cooldown_for(self, source: str) -> float:
        return self._cooldowns.get(source, self._default_cooldown)

    async def rest(self, credential: Credential, retry_after: float | None) -> float:
        """Rest the credential; return the seconds it rests."""
        state = self._cache.state(credential.id)
        if state is None:  # deleted meanwhile
            return 0.0
        now = time.monotonic()
        if retry_after is not None and retry_after > 0:
            seconds = retry_after
            state.rest_until = now + seconds
            self._cache.write_behind(state.id, _REST_FOR, state.id, SINCE_QUEUED, seconds)
        elif state.rest_until is not None and state.rests_at(now):
            seconds = state.rest_until - now
        else:
            cap = self.cooldown_for(credential.source)
            first = min(self._first_rest, cap)
            seconds = min(first * 2 ** min(state.quota_strikes, 30), cap)
            state.rest_until = now + seconds
            state.quota_strikes += 1
            self._cache.write_behind(state.id, _REST_DOUBLING, state.id, SINCE_QUEUED, first, cap)
        log.warning(
            "credential %s of %s rests for %.3gs after a quota answer", credential.id, credential.source, seconds
        )
        return seconds

    async def answered(self, credential: Credential) -> None:
        """A call with this credential succeeded: its quota streak is over."""
        state = self._cache.state(credential.id)
        if state is None or not state.quota_strikes:
            return
        state.quota_strikes = 0
        self._cache.write_behind(state.id, _STREAK_OVER, state.id)

    async def expire(self, credential: Credential) -> None:
        state = self._cache.state(credential.id)
        if state is not None:
            state.data_access_expired = True
            self._cache.write_behind(state.id, _EXPIRE, state.id)
        log.warning("credential %s of %s is out of rotation: its token was refused", credential.id, credential.source)


def masked(secrets: dict[str, Any]) -> dict[str, Any]:
    """A credential's secrets as shown to people: the names, and the last 3 characters of each value."""
    return {name: ("…" + str(value)[-3:] if len(str(value)) > 6 else "***") for name, value in secrets.items()}
