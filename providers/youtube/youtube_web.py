"""The shorts probe on youtube.com itself (label ``youtube-web``; legacy §2.2 refresh_yt_post_type).

``https://www.youtube.com/shorts/<id>`` shows a Short with 200 and redirects any other video to
its ``/watch`` page. ``ProviderHttp`` never follows redirects, so the status alone tells the two
apart. No credential: the page is public.

The Data API has no Shorts flag, and length alone cannot tell: since 2024-10-15 a square or vertical
upload of up to three minutes is a Short, while a wide video of any length is not. So only an upload
longer than ``SHORT_MAX_SECONDS`` is known to be a video without asking; anything shorter (or of
unknown length, or live: ``P0D``) is probed.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from providers.errors import BadResponse, PostMissing
from providers.http import ProviderHttp

SOURCE = "youtube-web"
SHORT = "short"
VIDEO = "video"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The longest a Short can be since YouTube's 2024-10-15 change (it was 60 s before).
SHORT_MAX_SECONDS = 180


# Where a channel page names its channel: the canonical link and the page data's externalId.
_CHANNEL_ID = re.compile(r'youtube\.com/channel/(UC[A-Za-z0-9_-]{22})"|"externalId":"(UC[A-Za-z0-9_-]{22})"')


def channel_id_in_page(page: str) -> str | None:
    """The channel id a channel page names, or None when it names none."""
    found = _CHANNEL_ID.search(page)
    return None if found is None else found[1] or found[2]


def post_type_by_length(seconds: int | None) -> str | None:
    """``video`` for an upload too long to be a Short; None when only the probe can tell."""
    return VIDEO if seconds is not None and seconds > SHORT_MAX_SECONDS else None


def post_type_of(status: int, video_id: str) -> str:
    """``short`` for a 200, ``video`` for a redirect to the watch page; a 404 is a missing video."""
    if status == 200:
        return SHORT
    if status in REDIRECTS:
        return VIDEO
    if status == 404:
        raise PostMissing(f"GET /shorts/{video_id} answered 404", source=SOURCE)
    raise BadResponse(f"GET /shorts/{video_id} answered {status}", source=SOURCE)


class YouTubeWebClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def post_type(self, video_id: str, *, request_id: str | None = None) -> str:
        """``short`` or ``video``, from the shorts page of ``video_id``."""
        # An id is [A-Za-z0-9_-]; quoting keeps anything else from reaching another path.
        response = await self._http.request(SOURCE, "GET", f"/shorts/{quote(video_id, safe='')}", request_id=request_id)
        return post_type_of(response.status_code, video_id)

    async def channel_id_for_handle(self, handle: str) -> str | None:
        """The channel id ``youtube.com/@handle`` names; None when there is no such page or it names none."""
        response = await self._http.request(SOURCE, "GET", f"/{quote(handle, safe='@')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BadResponse(f"GET /{handle[:40]} answered {response.status_code}", source=SOURCE)
        return channel_id_in_page(response.text)
