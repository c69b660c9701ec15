"""RocketAPI (``v1.rocketapi.io``): pure parsers of its answers, and the client.

Every answer wraps what Instagram answered RocketAPI:
``{"status": "done", "response": {"status_code": 200, "content_type": …, "body": {…}}}``.
Instagram's own refusals (404: no such user or post) travel inside a 200; RocketAPI's own
(bad token, a plan whose requests are used up) come as ``{"status": "error", "message": …}``
on a 200 or a 4xx, so the body is read before the HTTP status. Parameters travel as a JSON
body, even on GET (legacy-beat.md §3.2). Field paths follow §3.2 and key names §4.2.
"""

from __future__ import annotations

from typing import Any

import httpx

from providers.errors import (
    AuthExpired,
    BadResponse,
    Forbidden,
    PostMissing,
    ProfileMissing,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp, retry_after_seconds
from providers.instagram.instagram_shapes import (
    clips,
    clips_cursor,
    follower_relationships,
    person_dimensions,
    reel_stories,
    v1_own_picture,
)
from providers.paging import Page
from providers.parsing import Values, at, json_object
from topics.models import Platform, Post

SOURCE = "rocketapi"
_v = Values(SOURCE)

FOLLOWERS_PAGE_SIZE = 100
PRODUCT_TYPES: dict[str | None, str] = {"feed": "image", "clips": "reels", "carousel_container": "carousel"}

# RocketAPI's words for a plan that has run out of requests (its refusals carry no code).
_QUOTA_PHRASES = ("limit", "quota", "plan", "balance", "credits")


def refusal(payload: dict[str, Any], *, http_status: int = 200, retry_after: float | None = None) -> ProviderError:
    """The error for RocketAPI's own ``{"status": "error", …}`` answer."""
    message = payload.get("message")
    message = message if isinstance(message, str) and message else f"answered status {payload.get('status')!r}"
    lowered = message.lower()
    if http_status == 401:
        return AuthExpired(message, source=SOURCE)
    if any(phrase in lowered for phrase in _QUOTA_PHRASES):
        return QuotaExceeded(message, source=SOURCE, retry_after=retry_after)
    if "token" in lowered:
        return AuthExpired(message, source=SOURCE)
    if http_status == 403:
        return Forbidden(message, source=SOURCE)
    return BadResponse(message, source=SOURCE)


def _body(payload: dict[str, Any], missing: type[ProviderError]) -> dict[str, Any]:
    """What Instagram answered, out of RocketAPI's envelope; Instagram's 404 is ``missing``."""
    payload = _v.require_object(payload)
    if payload.get("status") != "done":
        raise refusal(payload)
    status = _v.count(at(payload, "response.status_code"), "response.status_code")
    body = at(payload, "response.body")
    if status == 404:
        message = at(body, "message")
        raise missing(message if isinstance(message, str) else "Instagram answered 404", source=SOURCE)
    if status != 200:
        # Instagram refused RocketAPI (throttled, or down): another source may still answer.
        raise ProviderUnavailable(f"Instagram answered RocketAPI {status}", source=SOURCE)
    if not isinstance(body, dict):
        raise BadResponse("answer has no response.body", source=SOURCE)
    return body


# Parsers


def parse_post(payload: dict[str, Any], *, shortcode: str | None = None) -> Post:
    """A ``get_info_by_shortcode`` answer: the v1 media item at ``response.body.items[0]``."""
    item = at(_body(payload, PostMissing), "items.0")
    if not isinstance(item, dict):
        raise PostMissing("answer has no items", source=SOURCE)
    code = _v.text(item.get("code"), "items.0.code")
    if not code:
        raise BadResponse("post has no code", source=SOURCE)
    if shortcode is not None and code != shortcode:
        raise PostMissing(f"asked for {shortcode!r}, answered for {code!r}", source=SOURCE)
    user = item.get("user")
    profile_id = _v.id(at(user, "id"), "items.0.user.id") or _v.id(at(user, "pk"), "items.0.user.pk")
    handle = _v.text(at(user, "username"), "items.0.user.username")
    epoch, published = _v.timestamp(item.get("taken_at"), "items.0.taken_at")
    picture = v1_own_picture(item, "items.0.", SOURCE)
    location = item.get("location")
    if location is not None and not isinstance(location, dict):
        raise BadResponse("location is not an object", source=SOURCE)
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=code,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={
            "comments": _v.count(item.get("comment_count"), "items.0.comment_count"),
            "likes": _v.count(item.get("like_count"), "items.0.like_count"),
            "play_count": _v.count(item.get("play_count"), "items.0.play_count"),
            "video_duration": _v.number(item.get("video_duration"), "items.0.video_duration"),
            "reshare_count": _v.count(item.get("reshare_count"), "items.0.reshare_count"),
        },
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": PRODUCT_TYPES.get(_v.text(item.get("product_type"), "items.0.product_type")),
            "display_url": picture,
            "thumbnail_src": picture,
            "taken_at_timestamp": epoch,
            "caption": _v.text(at(item, "caption.text"), "items.0.caption.text"),
            "user_tags": _v.list(at(item, "usertags.in"), "items.0.usertags.in"),
            "location": location,
            "is_paid_partnership": _v.flag(item.get("is_paid_partnership"), "items.0.is_paid_partnership"),
        },
    )


