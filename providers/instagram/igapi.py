"""IGApi (``igdata`` on RapidAPI): the pure parser of its followers pages, and the client.

``/web_followers`` answers Instagram's web GraphQL follower listing at the top level:
``count``, ``edges[].node`` and ``page_info``. On large accounts it sometimes ends the list
early, answering "no next page" long before the end; a big ``count`` with no next cursor
is that, and the page is refused rather than passed off as the end of the list.
"""

from __future__ import annotations

from typing import Any

from providers.errors import BadResponse, ProfileMissing
from providers.http import Credential, ProviderHttp
from providers.instagram.instagram_shapes import (
    follower_relationships,
    next_page_cursor,
    person_dimensions,
)
from providers.paging import Page
from providers.parsing import Values, at, json_object

SOURCE = "rapidapi-igapi"
_v = Values(SOURCE)

# From this many followers on, a list that claims to be over has stopped early (legacy threshold).
EARLY_STOP_COUNT = 10_000


def parse_followers_page(payload: dict[str, Any], *, profile_id: str) -> Page:
    """A ``/web_followers`` answer: one page of who follows ``profile_id``."""
    payload = _v.require_object(payload)
    edges = payload.get("edges")
    page_info = payload.get("page_info")
    if not isinstance(edges, list) or not isinstance(page_info, dict):
        message = payload.get("message")
        if isinstance(message, str) and "not found" in message.lower():
            raise ProfileMissing(message, source=SOURCE)
        raise BadResponse("answer has no edges or page_info", source=SOURCE)
    cursor = next_page_cursor(payload, SOURCE)
    count = _v.count(payload.get("count"), "count")
    if count is not None and count >= EARLY_STOP_COUNT and cursor is None:
        raise BadResponse(
            f"the list of {count} followers ended without a next page: igdata stopped early", source=SOURCE
        )
    followers = []
    for edge in edges:
        node = at(edge, "node")
        if not isinstance(node, dict):
            raise BadResponse("follower edge has no node", source=SOURCE)
        follower = _v.id(node.get("id"), "node.id")
        if follower is None:
            raise BadResponse("follower has no id", source=SOURCE)
        followers.append((follower, person_dimensions(node, "node", SOURCE)))
    return Page(items=follower_relationships(followers, str(profile_id).strip(), SOURCE), next_cursor=cursor)


class IGApiClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def followers(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        path = "/web_followers"
        params = {"user_id": profile_id} | ({"cursor": cursor} if cursor else {})
        # The legacy client asked igdata for an uncompressed answer; nothing says that is safe to drop.
        response = await self._http.request(
            SOURCE,
            "GET",
            path,
            credential=credential,
            params=params,
            headers={"Accept-Encoding": ""},
            request_id=request_id,
        )
        return parse_followers_page(json_object(response, SOURCE, ProfileMissing, f"GET {path}"), profile_id=profile_id)
