"""Credentials moved in bulk: from a legacy database (``beat legacy import``) or a JSON-lines file
(``beat legacy import-credentials``), and out to one (``export-credentials``).

A credential is keyed by its idempotency key (legacy §10); a legacy row without one gets the key
``beat credentials add`` would give it. The newer ``updated_at`` wins, a null handle never replaces a
stored one, and a row equal to the stored one is not rewritten, so moving the same file twice changes
nothing. A null ``enabled`` is false: the legacy picked only ``enabled = true`` rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, field_validator

from topics.models import utcnow


class CredentialRecord(BaseModel):
    """One credential as exported: one JSON line."""

    model_config = ConfigDict(extra="ignore")

    source: str
    credentials: dict[str, Any]
    handle: str | None = None
    idempotency_key: str | None = None
    enabled: bool = True
    disabled_till: datetime | None = None
    data_access_expired: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("source")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("source is empty")
        return value

    def key(self) -> str:
        """The idempotency key, defaulted as ``beat credentials add`` does (never a secret itself)."""
        if self.idempotency_key:
            return self.idempotency_key
        digest = hashlib.sha256(json.dumps(self.credentials, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.source}:{self.handle or digest}"


_COLUMNS = "idempotency_key, source, credentials, handle, enabled, disabled_till, data_access_expired"
_UPSERT = f"""
INSERT INTO credential AS t ({_COLUMNS}, created_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::boolean[], $6::timestamptz[],
                     $7::boolean[], $8::timestamptz[], $9::timestamptz[])
ON CONFLICT (idempotency_key) DO UPDATE SET
    source = EXCLUDED.source,
    credentials = EXCLUDED.credentials,
    handle = COALESCE(EXCLUDED.handle, t.handle),
    enabled = EXCLUDED.enabled,
    disabled_till = EXCLUDED.disabled_till,
    data_access_expired = EXCLUDED.data_access_expired,
    updated_at = EXCLUDED.updated_at
WHERE EXCLUDED.updated_at > t.updated_at
  AND ROW(t.source, t.credentials, t.handle, t.enabled, t.disabled_till, t.data_access_expired)
      IS DISTINCT FROM ROW(EXCLUDED.source, EXCLUDED.credentials, COALESCE(EXCLUDED.handle, t.handle),
                           EXCLUDED.enabled, EXCLUDED.disabled_till, EXCLUDED.data_access_expired)
RETURNING t.idempotency_key
"""


def _newest(records: Sequence[CredentialRecord]) -> dict[str, CredentialRecord]:
    """One record per key, the newest (a statement cannot update one row twice)."""
    chosen: dict[str, CredentialRecord] = {}
    for record in records:
        key = record.key()
        current = chosen.get(key)
        if current is None or (record.updated_at or record.created_at or utcnow()) >= (
            current.updated_at or current.created_at or utcnow()
        ):
            chosen[key] = record
    return chosen


async def upsert_credentials(conn: asyncpg.Connection, records: Sequence[CredentialRecord]) -> list[str]:
    """Write ``records``; the keys of the credentials added or changed."""
    chosen = _newest(records)
    if not chosen:
        return []
    now = utcnow()
    rows = [
        (
            key,
            r.source,
            json.dumps(r.credentials),
            r.handle or None,
            r.enabled,
            r.disabled_till,
            r.data_access_expired,
            r.created_at or r.updated_at or now,
            r.updated_at or r.created_at or now,
        )
        for key, r in chosen.items()
    ]
    returned = await conn.fetch(_UPSERT, *[list(column) for column in zip(*rows, strict=True)])
    return [row["idempotency_key"] for row in returned]


def record_of_legacy(row: dict[str, Any]) -> CredentialRecord:
    """A legacy ``credential`` row (legacy §10); raises ValueError naming what is wrong with it."""
    secrets = row.get("credentials")
    if not isinstance(secrets, dict):
        raise ValueError("credentials is not a JSON object")
    return CredentialRecord(
        source=row.get("source") or "",
        credentials=secrets,
        handle=row.get("handle"),
        idempotency_key=row.get("idempotency_key"),
        enabled=bool(row.get("enabled")),
        disabled_till=row.get("disabled_till"),
        data_access_expired=bool(row.get("data_access_expired")),
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
    )


# A row without secrets or a source (the legacy has some) is no credential to move.
_USABLE = "jsonb_typeof(credentials) = 'object' AND COALESCE(source, '') <> ''"
_EXPORT = f"""
SELECT idempotency_key, source, credentials, handle, COALESCE(enabled, false) AS enabled, disabled_till,
    COALESCE(data_access_expired, false) AS data_access_expired, created_at, updated_at
FROM credential WHERE {_USABLE} ORDER BY id
"""


async def export_credentials(conn: asyncpg.Connection) -> tuple[list[CredentialRecord], int]:
    """Every usable credential of a Beat or legacy database (the columns are the same, legacy §10), and how
    many rows were left out as unusable."""
    records = []
    for row in await conn.fetch(_EXPORT):
        secrets = row["credentials"]
        records.append(
            CredentialRecord.model_validate(
                {**dict(row), "credentials": json.loads(secrets) if isinstance(secrets, str) else secrets}
            )
        )
    unusable = await conn.fetchval(f"SELECT count(*) FROM credential WHERE NOT ({_USABLE}) OR credentials IS NULL")
    return records, unusable
