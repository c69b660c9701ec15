"""Lama (``api.lamadava.com``): pure parsers of its answers, and the client.

Lama serves three shapes. ``/a1/...`` passes Instagram's web answers through (``graphql.user``
for a profile, the private API's ``items`` for a post); ``/v1/...`` and ``/gql/...`` answer in
Lama's own flattened models (``pk`` as a string, ``caption_text``, ``taken_at_ts``…); paged
lists are two-element arrays ``[items, cursor]``. The parsers follow the legacy field paths
(legacy-beat.md §3.2) and key names (§4.2); the web profile's embedded posts and videos
(legacy ``recent_posts``/``recent_videos``) become ``embedded_posts`` rather than raw lists
(contract §1).

Lama refuses with HTTP statuses and a ``{"detail": …}`` body: 404 for what does not exist
(``/a1/user`` answers 400), 403 for a private account, 402 when the key's balance is spent
(a QuotaExceeded: the credential rests), 429 for its rate limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from providers.drift import observe
from providers.errors import (
    BadResponse,
    PostMissing,
    ProfileMissing,
    ProviderError,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.instagram.instagram_shapes import (
    MEDIA_TYPES,
    STORY_CONTENT_TYPES,
    check_answered_for,
    follower_relationships,
    following_relationships,
    graphql_post_type,
    person_dimensions,
    v1_carousel_picture,
    v1_counts,
    v1_location,
    v1_profile_counts,
    web_business_flags,
    web_profile_counts,
)
from providers.paging import Page
from providers.parsing import Values, at, json_object, provider_message
from topics.models import Platform, Post, Profile

SOURCE = "lama"
# Page sizes the legacy engine asked for.
POSTS_AMOUNT = "200"
PEOPLE_AMOUNT = "200"
HASHTAG_AMOUNT = "24"
_v = Values(SOURCE)

VIDEO = 2


def _instant(value: Any, field: str) -> tuple[int | None, datetime | None]:
    """Lama's ISO-8601 ``taken_at`` (``2024-05-19T22:35:08Z``) as an epoch and a UTC datetime."""
    text = _v.text(value, field)
    if text is None:
        return None, None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadResponse(f"{field} is not a time: {text!r}", source=SOURCE) from None
    if moment.tzinfo is None:
        raise BadResponse(f"{field} has no time zone: {text!r}", source=SOURCE)
    return _v.timestamp(int(moment.timestamp()), field)


def _chunk(payload: Any, what: str) -> tuple[list[Any], str | None]:
    """A ``[items, cursor]`` answer; a last page has no cursor, and an empty page ends the list too."""
    if not isinstance(payload, list) or len(payload) != 2 or not isinstance(payload[0], list):
        raise BadResponse(f"{what} is not an [items, cursor] pair", source=SOURCE)
    items, cursor = payload
    cursor = _v.text(cursor, f"{what} cursor")
    return items, (cursor if cursor and items else None)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"{what} is not an object", source=SOURCE)
    return value


# Profiles


def _graphql_post(node: Any, owner_handle: str) -> Post:
    """A post embedded in the web profile (``edge_owner_to_timeline_media`` / ``edge_felix_video_timeline``)."""
    node = _object(node, "embedded post")
    shortcode = _v.text(node.get("shortcode"), "node.shortcode")
    if not shortcode:
        raise BadResponse("embedded post has no shortcode", source=SOURCE)
    profile_id = _v.id(at(node, "owner.id"), "node.owner.id")
    handle = _v.text(at(node, "owner.username"), "node.owner.username") or owner_handle
    epoch, published = _v.timestamp(node.get("taken_at_timestamp"), "node.taken_at_timestamp")
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={
            "comments": _v.count(at(node, "edge_media_to_comment.count"), "node.edge_media_to_comment.count"),
            "likes": _v.count(at(node, "edge_media_preview_like.count"), "node.edge_media_preview_like.count"),
            "view_count": _v.count(node.get("video_view_count"), "node.video_view_count"),
        },
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": graphql_post_type(node.get("__typename")),
            "display_url": _v.text(node.get("display_url"), "node.display_url"),
            "thumbnail_src": _v.text(node.get("thumbnail_src"), "node.thumbnail_src"),
            "taken_at_timestamp": epoch,
            "caption": _v.text(at(node, "edge_media_to_caption.edges.0.node.text"), "node.caption"),
        },
    )


