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
from collections.abc import Sequence
from dataclasses import dataclass

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
      AND NOT (id = ANY($3::bigint[]))
    ORDER BY last_used_at NULLS FIRST, id
    LIMIT 1
)
RETURNING id, source, credentials, handle, quota_strikes
"""

# Why a source has no usable credential: none usable at all, or every usable one resting (until when).
_AVAILABILITY = """
SELECT count(*) FILTER (WHERE enabled AND NOT data_access_expired) AS usable,
       EXTRACT(EPOCH FROM min(disabled_till) FILTER (
           WHERE enabled AND NOT data_access_expired AND disabled_till >= now()) - now()) AS rest_in
FROM credential
WHERE source = $1 AND ($2::text IS NULL OR handle = $2)
"""


@dataclass(frozen=True, slots=True)
class Availability:
    """``usable``: enabled credentials with a live token; ``rest_in``: seconds until the first resting one
    is free again, None when none rests."""

    usable: int
    rest_in: float | None


class CredentialStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def pick(self, source: str, handle: str | None = None, exclude: Sequence[str] = ()) -> Credential | None:
        """The least recently used usable credential, other than those in ``exclude`` (ids tried already)."""
        row = await self._pool.fetchrow(_PICK, source, handle, [int(i) for i in exclude])
        if row is None:
            return None
        secrets = row["credentials"]
        if isinstance(secrets, str):
            secrets = json.loads(secrets)
        return Credential(id=str(row["id"]), source=row["source"], secrets=secrets, handle=row["handle"],
                          quota_strikes=row["quota_strikes"])

    async def availability(self, source: str, handle: str | None = None) -> Availability:
        row = await self._pool.fetchrow(_AVAILABILITY, source, handle)
        rest_in = row["rest_in"]
        return Availability(usable=row["usable"], rest_in=None if rest_in is None else max(0.0, float(rest_in)))

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

    429 / quota: rest until the provider's reset (Retry-After or reset headers). Without a reset
    time the rest starts short (``first_rest``) and doubles on each consecutive quota answer up to
    the source's configured cooldown, so a burst of a few seconds does not cost a source its key
    for the whole cooldown; a successful call ends the streak. The streak (``quota_strikes``) lives
    in Postgres so every process doubles the same count. Auth failure: ``data_access_expired``
    takes it out of rotation until a fresh token arrives (``beat credentials add`` or ``enable``).
    """

    def __init__(self, pool: asyncpg.Pool, cooldowns: dict[str, float], default_cooldown: float,
                 first_rest: float = 5.0) -> None:
        self._pool = pool
        self._cooldowns = cooldowns
        self._default_cooldown = default_cooldown
        self._first_rest = first_rest

    def cooldown_for(self, source: str) -> float:
        return self._cooldowns.get(source, self._default_cooldown)

    async def rest(self, credential: Credential, retry_after: float | None) -> float:
        """Rest the credential; return the seconds it rests."""
        if retry_after is not None and retry_after > 0:
            seconds = await self._pool.fetchval(
                "UPDATE credential SET disabled_till = now() + make_interval(secs => $2), updated_at = now() "
                "WHERE id = $1 RETURNING $2::float8",
                int(credential.id), retry_after,
            )
        else:
            cap = self.cooldown_for(credential.source)
            # The right-hand sides read the row as it was: the rest doubles with the strikes before this one.
            # A 429 that arrives while the key already rests came from a call sent before the rest began (a
            # burst meets every call in flight): it neither doubles nor extends the rest.
            seconds = await self._pool.fetchval(
                """
                UPDATE credential
                SET disabled_till = CASE WHEN disabled_till > now() THEN disabled_till
                        ELSE now() + make_interval(secs => LEAST($2 * power(2, LEAST(quota_strikes, 30)), $3)) END,
                    quota_strikes = CASE WHEN disabled_till > now() THEN quota_strikes ELSE quota_strikes + 1 END,
                    updated_at = now()
                WHERE id = $1
                RETURNING GREATEST(EXTRACT(EPOCH FROM disabled_till - now()), 0)::float8
                """,
                int(credential.id), min(self._first_rest, cap), cap,
            )
        if seconds is None:  # deleted meanwhile
            return 0.0
        log.warning("credential %s of %s rests for %.3gs after a quota answer", credential.id, credential.source,
                    seconds)
        return seconds

    async def answered(self, credential: Credential) -> None:
        """A call with this credential succeeded: its quota streak is over."""
        if not credential.quota_strikes:
            return
        await self._pool.execute(
            "UPDATE credential SET quota_strikes = 0 WHERE id = $1 AND quota_strikes > 0", int(credential.id))

    async def expire(self, credential: Credential) -> None:
        await self._pool.execute(
            "UPDATE credential SET data_access_expired = true, updated_at = now() WHERE id = $1", int(credential.id)
        )
        log.warning("credential %s of %s is out of rotation: its token was refused", credential.id,
                    credential.source)


def masked(secrets: dict) -> dict:
    """A credential's secrets as shown to people: the names, and the last 3 characters of each value."""
    return {name: ("…" + str(value)[-3:] if len(str(value)) > 6 else "***") for name, value in secrets.items()}
