"""ArrayBobo (``instagram-scraper-2022`` on RapidAPI): pure parsers of its answers, and the client.

The parsers follow the legacy field paths (legacy-beat.md §3.2) and key names (§4.2). The
answers are Instagram's own JSON passed through, so their types drift: ids arrive as numbers
or strings, counts as numbers or numeric strings. Parsers emit ids as strings and counts as
ints, and keep a missing value missing (None) rather than guessing a zero.

ArrayBobo answers HTTP 200 when a profile or post does not exist; only the body
(``{"message": "User not found", "status": "fail"}``) or an empty ``data.user`` says so.

The media themselves (GraphQL nodes, v1 reels and stories) are read by ``instagram_shapes``,
which other providers passing the same JSON through share.
"""

from __future__ import annotations

from typing import Any

from providers.errors import BadResponse, PostMissing, ProfileMissing, ProviderError
from providers.http import Credential, ProviderHttp
from providers.instagram.instagram_shapes import (
    answers_null,
    clips,
    clips_cursor,
    graphql_post,
    next_page_cursor,
    reel_stories,
    refusal,
    v1_profile,
)
from providers.paging import Page
from providers.parsing import Values, at, json_object
from topics.models import Post, Profile

SOURCE = "rapidapi-arraybobo"
_v = Values(SOURCE)


# Parsers


def parse_profile(payload: dict[str, Any], *, handle: str | None = None, profile_id: str | None = None) -> Profile:
    """A ``/ig/info_username/`` or ``/ig/info/`` answer; ``handle``/``profile_id`` = what was asked for."""
    payload = _v.require_object(payload)
    user = payload.get("user")
    if not isinstance(user, dict):
        raise refusal(payload, ProfileMissing, "user", SOURCE)
    return v1_profile(user, SOURCE, handle=handle, profile_id=profile_id)


def _graphql_page(payload: dict[str, Any], edge: str) -> Page:
    """One page of a user's GraphQL media listing at ``data.user.<edge>``."""
    payload = _v.require_object(payload)
    if answers_null(payload, "user"):
        raise ProfileMissing("no such user", source=SOURCE)
    media = at(payload, f"data.user.{edge}")
    if not isinstance(media, dict):
        raise refusal(payload, ProfileMissing, f"data.user.{edge}", SOURCE)
    edges = _v.list(media.get("edges"), "edges") or []
    items = []
    for entry in edges:
        node = at(entry, "node")
        if not isinstance(node, dict):
            raise BadResponse(f"{edge} edge has no node", source=SOURCE)
        items.append(graphql_post(node, SOURCE))
    return Page(items=items, next_cursor=next_page_cursor(media, SOURCE))


def parse_timeline_page(payload: dict[str, Any]) -> Page:
    """A ``/ig/posts/`` answer: one page of a profile's timeline, newest first."""
    return _graphql_page(payload, "edge_owner_to_timeline_media")


def parse_tagged_page(payload: dict[str, Any], *, profile_id: str) -> Page:
    """A ``/ig/tagged/`` answer: one page of the posts ``profile_id`` is tagged in, newest first."""
    page = _graphql_page(payload, "edge_user_to_photos_of_you")
    for post in page.items:
        # Legacy names the queried profile here: the one tag this listing vouches for.
        post.dimensions["tagged_user_ids"] = str(profile_id).strip()
    return page


def parse_post(payload: dict[str, Any], *, shortcode: str | None = None) -> Post:
    """A ``/ig/post_info/`` answer: the GraphQL media object at the top level."""
    payload = _v.require_object(payload)
    if "shortcode" not in payload:
        raise refusal(payload, PostMissing, "shortcode", SOURCE)
    post = graphql_post(payload, SOURCE)
    if shortcode is not None and post.shortcode != shortcode:
        raise PostMissing(f"asked for {shortcode!r}, answered for {post.shortcode!r}", source=SOURCE)
    video_url = _v.text(payload.get("video_url"), "video_url")
    post.metrics["play_count"] = _v.count(payload.get("video_play_count"), "video_play_count")
    post.metrics["video_duration"] = _v.number(payload.get("video_duration"), "video_duration")
    post.dimensions["display_url"] = video_url or post.dimensions["display_url"]
    post.dimensions["thumbnail_src"] = _v.text(at(payload, "display_resources.0.src"), "display_resources.0.src")
    location = payload.get("location")
    if location is not None and not isinstance(location, dict):
        raise BadResponse("location is not an object", source=SOURCE)
    post.dimensions["location"] = location
    return post


def parse_reels_page(payload: dict[str, Any]) -> Page:
    """A ``/ig/reels_posts/`` answer: one page of a profile's reels, newest first."""
    payload = _v.require_object(payload)
    items = payload.get("items")
    if not isinstance(items, list):
        raise refusal(payload, ProfileMissing, "items", SOURCE)
    reels = [reel for _, reel in clips(items, SOURCE)]
    return Page(items=reels, next_cursor=clips_cursor(payload, SOURCE))


def parse_stories(payload: dict[str, Any], *, profile_id: str) -> list[Post]:
    """A ``/ig/stories/`` answer: the profile's active stories, oldest first; none when it has no reel."""
    payload = _v.require_object(payload)
    if payload.get("status") == "fail":
        raise refusal(payload, ProfileMissing, "reels", SOURCE)
    return [story for _, story in reel_stories(payload, profile_id, SOURCE)]


# Client


class ArrayBoboClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def profile_by_handle(self, handle: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        payload = await self._get("/ig/info_username/", {"user": handle}, credential, request_id, ProfileMissing)
        return parse_profile(payload, handle=handle)

    async def profile_by_id(self, profile_id: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        payload = await self._get("/ig/info/", {"id_user": profile_id}, credential, request_id, ProfileMissing)
        return parse_profile(payload, profile_id=profile_id)

    async def posts_by_id(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"id_user": profile_id} | ({"end_cursor": cursor} if cursor else {})
        return parse_timeline_page(await self._get("/ig/posts/", params, credential, request_id, ProfileMissing))

    async def post_by_shortcode(self, shortcode: str, *, credential: Credential, request_id: str | None = None) -> Post:
        payload = await self._get("/ig/post_info/", {"shortcode": shortcode}, credential, request_id, PostMissing)
        return parse_post(payload, shortcode=shortcode)

    async def reels(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"id_user": profile_id} | ({"max_id": cursor} if cursor else {})
        return parse_reels_page(await self._get("/ig/reels_posts/", params, credential, request_id, ProfileMissing))

    async def tagged_posts(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"id_user": profile_id} | ({"end_cursor": cursor} if cursor else {})
        payload = await self._get("/ig/tagged/", params, credential, request_id, ProfileMissing)
        return parse_tagged_page(payload, profile_id=profile_id)

    async def stories(self, profile_id: str, *, credential: Credential, request_id: str | None = None) -> list[Post]:
        payload = await self._get("/ig/stories/", {"id_user": profile_id}, credential, request_id, ProfileMissing)
        return parse_stories(payload, profile_id=profile_id)

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
