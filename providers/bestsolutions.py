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

from providers.arraybobo import ACCOUNT_TYPES, MEDIA_TYPES, sponsor_list
from providers.errors import BadResponse, ProfileMissing, ProviderError
from providers.http import Credential, ProviderHttp
from providers.models import Page, PostData, ProfileData
from providers.parsing import Values, at, json_object
from topics.models import Platform

SOURCE = "rapidapi-bestsolutions"
_v = Values(SOURCE)


def _refusal(payload: dict[str, Any], shape: str) -> ProviderError:
    """The error for an answer without the expected ``shape``: a missing profile if it says so."""
    message = payload.get("message")
    if isinstance(message, str) and "not found" in message.lower():
        return ProfileMissing(message, source=SOURCE)
    return BadResponse(f"answer has no {shape}" + (f": {message}" if isinstance(message, str) else ""), source=SOURCE)


# Parsers

def parse_profile(payload: dict[str, Any], *, handle: str | None = None, profile_id: str | None = None) -> ProfileData:
    """A ``/profile`` answer; ``handle``/``profile_id`` = what was asked for."""
    payload = _v.require_object(payload)
    if "pk" not in payload and "username" not in payload:
        raise _refusal(payload, "pk or username")
    pk = _v.id(payload.get("pk"), "pk")
    username = _v.text(payload.get("username"), "username")
    if pk is None or not username:
        raise BadResponse("profile has no pk or username", source=SOURCE)
    if handle is not None and username.lower() != handle.strip().lstrip("@").lower():
        raise ProfileMissing(f"asked for {handle!r}, answered for {username!r}", source=SOURCE)
    if profile_id is not None and pk != str(profile_id).strip():
        raise ProfileMissing(f"asked for id {profile_id}, answered for id {pk}", source=SOURCE)
    return ProfileData(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        profile_id=pk,
        handle=username,
        metrics={
            "followers": _v.count(payload.get("follower_count"), "follower_count"),
            "following": _v.count(payload.get("following_count"), "following_count"),
            "media_count": _v.count(payload.get("media_count"), "media_count"),
        },
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


def _feed_post(item: dict[str, Any]) -> PostData:
    shortcode = _v.text(item.get("code"), "item.code")
    if not shortcode:
        raise BadResponse("feed item has no code", source=SOURCE)
    profile_id = _v.id(at(item, "user.pk"), "item.user.pk")
    handle = _v.text(at(item, "user.username"), "item.user.username")
    epoch, published = _v.timestamp(item.get("taken_at"), "item.taken_at")
    # A carousel item carries no picture of its own; its first child's stands for it.
    picture = _v.text(at(item, "image_versions2.candidates.0.url"), "item.image_versions2") or _v.text(
        at(item, "carousel_media.0.image_versions2.candidates.0.url"), "item.carousel_media.0.image_versions2")
    sponsors = sponsor_list(_v.list(item.get("sponsor_tags"), "item.sponsor_tags"), "sponsor", "pk", SOURCE)
    return PostData(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={
            "comments": _v.count(item.get("comment_count"), "item.comment_count"),
            "likes": _v.count(item.get("like_count"), "item.like_count"),
            "view_count": _v.count(item.get("view_count"), "item.view_count"),
            "play_count": _v.count(item.get("play_count"), "item.play_count"),
        },
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": MEDIA_TYPES.get(_v.count(item.get("media_type"), "item.media_type")),
            "display_url": picture,
            "thumbnail_src": picture,
            "taken_at_timestamp": epoch,
            "caption": _v.text(at(item, "caption.text"), "item.caption.text"),
            "location": _v.text(at(item, "location.name"), "item.location.name"),
            "location_lat": _v.number(at(item, "location.lat"), "item.location.lat"),
            "location_long": _v.number(at(item, "location.lng"), "item.location.lng"),
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
        raise _refusal(payload, "items")
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

    async def profile_by_handle(self, handle: str, *, credential: Credential,
                                request_id: str | None = None) -> ProfileData:
        return parse_profile(await self._get("/profile", {"username": handle}, credential, request_id), handle=handle)

    async def profile_by_id(self, profile_id: str, *, credential: Credential,
                            request_id: str | None = None) -> ProfileData:
        payload = await self._get("/profile", {"user_id": profile_id}, credential, request_id)
        return parse_profile(payload, profile_id=profile_id)

    async def posts_by_id(self, profile_id: str, cursor: str | None = None, *, credential: Credential,
                          request_id: str | None = None) -> Page:
        params = {"user_id": profile_id} | ({"next_max_id": cursor} if cursor else {})
        return parse_feed_page(await self._get("/feed", params, credential, request_id))

    async def _get(self, path: str, params: dict[str, str], credential: Credential,
                   request_id: str | None) -> dict[str, Any]:
        response = await self._http.request(SOURCE, "GET", path, credential=credential, params=params,
                                            request_id=request_id)
        return json_object(response, SOURCE, ProfileMissing, f"GET {path}")
