"""update_graph_token against real Postgres: insert, newer token, re-enable an expired credential (a worker's
cache sees it within a second), an operator's disable kept."""

from __future__ import annotations

import json

from providers.credential_cache import CredentialCache
from providers.credentials import CredentialStore
from providers.graph_tokens import update_graph_token
from tests.providers.test_credential_cache import within
from tests.support import unique


async def _row(pool, handle: str):
    return await pool.fetchrow(
        "SELECT id, credentials, enabled, data_access_expired FROM credential "
        "WHERE source = 'graphapi' AND handle = $1",
        handle,
    )


async def test_inserts_for_an_account_without_a_credential(pool):
    handle = unique("new")
    await update_graph_token(pool, handle, "tok-1", "178")
    row = await _row(pool, handle)
    assert json.loads(row["credentials"]) == {"token": "tok-1", "user_id": "178"}
    assert row["enabled"] and not row["data_access_expired"]


async def test_keeps_the_newer_token_and_an_operators_disable(pool):
    handle = unique("good")
    await CredentialStore(pool).add("graphapi", {"token": "old", "user_id": "178"}, handle=handle)
    await pool.execute("UPDATE credential SET enabled = false WHERE source = 'graphapi' AND handle = $1", handle)
    await update_graph_token(pool, handle, "tok-2", "178")
    row = await _row(pool, handle)
    assert json.loads(row["credentials"])["token"] == "tok-2" and not row["enabled"]


async def test_renews_an_expired_credential_and_workers_see_it_within_a_second(pool, database_url):
    handle = unique("expired")
    await CredentialStore(pool).add("graphapi", {"token": "old", "user_id": "178"}, handle=handle)
    await pool.execute(
        "UPDATE credential SET data_access_expired = true, enabled = false WHERE source = 'graphapi' AND handle = $1",
        handle,
    )
    cache = await CredentialCache.open(pool, database_url, refresh_interval=30.0, max_age=300.0)
    try:
        assert await cache.pick("graphapi", handle) is None

        await update_graph_token(pool, handle, "tok-3", "178")

        async def picked():
            return await cache.pick("graphapi", handle)

        await within(1.0, picked, lambda credential: credential is not None and credential.secrets["token"] == "tok-3")
    finally:
        await cache.aclose()
    row = await _row(pool, handle)
    assert row["enabled"] and not row["data_access_expired"]