def _embedded_posts(user: dict[str, Any], handle: str) -> list[Post]:
    """The posts and videos the profile carries, once each (a video is often in both lists)."""
    posts: dict[str, Post] = {}
    for edge_name in ("edge_owner_to_timeline_media", "edge_felix_video_timeline"):
        for edge in _v.list(at(user, f"{edge_name}.edges"), f"graphql.user.{edge_name}.edges") or []:
            post = _graphql_post(at(edge, "node"), handle)
            posts.setdefault(post.shortcode, post)
    return list(posts.values())


def parse_gql_profile(payload: dict[str, Any], *, handle: str | None = None) -> Profile:
    """An ``/a1/user`` answer (Instagram's web profile); ``handle`` = what was asked for."""
    payload = _v.require_object(payload)
    user = at(payload, "graphql.user")
    if not isinstance(user, dict):
        raise BadResponse("answer has no graphql.user", source=SOURCE)
    profile_id = _v.id(user.get("id"), "graphql.user.id")
    username = _v.text(user.get("username"), "graphql.user.username")
    if profile_id is None or not username:
        raise BadResponse("graphql.user has no id or username", source=SOURCE)
    check_answered_for(profile_id, username, SOURCE, handle=handle)
    is_business, is_professional, either = web_business_flags(user, "graphql.user.", SOURCE)
    return Profile(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        profile_id=profile_id,
        handle=username,
        metrics=web_profile_counts(user, "graphql.user.", SOURCE),
        dimensions={
            "profile_id": profile_id,
            "handle": username,
            "full_name": _v.text(user.get("full_name"), "graphql.user.full_name"),
            "bio": _v.text(user.get("biography"), "graphql.user.biography"),
            "profile_pic_url": _v.text(user.get("profile_pic_url_hd"), "graphql.user.profile_pic_url_hd"),
            "fbid": _v.id(user.get("fbid"), "graphql.user.fbid"),
            "category": _v.text(user.get("category_name"), "graphql.user.category_name"),
            "business_category": _v.text(user.get("business_category_name"), "graphql.user.business_category_name"),
            "external_url": _v.text(user.get("external_url"), "graphql.user.external_url"),
            "is_private": _v.flag(user.get("is_private"), "graphql.user.is_private"),
            "is_verified": _v.flag(user.get("is_verified"), "graphql.user.is_verified"),
            "is_business": is_business,
            "is_professional": is_professional,
            "is_business_or_creator": either,
            "seo_category_info": _v.list(payload.get("seo_category_infos"), "seo_category_infos"),
        },
        embedded_posts=_embedded_posts(user, username),
    )


def parse_v1_profile(payload: dict[str, Any], *, profile_id: str | None = None) -> Profile:
    """A ``/v1/user/by/id`` answer (Lama's User); ``profile_id`` = what was asked for."""
    user = _v.require_object(payload)
    pk = _v.id(user.get("pk"), "pk")
    username = _v.text(user.get("username"), "username")
    if pk is None or not username:
        raise BadResponse("user has no pk or username", source=SOURCE)
    check_answered_for(pk, username, SOURCE, profile_id=profile_id)
    return Profile(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        profile_id=pk,
        handle=username,
        metrics=v1_profile_counts(user, "", SOURCE),
        dimensions={
            "profile_id": pk,
            "handle": username,
            "profile_pic_url": _v.text(user.get("profile_pic_url_hd"), "profile_pic_url_hd"),
            "fbid": _v.id(user.get("interop_messaging_user_fbid"), "interop_messaging_user_fbid"),
            "category": _v.text(user.get("category_name"), "category_name"),
            "business_category": _v.text(user.get("business_category_name"), "business_category_name"),
            "is_business": _v.flag(user.get("is_business"), "is_business"),
            "city": _v.text(user.get("city_name"), "city_name"),
            "location_lat": _v.number(user.get("latitude"), "latitude"),
            "location_long": _v.number(user.get("longitude"), "longitude"),
            "public_email": _v.text(user.get("public_email"), "public_email"),
            "contact_phone": _v.text(user.get("contact_phone_number"), "contact_phone_number"),
        },
    )