def parse_reels_page(payload: dict[str, Any]) -> Page:
    """A ``get_clips`` answer: one page of a profile's reels, newest first."""
    body = _body(payload, ProfileMissing)
    items = _v.list(body.get("items"), "items")
    if items is None:
        raise BadResponse("answer has no items", source=SOURCE)
    reels = []
    for media, reel in clips(items, SOURCE):
        reel.metrics["video_duration"] = _v.number(media.get("video_duration"), "media.video_duration")
        reel.metrics["reshare_count"] = _v.count(media.get("reshare_count"), "media.reshare_count")
        reels.append(reel)
    return Page(items=reels, next_cursor=clips_cursor(body, SOURCE))


def parse_stories(payload: dict[str, Any], *, profile_id: str) -> list[Post]:
    """A ``get_stories`` answer: the profile's active stories, oldest first; none when it has no reel."""
    stories = []
    for item, story in reel_stories(_body(payload, ProfileMissing), profile_id, SOURCE):
        location = item.get("location")
        if location is not None and not isinstance(location, dict):
            raise BadResponse("story location is not an object", source=SOURCE)
        story.metrics["video_duration"] = _v.number(item.get("video_duration"), "item.video_duration")
        # Mentions keep their {user: …} entries, the shape of every source's user_tags.
        story.dimensions["user_tags"] = _v.list(item.get("reel_mentions"), "item.reel_mentions")
        story.dimensions["location"] = location
        story.dimensions["is_paid_partnership"] = _v.flag(item.get("is_paid_partnership"), "item.is_paid_partnership")
        stories.append(story)
    return stories


def parse_followers_page(payload: dict[str, Any], *, profile_id: str) -> Page:
    """A ``get_followers`` answer: one page of who follows ``profile_id``."""
    body = _body(payload, ProfileMissing)
    users = _v.list(body.get("users"), "users")
    if users is None:
        raise BadResponse("answer has no users", source=SOURCE)
    followers = []
    for user in users:
        if not isinstance(user, dict):
            raise BadResponse("follower is not an object", source=SOURCE)
        follower = _v.id(user.get("pk_id"), "users.pk_id") or _v.id(user.get("pk"), "users.pk")
        if follower is None:
            raise BadResponse("follower has no pk", source=SOURCE)
        followers.append((follower, person_dimensions(user, "users", SOURCE)))
    # Instagram's "big_list" is its "there is more".
    more = _v.flag(body.get("big_list"), "big_list")
    next_max_id = _v.id(body.get("next_max_id"), "next_max_id")
    return Page(
        items=follower_relationships(followers, str(profile_id).strip(), SOURCE),
        next_cursor=next_max_id if more and next_max_id else None,
    )


# Client


def _user_id(profile_id: str) -> int:
    """RocketAPI takes user ids as numbers; anything else cannot be an Instagram user."""
    text = str(profile_id).strip()
    if not text.isdigit():
        raise ProfileMissing(f"{profile_id!r} is not an Instagram user id", source=SOURCE)
    return int(text)


class RocketAPIClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def post_by_shortcode(self, shortcode: str, *, credential: Credential, request_id: str | None = None) -> Post:
        path = "/instagram/media/get_info_by_shortcode"
        payload = await self._call("GET", path, {"shortcode": shortcode}, credential, request_id, PostMissing)
        return parse_post(payload, shortcode=shortcode)

    async def reels(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        body = {"id": _user_id(profile_id)} | ({"max_id": cursor} if cursor else {})
        payload = await self._call("GET", "/instagram/user/get_clips", body, credential, request_id, ProfileMissing)
        return parse_reels_page(payload)

    async def stories(self, profile_id: str, *, credential: Credential, request_id: str | None = None) -> list[Post]:
        body = {"ids": [_user_id(profile_id)]}
        payload = await self._call("POST", "/instagram/user/get_stories", body, credential, request_id, ProfileMissing)
        return parse_stories(payload, profile_id=profile_id)

    async def followers(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        body = {"id": _user_id(profile_id), "count": FOLLOWERS_PAGE_SIZE} | ({"max_id": cursor} if cursor else {})
        path = "/instagram/user/get_followers"
        payload = await self._call("GET", path, body, credential, request_id, ProfileMissing)
        return parse_followers_page(payload, profile_id=profile_id)

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        credential: Credential,
        request_id: str | None,
        missing: type[ProviderError],
    ) -> dict[str, Any]:
        response = await self._http.request(
            SOURCE, method, path, credential=credential, json=body, request_id=request_id
        )
        payload = _decoded(response)
        if isinstance(payload, dict) and payload.get("status", "done") != "done":
            raise refusal(payload, http_status=response.status_code, retry_after=retry_after_seconds(response.headers))
        return json_object(response, SOURCE, missing, f"{method} {path}")


def _decoded(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
