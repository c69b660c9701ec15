"""youtube138 on RapidAPI (source ``rapidapi-yt``): pure parsers of its answers, and the client.

youtube138 scrapes YouTube's own pages, so it answers one channel or one video per call
(``/v1/channel/details/``, ``/v2/video/details/``) in its own shape: counts as numbers under
``stats``, a channel's ``joinedDate`` as ``YYYY-MM-DD``, a video's ``date.published`` as an
ISO-8601 instant, images as ``{url, width, height}``. Field paths follow legacy-beat.md §3.3 and
key names §4.2; events are labelled ``rapidapi-yt``.

An id youtube138 does not know is answered ``{"error": "..."}`` (or a 404); a batch skips that
one id and keeps the rest, as a Data API batch simply leaves it out of ``items``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from providers.errors import BadResponse, PostMissing, ProfileMissing, ProviderError
from providers.http import Credential, ProviderHttp
from providers.paging import Page
from providers.parsing import Values, at, json_object
from topics.models import Platform, Post, Profile

SOURCE = "rapidapi-yt"
_v = Values(SOURCE)

# Per-id calls of one batch in flight at once; the source's 850/60 s budget is the limiter's job.
MAX_CONCURRENCY = 10
VERIFIED_BADGE = "Verified"
# The legacy thumbnail is the sixth desktop banner (2560 px wide on YouTube's current ladder).
BANNER_THUMBNAIL_INDEX = 5
VIDEOS_LATEST = "videos_latest"

T = TypeVar("T")


# Parsers


def _entity_id(payload: dict[str, Any], field: str, missing: type[ProviderError]) -> str:
    """The answered entity's id; ``missing`` when youtube138 said the id is unknown or answered without one."""
    refusal = payload.get("error")
    if refusal is not None:
        raise missing(str(refusal), source=SOURCE)
    entity_id = _v.id(payload.get(field), field)
    if entity_id is None:
        raise missing(f"answer has no {field}", source=SOURCE)
    return entity_id


def parse_date(value: Any, field: str) -> tuple[int | None, datetime | None]:
    """A ``YYYY-MM-DD`` date (UTC midnight) or an ISO-8601 instant, as an epoch and an aware UTC datetime."""
    text = _v.text(value, field)
    if text is None or not text.strip():
        return None, None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadResponse(f"{field} is not a date: {text!r}", source=SOURCE) from exc
    return _v.utc(moment, field)