# Posts


def _chunk_post(media: Any) -> Post:
    """One of Lama's Media (a timeline chunk's or a hashtag feed's item)."""
    media = _object(media, "media item")
    shortcode = _v.text(media.get("code"), "media.code")
    if not shortcode:
        raise BadResponse("media item has no code", source=SOURCE)
    profile_id = _v.id(at(media, "user.pk"), "media.user.pk")
    handle = _v.text(at(media, "user.username"), "media.user.username")
    epoch, published = _v.timestamp(media.get("taken_at_ts"), "media.taken_at_ts")
    # A carousel leaves its own thumbnail empty; its first item's stands for it.
    thumbnail = _v.text(media.get("thumbnail_url"), "media.thumbnail_url") or _v.text(
        at(media, "resources.0.thumbnail_url"), "media.resources.0.thumbnail_url"
    )
    tags = _v.list(media.get("usertags"), "media.usertags")
    media_type = _v.count(media.get("media_type"), "media.media_type")
    # Lama's model fills a photo's video fields with zeros; they measure nothing, so they stay unknown.
    video = media_type == VIDEO or media_type is None
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={
            "comments": _v.count(media.get("comment_count"), "media.comment_count"),
            "likes": _v.count(media.get("like_count"), "media.like_count"),
            "view_count": _v.count(media.get("view_count"), "media.view_count") if video else None,
            "play_count": _v.count(media.get("play_count"), "media.play_count") if video else None,
            "video_duration": _v.number(media.get("video_duration"), "media.video_duration") if video else None,
        },
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "short_code": shortcode,
            "post_type": MEDIA_TYPES.get(media_type),
            "product_type": _v.text(media.get("product_type"), "media.product_type"),
            "display_url": _v.text(media.get("video_url"), "media.video_url") or thumbnail,
            "thumbnail_src": thumbnail,
            "taken_at_timestamp": epoch,
            "caption": _v.text(media.get("caption_text"), "media.caption_text"),
            "user_tags": [at(tag, "user") for tag in tags] if tags is not None else None,
            **v1_location(media, "media.", SOURCE),
        },
    )


def parse_posts_chunk(payload: Any) -> Page:
    """A ``/v1/user/medias/chunk`` answer: one chunk of a profile's timeline, newest first."""
    items, cursor = _chunk(payload, "medias chunk")
    return Page(items=[_chunk_post(item) for item in items], next_cursor=cursor)


def parse_hashtag_chunk(payload: Any) -> Page:
    """A ``/v1/hashtag/medias/recent/chunk`` answer: the chunk post plus a few owner and place fields."""
    items, cursor = _chunk(payload, "hashtag chunk")
    posts = []
    for item in items:
        post = _chunk_post(item)
        post.dimensions["full_name"] = _v.text(at(item, "user.full_name"), "media.user.full_name")
        post.dimensions["is_paid_partnership"] = _v.flag(item.get("is_paid_partnership"), "media.is_paid_partnership")
        post.dimensions["location_city"] = _v.text(at(item, "location.city"), "media.location.city")
        posts.append(post)
    return Page(items=posts, next_cursor=cursor)


