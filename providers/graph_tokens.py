"""A fresh Graph token for an Instagram account (legacy ``update_token``, §5 and §10).

The account's client hands Beat a new user token when it renews its grant (the insights routes, the
legacy AMQP listener). A credential flagged ``data_access_expired`` takes the new token and goes back
into rotation; an account without a Graph credential gets one. Workers see either change within a
second: the ``credential`` table announces it (LISTEN/NOTIFY, ``providers/credential_cache.py``).
"""

from __future__ import annotations

import json
import logging
from typing import Literal

import asyncpg

from providers.credentials import CredentialStore

log = logging.getLogger(__name__)

SOURCE = "graphapi"

_FIND = """
SELECT id, data_access_expired FROM credential
WHERE source = $1 AND handle = $2
ORDER BY data_access_expired DESC, id
LIMIT 1
FOR UPDATE
"""

# As ``CredentialStore.set_enabled`` re-enables, with the fresh secrets.
_RENEW = """
UPDATE credential SET credentials = $2::jsonb, enabled = true, data_access_expired = false, disabled_till = NULL,
    updated_at = now()
WHERE id = $1
"""

Outcome = Literal["inserted", "renewed", "unchanged"]


async def update_graph_token(pool: asyncpg.Pool, handle: str, token: str, user_id: str) -> Outcome:
    """Store ``token`` for ``handle``'s Graph credential: insert one when there is none, renew and re-enable
    an expired one, and leave a credential in good standing as it is (the legacy rule)."""
    secrets = {"token": token, "user_id": user_id}
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(_FIND, SOURCE, handle)
        if row is not None and row["data_access_expired"]:
            await conn.execute(_RENEW, row["id"], json.dumps(secrets))
            log.info("graphapi credential %s of %s renewed with a fresh token", row["id"], handle)
            return "renewed"
    if row is not None:
        return "unchanged"
    credential_id = await CredentialStore(pool).add(SOURCE, secrets, handle=handle)
    log.info("graphapi credential %s added for %s", credential_id, handle)
    return "inserted"
