"""youtube-v31 on RapidAPI (source ``yt-v31``): a proxy of the YouTube Data API v3.

It answers ``/channels``, ``/videos``, ``/playlistItems`` and ``/search`` in the Data API's own
shapes, so the Data API parsers and refusal classification of ``providers.youtube.youtube_data`` read
its answers; events are labelled ``ytapi`` as the legacy engine labelled them (legacy §3.3).
The credential is the RapidAPI headers (``x-rapidapi-key``, ``x-rapidapi-host``). Legacy read
one page of a playlist only; so does this client (its pages carry no cursor).
"""

from __future__ import annotations

from typing import Any

from providers.errors import NotSupported, PostMissing, ProfileMissing, ProviderError
from providers.http import Credential, ProviderHttp
from providers.paging import Page
from providers.youtube.youtube_data import (
    MAX_IDS,
    PAGE_SIZE,
    channel_search_window,
    check_batch,
    get_answer,
    parse_channels,
    parse_playlist_items_page,
    parse_search_ids_page,
    parse_videos,
)
from topics.models import Post, Profile

SOURCE = "yt-v31"


class YtV31Client:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def channels(self, ids: list[str], *, credential: Credential, request_id: str | None = None) -> list[Profile]:
        answer = await self._get(
            "/channels",
            {"part": "snippet,statistics,contentDetails", "id": check_batch(ids), "maxResults": str(MAX_IDS)},
            credential,
            request_id,
            ProfileMissing,
        )
        return parse_channels(answer)

    async def videos(self, ids: list[str], *, credential: Credential, request_id: str | None = None) -> list[Post]:
        answer = await self._get(
            "/videos",
            {"part": "snippet,statistics,contentDetails", "id": check_batch(ids)},
            credential,
            request_id,
            PostMissing,
        )
        return parse_videos(answer)

    async def playlist_items(
        self, playlist_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        if cursor:
            raise NotSupported("yt-v31 playlist items have no further pages", source=SOURCE)
        answer = await self._get(
            "/playlistItems",
            {"part": "id,contentDetails", "playlistId": playlist_id, "maxResults": str(PAGE_SIZE)},
            credential,
            request_id,
            ProfileMissing,
        )
        return Page(items=parse_playlist_items_page(answer).items, next_cursor=None)

    async def channel_video_ids(
        self,
        channel_id: str,
        start_date: str | None = None,
        end_date: str | None = None,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page:
        params = {
            "part": "id",
            "channelId": channel_id,
            "order": "date",
            "maxResults": str(PAGE_SIZE),
            **channel_search_window(start_date, end_date),
        }
        if cursor:
            params["pageToken"] = cursor
        return parse_search_ids_page(await self._get("/search", params, credential, request_id, ProfileMissing))

    async def _get(
        self,
        path: str,
        params: dict[str, str],
        credential: Credential,
        request_id: str | None,
        missing: type[ProviderError],
    ) -> dict[str, Any]:
        return await get_answer(
            self._http, SOURCE, path, params, credential=credential, request_id=request_id, missing=missing
        )
