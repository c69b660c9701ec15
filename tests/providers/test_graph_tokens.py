"""update_graph_token against real Postgres: the legacy rule, and a worker's cache seeing a renewal at once."""

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
    assert await update_graph_token(pool, handle, "tok-1", "178") == "inserted"
    row = await _row(pool, handle)
    assert json.loads(row["credentials"]) == {"token": "tok-1", "user_id": "178"}
    assert row["enabled"] and not row["data_access_expired"]


async def test_leaves_a_credential_in_good_standing(pool):
    handle = unique("good")
    await CredentialStore(pool).add("graphapi", {"token": "old", "user_id": "178"}, handle=handle)
    assert await update_graph_token(pool, handle, "tok-2", "178") == "unchanged"
    assert json.loads((await _row(pool, handle))["credentials"])["token"] == "old"


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

        assert await update_graph_token(pool, handle, "tok-3", "178") == "renewed"

        async def picked():
            return await cache.pick("graphapi", handle)

        await within(1.0, picked, lambda credential: credential is not None and credential.secrets["token"] == "tok-3")
    finally:
        await cache.aclose()
    row = await _row(pool, handle)
    assert row["enabled"] and not row["data_access_expired"]
