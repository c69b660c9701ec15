"""youtube-v311 on RapidAPI (source ``rapidapi-yt-search``): a proxy of the Data API's search and
commentThreads, at ``/search/`` and ``/commentThreads/``.

Answers are in the Data API's shapes and go through the parsers and refusal classification of
``providers.youtube.youtube_data``; events carry this source's own label, ``rapidapi-yt-search``
(legacy §4.3). The credential is the RapidAPI headers. Like the Data API client, the keyword
search asks once more when a 200 answer comes back empty (legacy §11.1).
"""

from __future__ import annotations

from datetime import datetime

from providers.errors import PostMissing
from providers.http import Credential, ProviderHttp
from providers.paging import Page
from providers.youtube.youtube_data import (
    comment_params,
    get_answer,
    keyword_search_params,
    parse_comment_threads_page,
    parse_search_snippet_page,
)

SOURCE = "rapidapi-yt-search"


class YouTubeV311Client:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def keyword_search(
        self,
        keyword: str,
        published_after: datetime,
        published_before: datetime,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page:
        answer = await get_answer(
            self._http,
            SOURCE,
            "/search/",
            keyword_search_params(keyword, published_after, published_before, cursor),
            credential=credential,
            request_id=request_id,
            missing=PostMissing,
            retry_empty=True,
        )
        return parse_search_snippet_page(answer, source=SOURCE)

    async def comments(
        self, video_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        answer = await get_answer(
            self._http,
            SOURCE,
            "/commentThreads/",
            comment_params(video_id, cursor, "snippet"),
            credential=credential,
            request_id=request_id,
            missing=PostMissing,
        )
        return parse_comment_threads_page(answer, source=SOURCE)