def iso_duration(length_seconds: int | None) -> str | None:
    """Seconds as the legacy duration text ``PT{h}H{mm}M{ss}S`` (hours always present, 754 s → PT0H12M34S)."""
    if length_seconds is None:
        return None
    hours, rest = divmod(length_seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"PT{hours}H{minutes:02d}M{seconds:02d}S"


def _json(value: Any) -> str | None:
    return json.dumps(value) if value is not None else None


def _verified(badges: Any) -> bool | None:
    badges = _v.list(badges, "badges")
    if badges is None:
        return None
    return bool(at(badges, "0.text") == VERIFIED_BADGE)


def parse_channel(payload: dict[str, Any]) -> Profile:
    """A ``/v1/channel/details/`` answer."""
    payload = _v.require_object(payload)
    channel_id = _entity_id(payload, "channelId", ProfileMissing)
    username = _v.text(payload.get("username"), "username") or None
    desktop = _v.list(at(payload, "banner.desktop"), "banner.desktop")
    links = _v.list(payload.get("links"), "links")
    epoch, _ = parse_date(payload.get("joinedDate"), "joinedDate")
    return Profile(
        platform=Platform.YOUTUBE,
        source=SOURCE,
        profile_id=channel_id,
        handle=username,
        metrics={
            "video_count": _v.count(at(payload, "stats.videos"), "stats.videos"),
            "subscriber_count": _v.count(at(payload, "stats.subscribers"), "stats.subscribers"),
            "view_count": _v.count(at(payload, "stats.views"), "stats.views"),
        },
        dimensions={
            "title": _v.text(payload.get("title"), "title"),
            "description": _v.text(payload.get("description"), "description"),
            "custom_url": username,
            "external_urls": _json(links),
            "thumbnails": _json(desktop),
            # A channel without a banner, or with a shorter ladder, has no sixth image.
            "thumbnail": _v.text(at(desktop, f"{BANNER_THUMBNAIL_INDEX}.url"), "banner.desktop.5.url"),
            "country": _v.text(payload.get("country"), "country"),
            "taken_at_timestamp": epoch,
            "is_verified": _verified(payload.get("badges")),
        },
    )


def _thumbnail(thumbnails: Any) -> Any:
    # The v2 details name their sizes (``thumbnails.high``); the v1 shape is a list, smallest first.
    if isinstance(thumbnails, list):
        return at(thumbnails, f"{len(thumbnails) - 1}.url") if thumbnails else None
    return at(thumbnails, "high.url")


def parse_video(payload: dict[str, Any]) -> Post:
    """A ``/v2/video/details/`` answer (the flat v1 ``publishedDate`` and thumbnail list are read too)."""
    payload = _v.require_object(payload)
    video_id = _entity_id(payload, "videoId", PostMissing)
    published = at(payload, "date.published")
    epoch, published_at = (
        parse_date(published, "date.published")
        if published is not None
        else parse_date(payload.get("publishedDate"), "publishedDate")
    )
    thumbnails = payload.get("thumbnails")
    if thumbnails is not None and not isinstance(thumbnails, (dict, list)):
        raise BadResponse(f"thumbnails is not a list or an object: {thumbnails!r}", source=SOURCE)
    keywords = _v.list(payload.get("keywords"), "keywords")
    rating = at(payload, "content.rating")
    return Post(
        platform=Platform.YOUTUBE,
        source=SOURCE,
        shortcode=video_id,
        profile_id=_v.id(at(payload, "author.channelId"), "author.channelId"),
        handle=None,
        publish_time=published_at,
        metrics={
            "comments": _v.count(at(payload, "stats.comments"), "stats.comments"),
            "likes": _v.count(at(payload, "stats.likes"), "stats.likes"),
            "view_count": _v.count(at(payload, "stats.views"), "stats.views"),
        },
        dimensions={
            "title": _v.text(payload.get("title"), "title"),
            "channel_title": _v.text(at(payload, "author.title"), "author.title"),
            "description": _v.text(payload.get("description"), "description"),
            "duration": iso_duration(_v.count(payload.get("lengthSeconds"), "lengthSeconds")),
            "taken_at_timestamp": epoch,
            "thumbnails": _json(thumbnails),
            "thumbnail": _v.text(_thumbnail(thumbnails), "thumbnails.high.url"),
            "tags": _json(keywords),
            "category_id": _v.id(at(payload, "category.id"), "category.id"),
            "audio_language": _v.text(at(payload, "language.defaultAudioLanguage"), "language.defaultAudioLanguage"),
            "is_licensed": _v.flag(at(payload, "content.licensed"), "content.licensed"),
            "content_rating": _json(rating),
            "playlist_id": _v.id(
                at(payload, "endScreen.items.1.playlist.playlistId"), "endScreen.items.1.playlist.playlistId"
            ),
        },
    )


def parse_channel_videos_page(payload: dict[str, Any]) -> Page:
    """A ``/v1/channel/videos/`` answer: the video ids of one page, newest first, and ``cursorNext``."""
    payload = _v.require_object(payload)
    if (refusal := payload.get("error")) is not None:
        raise ProfileMissing(str(refusal), source=SOURCE)
    contents = _v.list(payload.get("contents"), "contents")
    if contents is None:
        raise BadResponse("answer has no contents", source=SOURCE)
    ids = []
    for entry in contents:
        # Other entry types (a short or a live under another filter) carry no ``video``.
        video_id = _v.id(at(entry, "video.videoId"), "contents.video.videoId")
        if video_id is not None:
            ids.append(video_id)
    cursor = _v.text(payload.get("cursorNext"), "cursorNext")
    return Page(items=ids, next_cursor=cursor or None)


# Client


class YouTube138Client:
    """``channels``, ``videos`` and ``channel_video_ids`` of the YouTube operation interface."""

    def __init__(self, http: ProviderHttp, *, max_concurrency: int = MAX_CONCURRENCY) -> None:
        self._http = http
        self._max_concurrency = max_concurrency

    async def channels(self, ids: list[str], *, credential: Credential, request_id: str | None = None) -> list[Profile]:
        """One call per channel; an unknown channel is left out."""

        async def one(channel_id: str) -> Profile:
            payload = await self._get(
                "/v1/channel/details/", {"id": channel_id}, credential, request_id, ProfileMissing
            )
            return parse_channel(payload)

        return await self._each(ids, one, ProfileMissing)

    async def videos(self, ids: list[str], *, credential: Credential, request_id: str | None = None) -> list[Post]:
        """One call per video; an unknown video is left out."""

        async def one(video_id: str) -> Post:
            payload = await self._get("/v2/video/details/", {"id": video_id}, credential, request_id, PostMissing)
            return parse_video(payload)

        return await self._each(ids, one, PostMissing)

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
        """A page of the channel's latest videos. youtube138 cannot filter by date, so ``start_date`` and
        ``end_date`` are ignored (legacy did the same); the caller stops by count."""
        params = {"id": channel_id, "filter": VIDEOS_LATEST} | ({"cursorNext": cursor} if cursor else {})
        payload = await self._get("/v1/channel/videos/", params, credential, request_id, ProfileMissing)
        return parse_channel_videos_page(payload)

    async def _each(
        self, ids: Sequence[str], fetch: Callable[[str], Awaitable[T]], missing: type[ProviderError]
    ) -> list[T]:
        """``fetch`` every id, a bounded number at once, in the ids' order; the first other error
        cancels the calls still running and is raised as it is, so the crawler can act on its class."""
        slots = asyncio.Semaphore(self._max_concurrency)

        async def bounded(item: str) -> T | None:
            async with slots:
                try:
                    return await fetch(item)
                except missing:
                    return None

        tasks = [asyncio.ensure_future(bounded(item)) for item in ids]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [result for result in results if result is not None]

    async def _get(
        self,
        path: str,
        params: dict[str, str],
        credential: Credential,
        request_id: str | None,
        missing: type[ProviderError],
    ) -> dict[str, Any]:
        response = await self._http.request(
            SOURCE, "GET", path, credential=credential, params=params, request_id=request_id
        )
        return json_object(response, SOURCE, missing, f"GET {path}")