def parse_post(payload: dict[str, Any], *, shortcode: str | None = None) -> Post:
    """An ``/a1/media`` answer: the private API's media item at ``items[0]``."""
    payload = _v.require_object(payload)
    media = at(payload, "items.0")
    if not isinstance(media, dict):
        raise PostMissing("answer lists no media", source=SOURCE)
    code = _v.text(media.get("code"), "items.0.code")
    if not code:
        raise BadResponse("media item has no code", source=SOURCE)
    if shortcode is not None and code != shortcode:
        raise PostMissing(f"asked for {shortcode!r}, answered for {code!r}", source=SOURCE)
    profile_id = _v.id(at(media, "user.pk"), "items.0.user.pk")
    handle = _v.text(at(media, "user.username"), "items.0.user.username")
    epoch, published = _v.timestamp(media.get("taken_at"), "items.0.taken_at")
    image = v1_carousel_picture(media, "items.0.", SOURCE)
    tags = _v.list(at(media, "usertags.in"), "items.0.usertags.in")
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=code,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={
            **v1_counts(media, "items.0.", SOURCE),
            "video_duration": _v.number(media.get("video_duration"), "items.0.video_duration"),
        },
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": MEDIA_TYPES.get(_v.count(media.get("media_type"), "items.0.media_type")),
            "display_url": _v.text(at(media, "video_versions.0.url"), "items.0.video_versions.0.url") or image,
            "thumbnail_src": image,
            "taken_at_timestamp": epoch,
            "caption": _v.text(at(media, "caption.text"), "items.0.caption.text"),
            "user_tags": [at(tag, "user") for tag in tags] if tags is not None else None,
            **v1_location(media, "items.0.", SOURCE),
        },
    )


def _story(story: Any) -> Post:
    story = _object(story, "story")
    pk = _v.id(story.get("pk"), "story.pk")
    if pk is None:
        raise BadResponse("story has no pk", source=SOURCE)
    profile_id = _v.id(at(story, "user.pk"), "story.user.pk")
    handle = _v.text(at(story, "user.username"), "story.user.username")
    epoch, published = _instant(story.get("taken_at"), "story.taken_at")
    thumbnail = _v.text(story.get("thumbnail_url"), "story.thumbnail_url")
    stickers = _v.list(story.get("stickers"), "story.stickers")
    hashtags = _v.list(story.get("hashtags"), "story.hashtags")
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        # A story has no shortcode; its pk stands in, as in the legacy events (post_id == shortcode).
        shortcode=pk,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        dimensions={
            "post_id": pk,
            "profile_id": profile_id,
            "handle": handle,
            "post_type": "story",
            "content_type": STORY_CONTENT_TYPES.get(_v.count(story.get("media_type"), "story.media_type")),
            "display_url": _v.text(story.get("video_url"), "story.video_url") or thumbnail,
            "thumbnail_src": thumbnail,
            "taken_at_timestamp": epoch,
            "story_links": [
                at(sticker, "story_link.display_url")
                for sticker in stickers
                if isinstance(at(sticker, "story_link"), dict)
            ]
            if stickers is not None
            else None,
            "story_hashtags": [at(tag, "hashtag.name") for tag in hashtags] if hashtags is not None else None,
        },
        kind="story",
    )


def parse_stories(payload: Any) -> list[Post]:
    """A ``/v1/user/stories`` answer: the account's live stories (an empty list when it has none)."""
    if not isinstance(payload, list):
        raise BadResponse("stories answer is not a list", source=SOURCE)
    return [_story(story) for story in payload]


# Relationships


def _person(user: Any) -> tuple[str, dict[str, Any]]:
    user = _object(user, "user")
    pk = _v.id(user.get("pk"), "user.pk")
    if pk is None:
        raise BadResponse("user has no pk", source=SOURCE)
    return pk, person_dimensions(user, "user", SOURCE)


def parse_followers_chunk(payload: Any, profile_id: str) -> Page:
    """A ``/gql/user/followers/chunk`` answer: each follower FOLLOWS ``profile_id``."""
    users, cursor = _chunk(payload, "followers chunk")
    return Page(items=follower_relationships(map(_person, users), profile_id, SOURCE), next_cursor=cursor)


