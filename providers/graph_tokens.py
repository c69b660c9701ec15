"""A fresh Graph token for an Instagram handle (the legacy ``update_token``, legacy-beat.md §5).

One function, shared by the identity service's AMQP announcements (``beat listen``) and the insights
routes that carry a token. The workers see the change within a second: the ``credential`` trigger
NOTIFYs every process's credential cache (``providers/credential_cache.py``).
"""

from __future__ import annotations

import json

import asyncpg

from providers.credentials import CredentialStore
from providers.instagram.graphapi import SOURCE

# The handle's Graph credentials get the fresh token. An expired one is re-enabled, as the legacy did; one an
# operator disabled (not expired) keeps its state: the new token does not overrule that decision.
_REFRESH = """
UPDATE credential
SET credentials = $2::jsonb,
    enabled = enabled OR data_access_expired,
    disabled_till = CASE WHEN data_access_expired THEN NULL ELSE disabled_till END,
    data_access_expired = false,
    updated_at = now()
WHERE source = $3 AND handle = $1
"""


async def update_graph_token(pool: asyncpg.Pool, handle: str, token: str, user_id: str) -> None:
    """Store ``{token, user_id}`` as ``handle``'s Graph credential: refresh the handle's rows (re-enabling an
    expired one), or insert one when it has none.

    The legacy changed nothing when the handle's credential was not expired; Beat keeps the newer token
    either way, since the identity service only announces tokens it has just been given.
    """
    secrets = {"token": token, "user_id": user_id}
    status: str = await pool.execute(_REFRESH, handle, json.dumps(secrets), SOURCE)
    if status == "UPDATE 0":
        await CredentialStore(pool).add(SOURCE, secrets, handle=handle)
