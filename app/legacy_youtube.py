"""``GET /youtube/channel/byhandle/{handle}`` (legacy §5): a YouTube handle's channel id, answered inline.

The legacy scraped the channel page. Beat asks the Data API's ``forHandle`` first (one quota unit, an answer
YouTube keeps stable) and reads the channel page only when that finds nothing or fails. Both calls go through
the facade's provider HTTP layer (``app.facade_providers``: limiter, trace_log without secrets), like the
workers' calls. Any failure to resolve is the legacy ERROR with code 400.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api_errors import LegacyRoute, legacy_error
from app.facade_providers import FacadeProviders, facade_providers
from app.legacy_posts_api import ErrorAnswer, Success
from app.legacy_profiles import Identity, State
from providers.errors import ProviderError
from providers.http import Credential
from providers.youtube.youtube_data import YouTubeDataClient
from providers.youtube.youtube_web import YouTubeWebClient

log = logging.getLogger(__name__)
router = APIRouter(route_class=LegacyRoute)
SOURCE = "ytapitoken"

# A usable API key, the least recently used first (the workers' order); the facade does not rest keys itself.
_PICK_KEY = """
SELECT id, credentials FROM credential
WHERE source = $1 AND enabled AND NOT data_access_expired AND (disabled_till IS NULL OR disabled_till <= now())
ORDER BY last_used_at NULLS FIRST, id LIMIT 1
"""


class ChannelHandle(BaseModel):
    handle: str
    channel_id: str


class ChannelAnswer(BaseModel):
    status: Success
    response: ChannelHandle


async def api_key(pool: asyncpg.Pool) -> Credential | None:
    row = await pool.fetchrow(_PICK_KEY, SOURCE)
    if row is None:
        return None
    secrets: dict[str, Any] = (
        json.loads(row["credentials"]) if isinstance(row["credentials"], str) else row["credentials"]
    )
    return Credential(id=str(row["id"]), source=SOURCE, secrets=secrets)


async def resolve(providers: FacadeProviders, pool: asyncpg.Pool, handle: str) -> str | None:
    """The channel id of ``handle`` ("@name"): forHandle with a stored key, else the channel page."""
    credential = await api_key(pool)
    with providers.on_demand():
        if credential is not None:
            try:
                found = await YouTubeDataClient(providers.http, SOURCE).channel_id_for_handle(
                    handle, credential=credential
                )
                if found is not None:
                    return found
            except ProviderError as exc:
                # The page may still name it; the error is the Data API's, not the caller's.
                log.info("forHandle failed for a handle (%s); reading the channel page", type(exc).__name__)
        return await YouTubeWebClient(providers.http).channel_id_for_handle(handle)


@router.get("/youtube/channel/byhandle/{handle}", response_model=ChannelAnswer | ErrorAnswer)
async def channel_by_handle(
    handle: Identity, state: State, providers: Annotated[FacadeProviders, Depends(facade_providers)]
) -> ChannelAnswer | JSONResponse:
    """Adds the "@" when missing, as the legacy did, and answers ``response={handle, channel_id}``."""
    at_handle = handle if handle.startswith("@") else f"@{handle}"
    try:
        channel_id = await resolve(providers, state.pool, at_handle)
    except ProviderError as exc:
        return legacy_error(f"Could not resolve {at_handle}: {exc.message}", 400)
    if channel_id is None:
        return legacy_error(f"No channel has the handle {at_handle}", 400)
    return ChannelAnswer(
        status=Success(message="Channel found"), response=ChannelHandle(handle=at_handle, channel_id=channel_id)
    )