def parse_following_chunk(payload: Any, profile_id: str) -> Page:
    """A ``/gql/user/following/chunk`` answer: ``profile_id`` FOLLOWS each account listed."""
    users, cursor = _chunk(payload, "following chunk")
    return Page(items=following_relationships(map(_person, users), profile_id, SOURCE), next_cursor=cursor)


# Client


class LamaClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def profile_by_handle(self, handle: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        # The web profile endpoint answers 400 for a handle that does not exist.
        payload = await self._get(
            "/a1/user", {"username": handle}, credential, request_id, ProfileMissing, missing_statuses=(400, 404)
        )
        return parse_gql_profile(_object(payload, "/a1/user answer"), handle=handle)

    async def profile_by_id(self, profile_id: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        payload = await self._get("/v1/user/by/id", {"id": profile_id}, credential, request_id, ProfileMissing)
        return parse_v1_profile(_object(payload, "/v1/user/by/id answer"), profile_id=profile_id)

    async def posts_by_id(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"user_id": profile_id, "max_amount": POSTS_AMOUNT} | ({"end_cursor": cursor} if cursor else {})
        return parse_posts_chunk(
            await self._get("/v1/user/medias/chunk", params, credential, request_id, ProfileMissing)
        )

    async def post_by_shortcode(self, shortcode: str, *, credential: Credential, request_id: str | None = None) -> Post:
        payload = await self._get("/a1/media", {"code": shortcode}, credential, request_id, PostMissing)
        return parse_post(_object(payload, "/a1/media answer"), shortcode=shortcode)

    async def followers(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"user_id": profile_id, "amount": PEOPLE_AMOUNT} | ({"end_cursor": cursor} if cursor else {})
        payload = await self._get("/gql/user/followers/chunk", params, credential, request_id, ProfileMissing)
        return parse_followers_chunk(payload, profile_id)

    async def following(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"user_id": profile_id, "amount": PEOPLE_AMOUNT} | ({"end_cursor": cursor} if cursor else {})
        payload = await self._get("/gql/user/following/chunk", params, credential, request_id, ProfileMissing)
        return parse_following_chunk(payload, profile_id)

    async def stories(self, profile_id: str, *, credential: Credential, request_id: str | None = None) -> list[Post]:
        payload = await self._get("/v1/user/stories", {"user_id": profile_id}, credential, request_id, ProfileMissing)
        return parse_stories(payload)

    async def hashtag_posts(
        self, hashtag: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"name": hashtag.strip().lstrip("#"), "max_amount": HASHTAG_AMOUNT} | (
            {"max_id": cursor} if cursor else {}
        )
        return parse_hashtag_chunk(
            await self._get("/v1/hashtag/medias/recent/chunk", params, credential, request_id, BadResponse)
        )

    async def _get(
        self,
        path: str,
        params: dict[str, str],
        credential: Credential,
        request_id: str | None,
        missing: type[ProviderError],
        missing_statuses: tuple[int, ...] = (404,),
    ) -> Any:
        """The decoded JSON of a 200 answer (an object or an ``[items, cursor]`` array); the typed error of any
        other."""
        response = await self._http.request(
            SOURCE, "GET", path, credential=credential, params=params, request_id=request_id
        )
        what, status = f"GET {path}", response.status_code
        if status == 402:
            raise QuotaExceeded(f"{what} answered 402: {provider_message(response.text)}", source=SOURCE)
        if status in missing_statuses:
            raise missing(f"{what} answered {status}: {provider_message(response.text)}", source=SOURCE)
        if status != 200:
            # json_object raises the shared typed error for every status but 200.
            json_object(response, SOURCE, missing, what)
        try:
            payload = response.json()
        except ValueError as exc:
            raise BadResponse(f"{what} answered with a body that is not JSON", source=SOURCE) from exc
        if isinstance(payload, dict):
            # An ``[items, cursor]`` array has no declared shape; an object is checked like every provider's.
            observe(SOURCE, payload)
        return payload
