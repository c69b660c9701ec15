"""NeoTank (``instagram130`` on RapidAPI): pure parsers of its answers, and the client.

Both calls answer Instagram's web GraphQL shapes at the top level of the body:
``/account-info`` the profile (``edge_followed_by.count`` and so on, with its first timeline
page embedded), ``/account-medias`` one timeline page (``edges``, ``page_info``). Legacy
treated 401, 422 and 503 as failures: 401 is a refused key, 422 a username or id NeoTank
will not process (so the profile cannot be had from it), 503 an outage.
"""

from __future__ import annotations

from typing import Any

from providers.errors import BadResponse, ProfileMissing
from providers.http import Credential, ProviderHttp
from providers.instagram.instagram_shapes import (
    check_answered_for,
    graphql_post,
    next_page_cursor,
    not_found_refusal,
    web_business_flags,
    web_profile_counts,
)
from providers.paging import Page
from providers.parsing import Values, at, json_object, provider_message
from topics.models import Platform, Post, Profile

SOURCE = "rapidapi-neotank"
_v = Values(SOURCE)

POSTS_PAGE_SIZE = 80


def _embedded_posts(payload: dict[str, Any]) -> list[Post]:
    edges = _v.list(at(payload, "edge_owner_to_timeline_media.edges"), "edge_owner_to_timeline_media.edges") or []
    return [graphql_post(_node(edge), SOURCE) for edge in edges]


def _node(edge: Any) -> dict[str, Any]:
    node = at(edge, "node")
    if not isinstance(node, dict):
        raise BadResponse("edge has no node", source=SOURCE)
    return node


# Parsers


def parse_profile(payload: dict[str, Any], *, handle: str | None = None) -> Profile:
    """An ``/account-info`` answer; ``handle`` = what was asked for."""
    payload = _v.require_object(payload)
    if "id" not in payload and "username" not in payload:
        raise not_found_refusal(payload, "id or username", SOURCE)
    profile_id = _v.id(payload.get("id"), "id")
    username = _v.text(payload.get("username"), "username")
    if profile_id is None or not username:
        raise BadResponse("profile has no id or username", source=SOURCE)
    check_answered_for(profile_id, username, SOURCE, handle=handle)
    is_business, is_professional, either = web_business_flags(payload, "", SOURCE)
    picture = _v.text(payload.get("profile_pic_url_hd"), "profile_pic_url_hd") or _v.text(
        payload.get("profile_pic_url"), "profile_pic_url"
    )
    return Profile(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        profile_id=profile_id,
        handle=username,
        metrics=web_profile_counts(payload, "", SOURCE),
        dimensions={
            "profile_id": profile_id,
            "handle": username,
            "full_name": _v.text(payload.get("full_name"), "full_name"),
            "bio": _v.text(payload.get("biography"), "biography"),
            "profile_pic_url": picture,
            "external_url": _v.text(payload.get("external_url"), "external_url"),
            "fbid": _v.id(payload.get("fbid"), "fbid"),
            "category": _v.text(payload.get("category_name"), "category_name"),
            "business_category": _v.text(payload.get("business_category_name"), "business_category_name"),
            "is_private": _v.flag(payload.get("is_private"), "is_private"),
            "is_verified": _v.flag(payload.get("is_verified"), "is_verified"),
            "is_business": is_business,
            "is_professional": is_professional,
            "is_business_or_creator": either,
        },
        embedded_posts=_embedded_posts(payload),
    )


def parse_posts_page(payload: dict[str, Any], *, profile_id: str | None = None) -> Page:
    """An ``/account-medias`` answer: one page of a profile's timeline, newest first."""
    payload = _v.require_object(payload)
    edges = payload.get("edges")
    if not isinstance(edges, list):
        raise not_found_refusal(payload, "edges", SOURCE)
    posts = [graphql_post(_node(edge), SOURCE) for edge in edges]
    if profile_id is not None:
        asked = str(profile_id).strip()
        others = {post.profile_id for post in posts if post.profile_id not in (None, asked)}
        if others:
            raise ProfileMissing(f"asked for id {asked}, answered with posts of {sorted(others)}", source=SOURCE)
    return Page(items=posts, next_cursor=next_page_cursor(payload, SOURCE))


# Client


class NeoTankClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def profile_by_handle(self, handle: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        payload = await self._get("/account-info", {"username": handle}, credential, request_id)
        return parse_profile(payload, handle=handle)

    async def posts_by_id(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"userid": profile_id, "first": str(POSTS_PAGE_SIZE)} | ({"after": cursor} if cursor else {})
        return parse_posts_page(
            await self._get("/account-medias", params, credential, request_id), profile_id=profile_id
        )

    async def _get(
        self, path: str, params: dict[str, str], credential: Credential, request_id: str | None
    ) -> dict[str, Any]:
        response = await self._http.request(
            SOURCE, "GET", path, credential=credential, params=params, request_id=request_id
        )
        if response.status_code == 422:
            raise ProfileMissing(f"GET {path} answered 422: {provider_message(response.text)}", source=SOURCE)
        return json_object(response, SOURCE, ProfileMissing, f"GET {path}")
