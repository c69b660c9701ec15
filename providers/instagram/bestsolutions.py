"""BestSolutions (``instagram-api-cheap-best-performance`` on RapidAPI): pure parsers of its answers, and the client.

``/profile`` answers the private API's v1 user at the top level of the body; ``/feed`` a page
of v1 feed items. Field paths follow legacy-beat.md §3.2 and key names §4.2, with one
deliberate difference: the legacy feed parser looked its picture up through a broken path
and always emitted null for display_url and thumbnail_src. These parsers read
``image_versions2.candidates.0.url``, or a carousel's first child's, which is where the
picture is.
"""

from __future__ import annotations

from typing import Any

from providers.errors import BadResponse, ProfileMissing
from providers.http import Credential, ProviderHttp
from providers.instagram.instagram_shapes import (
    ACCOUNT_TYPES,
    MEDIA_TYPES,
    check_answered_for,
    not_found_refusal,
    sponsor_list,
    v1_counts,
    v1_location,
    v1_own_picture,
    v1_profile_counts,
)
from providers.paging import Page
from providers.parsing import Values, at, json_object
from topics.models import Platform, Post, Profile

SOURCE = "rapidapi-bestsolutions"
_v = Values(SOURCE)


# Parsers


def parse_profile(payload: dict[str, Any], *, handle: str | None = None, profile_id: str | None = None) -> Profile:
    """A ``/profile`` answer; ``handle``/``profile_id`` = what was asked for."""
    payload = _v.require_object(payload)
    if "pk" not in payload and "username" not in payload:
        raise not_found_refusal(payload, "pk or username", SOURCE)
    pk = _v.id(payload.get("pk"), "pk")
    username = _v.text(payload.get("username"), "username")
    if pk is None or not username:
        raise BadResponse("profile has no pk or username", source=SOURCE)
    check_answered_for(pk, username, SOURCE, handle=handle, profile_id=profile_id)
    return Profile(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        profile_id=pk,
        handle=username,
        metrics=v1_profile_counts(payload, "", SOURCE),
        dimensions={
            "profile_id": pk,
            "handle": username,
            "profile_pic_url": _v.text(at(payload, "hd_profile_pic_url_info.url"), "hd_profile_pic_url_info.url"),
            "bio": _v.text(payload.get("biography"), "biography"),
            "full_name": _v.text(payload.get("full_name"), "full_name"),
            "external_url": _v.text(payload.get("external_url"), "external_url"),
            "profile_type": ACCOUNT_TYPES.get(_v.count(payload.get("account_type"), "account_type")),
            "is_private": _v.flag(payload.get("is_private"), "is_private"),
            "is_verified": _v.flag(payload.get("is_verified"), "is_verified"),
        },
    )


def _feed_post(item: dict[str, Any]) -> Post:
    shortcode = _v.text(item.get("code"), "item.code")
    if not shortcode:
        raise BadResponse("feed item has no code", source=SOURCE)
    profile_id = _v.id(at(item, "user.pk"), "item.user.pk")
    handle = _v.text(at(item, "user.username"), "item.user.username")
    epoch, published = _v.timestamp(item.get("taken_at"), "item.taken_at")
    picture = v1_own_picture(item, "item.", SOURCE)
    sponsors = sponsor_list(_v.list(item.get("sponsor_tags"), "item.sponsor_tags"), "sponsor", "pk", SOURCE)
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics=v1_counts(item, "item.", SOURCE),
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": MEDIA_TYPES.get(_v.count(item.get("media_type"), "item.media_type")),
            "display_url": picture,
            "thumbnail_src": picture,
            "taken_at_timestamp": epoch,
            "caption": _v.text(at(item, "caption.text"), "item.caption.text"),
            **v1_location(item, "item.", SOURCE),
            # Entries keep the {user: …} shape, as every Instagram source's user_tags do.
            "user_tags": _v.list(at(item, "usertags.in"), "item.usertags.in"),
            "user_sponsors": sponsors,
            "is_sponsor": bool(sponsors) if sponsors is not None else None,
        },
    )


def parse_feed_page(payload: dict[str, Any]) -> Page:
    """A ``/feed`` answer: one page of a profile's timeline, newest first."""
    payload = _v.require_object(payload)
    items = payload.get("items")
    if not isinstance(items, list):
        raise not_found_refusal(payload, "items", SOURCE)
    posts = []
    for item in items:
        if not isinstance(item, dict):
            raise BadResponse("feed item is not an object", source=SOURCE)
        posts.append(_feed_post(item))
    more = _v.flag(payload.get("more_available"), "more_available")
    next_max_id = _v.id(payload.get("next_max_id"), "next_max_id")
    return Page(items=posts, next_cursor=next_max_id if more and next_max_id else None)


# Client


class BestSolutionsClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def profile_by_handle(self, handle: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        return parse_profile(await self._get("/profile", {"username": handle}, credential, request_id), handle=handle)

    async def profile_by_id(self, profile_id: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        payload = await self._get("/profile", {"user_id": profile_id}, credential, request_id)
        return parse_profile(payload, profile_id=profile_id)

    async def posts_by_id(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"user_id": profile_id} | ({"next_max_id": cursor} if cursor else {})
        return parse_feed_page(await self._get("/feed", params, credential, request_id))

    async def _get(
        self, path: str, params: dict[str, str], credential: Credential, request_id: str | None
    ) -> dict[str, Any]:
        response = await self._http.request(
            SOURCE, "GET", path, credential=credential, params=params, request_id=request_id
        )
        return json_object(response, SOURCE, ProfileMissing, f"GET {path}")
