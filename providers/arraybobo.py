"""ArrayBobo (``instagram-scraper-2022`` on RapidAPI): pure parsers of its answers, and the client.

The parsers follow the legacy field paths (legacy-beat.md §3.2) and key names (§4.2). The
answers are Instagram's own JSON passed through, so their types drift: ids arrive as numbers
or strings, counts as numbers or numeric strings. Parsers emit ids as strings and counts as
ints, and keep a missing value missing (None) rather than guessing a zero.

ArrayBobo answers HTTP 200 when a profile or post does not exist; only the body
(``{"message": "User not found", "status": "fail"}``) or an empty ``data.user`` says so.

The readers of Instagram's own media shapes (``graphql_post``, ``v1_reel``, ``v1_story``,
``sponsor_list``) take the source label: other providers pass the same JSON through and
reuse them, so one post reads the same whichever source fetched it.
"""

from __future__ import annotations

from typing import Any

from providers.errors import (
    BadResponse,
    PostMissing,
    ProfileMissing,
    ProviderError,
    ProviderUnavailable,
)
from providers.http import Credential, ProviderHttp
from providers.models import Page, PostData, ProfileData
from providers.parsing import Values, at, json_object
from topics.models import Platform

SOURCE = "rapidapi-arraybobo"
_v = Values(SOURCE)

ACCOUNT_TYPES = {1: "personal", 2: "business", 3: "creator"}
GRAPHQL_POST_TYPES = {"GraphImage": "image", "GraphVideo": "reels", "GraphSidecar": "carousel"}
MEDIA_TYPES = {1: "image", 2: "reels", 8: "carousel"}
STORY_CONTENT_TYPES = {1: "image", 2: "video"}

_MISSING_PHRASES = ("not found", "does not exist")


def _post_type(typename: Any) -> str | None:
    # Newer GraphQL answers prefix the type names with "XDT" (XDTGraphImage…).
    return GRAPHQL_POST_TYPES.get(typename.removeprefix("XDT")) if isinstance(typename, str) else None


def sponsor_list(entries: list[Any] | None, key: str, id_field: str,
                 source: str = SOURCE) -> list[dict[str, str | None]] | None:
    """Paid-partnership sponsors as ``{profile_id, handle}``; None when the answer did not say."""
    if entries is None:
        return None
    values = Values(source)
    return [{"profile_id": values.id(at(entry, f"{key}.{id_field}"), f"{key}.{id_field}"),
             "handle": values.text(at(entry, f"{key}.username"), f"{key}.username")} for entry in entries]


def _refusal(payload: dict[str, Any], missing: type[ProviderError], shape: str) -> ProviderError:
    """The error for an answer without the expected ``shape``: what its message says, else a shape error."""
    message = payload.get("message")
    if isinstance(message, str) and message:
        if any(phrase in message.lower() for phrase in _MISSING_PHRASES):
            return missing(message, source=SOURCE)
        if payload.get("status") == "fail":
            # Instagram's own refusals ("Please wait a few minutes…") pass through: another source may answer.
            return ProviderUnavailable(message, source=SOURCE)
    return BadResponse(f"answer has no {shape}", source=SOURCE)


# Parsers

def parse_profile(payload: dict[str, Any], *, handle: str | None = None, profile_id: str | None = None) -> ProfileData:
    """A ``/ig/info_username/`` or ``/ig/info/`` answer; ``handle``/``profile_id`` = what was asked for."""
    payload = _v.require_object(payload)
    user = payload.get("user")
    if not isinstance(user, dict):
        raise _refusal(payload, ProfileMissing, "user")
    pk = _v.id(user.get("pk"), "user.pk")
    username = _v.text(user.get("username"), "user.username")
    if pk is None or not username:
        raise BadResponse("user has no pk or username", source=SOURCE)
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
            "followers": _v.count(user.get("follower_count"), "user.follower_count"),
            "following": _v.count(user.get("following_count"), "user.following_count"),
            "media_count": _v.count(user.get("media_count"), "user.media_count"),
        },
        dimensions={
            "profile_id": pk,
            "handle": username,
            "profile_pic_url": _v.text(at(user, "hd_profile_pic_url_info.url"), "user.hd_profile_pic_url_info.url"),
            "bio": _v.text(user.get("biography"), "user.biography"),
            "full_name": _v.text(user.get("full_name"), "user.full_name"),
            "profile_type": ACCOUNT_TYPES.get(_v.count(user.get("account_type"), "user.account_type")),
            "fbid": _v.id(user.get("interop_messaging_user_fbid"), "user.interop_messaging_user_fbid"),
            "category_id": _v.id(user.get("category_id"), "user.category_id"),
            "category": _v.text(user.get("category"), "user.category"),
            "external_url": _v.text(user.get("external_url"), "user.external_url"),
            "city": _v.text(user.get("city_name"), "user.city_name"),
            "location_lat": _v.number(user.get("latitude"), "user.latitude"),
            "location_long": _v.number(user.get("longitude"), "user.longitude"),
            "public_email": _v.text(user.get("public_email"), "user.public_email"),
            "contact_phone": _v.text(user.get("contact_phone_number"), "user.contact_phone_number"),
            "is_private": _v.flag(user.get("is_private"), "user.is_private"),
            "is_verified": _v.flag(user.get("is_verified"), "user.is_verified"),
        },
    )


def graphql_post(node: dict[str, Any], source: str = SOURCE) -> PostData:
    """A web GraphQL media node: a timeline or tagged edge's ``node``, or a ``/ig/post_info/`` answer."""
    values = Values(source)
    shortcode = values.text(node.get("shortcode"), "shortcode")
    if not shortcode:
        raise BadResponse("post has no shortcode", source=source)
    profile_id = values.id(at(node, "owner.id"), "owner.id")
    handle = values.text(at(node, "owner.username"), "owner.username")
    epoch, published = values.timestamp(node.get("taken_at_timestamp"), "taken_at_timestamp")
    tag_edges = values.list(at(node, "edge_media_to_tagged_user.edges"), "edge_media_to_tagged_user.edges")
    sponsor_edges = values.list(at(node, "edge_media_to_sponsor_user.edges"), "edge_media_to_sponsor_user.edges")
    sponsors = sponsor_list(sponsor_edges, "node.sponsor", "id", source)
    return PostData(
        platform=Platform.INSTAGRAM,
        source=source,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={
            "comments": values.count(at(node, "edge_media_to_comment.count"), "edge_media_to_comment.count"),
            "likes": values.count(at(node, "edge_media_preview_like.count"), "edge_media_preview_like.count"),
            "view_count": values.count(node.get("video_view_count"), "video_view_count"),
        },
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": _post_type(node.get("__typename")),
            "display_url": values.text(node.get("display_url"), "display_url"),
            "thumbnail_src": values.text(node.get("thumbnail_src"), "thumbnail_src"),
            "taken_at_timestamp": epoch,
            "user_tags": [at(edge, "node") for edge in tag_edges] if tag_edges is not None else None,
            "user_sponsors": sponsors,
            "is_sponsor": bool(sponsors) if sponsors is not None else None,
            "caption": values.text(at(node, "edge_media_to_caption.edges.0.node.text"), "caption"),
        },
    )


def _graphql_page(payload: dict[str, Any], edge: str) -> Page:
    """One page of a user's GraphQL media listing at ``data.user.<edge>``."""
    payload = _v.require_object(payload)
    data = payload.get("data")
    if isinstance(data, dict) and "user" in data and data["user"] is None:
        raise ProfileMissing("no such user", source=SOURCE)
    media = at(payload, f"data.user.{edge}")
    if not isinstance(media, dict):
        raise _refusal(payload, ProfileMissing, f"data.user.{edge}")
    edges = _v.list(media.get("edges"), "edges") or []
    items = []
    for entry in edges:
        node = at(entry, "node")
        if not isinstance(node, dict):
            raise BadResponse(f"{edge} edge has no node", source=SOURCE)
        items.append(graphql_post(node))
    more = _v.flag(at(media, "page_info.has_next_page"), "page_info.has_next_page")
    cursor = _v.text(at(media, "page_info.end_cursor"), "page_info.end_cursor")
    return Page(items=items, next_cursor=cursor if more and cursor else None)


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


def parse_post(payload: dict[str, Any], *, shortcode: str | None = None) -> PostData:
    """A ``/ig/post_info/`` answer: the GraphQL media object at the top level."""
    payload = _v.require_object(payload)
    if "shortcode" not in payload:
        raise _refusal(payload, PostMissing, "shortcode")
    post = graphql_post(payload)
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


def v1_reel(media: dict[str, Any], source: str = SOURCE) -> PostData:
    """A v1 clips item's ``media``."""
    values = Values(source)
    shortcode = values.text(media.get("code"), "media.code")
    if not shortcode:
        raise BadResponse("reel has no code", source=source)
    profile_id = values.id(at(media, "user.pk"), "media.user.pk")
    handle = values.text(at(media, "user.username"), "media.user.username")
    epoch, published = values.timestamp(media.get("taken_at"), "media.taken_at")
    tags = values.list(at(media, "usertags.in"), "media.usertags.in")
    sponsors = sponsor_list(values.list(media.get("sponsor_tags"), "media.sponsor_tags"), "sponsor", "pk", source)
    return PostData(
        platform=Platform.INSTAGRAM,
        source=source,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={
            "comments": values.count(media.get("comment_count"), "media.comment_count"),
            "likes": values.count(media.get("like_count"), "media.like_count"),
            "view_count": values.count(media.get("view_count"), "media.view_count"),
            "play_count": values.count(media.get("play_count"), "media.play_count"),
        },
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": MEDIA_TYPES.get(values.count(media.get("media_type"), "media.media_type")),
            "display_url": values.text(at(media, "video_versions.0.url"), "media.video_versions.0.url"),
            "thumbnail_src": values.text(at(media, "image_versions2.candidates.0.url"), "media.image_versions2"),
            "taken_at_timestamp": epoch,
            "caption": values.text(at(media, "caption.text"), "media.caption.text"),
            # Entries keep the {user: …} shape of the timeline's tag nodes.
            "user_tags": tags,
            "user_sponsors": sponsors,
            "is_sponsor": bool(sponsors) if sponsors is not None else None,
        },
    )


def parse_reels_page(payload: dict[str, Any]) -> Page:
    """A ``/ig/reels_posts/`` answer: one page of a profile's reels, newest first."""
    payload = _v.require_object(payload)
    items = payload.get("items")
    if not isinstance(items, list):
        raise _refusal(payload, ProfileMissing, "items")
    reels = []
    for item in items:
        media = at(item, "media")
        if not isinstance(media, dict):
            raise BadResponse("reel item has no media", source=SOURCE)
        reels.append(v1_reel(media))
    more = _v.flag(at(payload, "paging_info.more_available"), "paging_info.more_available")
    max_id = _v.id(at(payload, "paging_info.max_id"), "paging_info.max_id")
    return Page(items=reels, next_cursor=max_id if more and max_id else None)


def v1_story(item: dict[str, Any], handle: str | None, source: str = SOURCE) -> PostData:
    """One item of a v1 story reel; ``handle`` is the reel owner's (items carry a reduced user)."""
    values = Values(source)
    # A story has no shortcode; its pk stands in for both (legacy: refresh_story_insights relies on it).
    pk = values.id(item.get("pk"), "item.pk")
    if pk is None:
        raise BadResponse("story has no pk", source=source)
    profile_id = values.id(at(item, "user.pk"), "item.user.pk")
    epoch, published = values.timestamp(item.get("taken_at"), "item.taken_at")
    image = values.text(at(item, "image_versions2.candidates.0.url"), "item.image_versions2")
    video = values.text(at(item, "video_versions.0.url"), "item.video_versions.0.url")
    links = values.list(item.get("story_link_stickers"), "item.story_link_stickers")
    hashtags = values.list(item.get("story_hashtags"), "item.story_hashtags")
    sponsors = sponsor_list(values.list(item.get("sponsor_tags"), "item.sponsor_tags"), "sponsor", "pk", source)
    return PostData(
        platform=Platform.INSTAGRAM,
        source=source,
        shortcode=pk,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics={},
        dimensions={
            "post_id": pk,
            "profile_id": profile_id,
            "handle": handle,
            "post_type": "story",
            "content_type": STORY_CONTENT_TYPES.get(values.count(item.get("media_type"), "item.media_type")),
            "display_url": video or image,
            "thumbnail_src": image,
            "taken_at_timestamp": epoch,
            "story_links": _texts(values, links, "story_link.display_url"),
            "story_hashtags": _texts(values, hashtags, "hashtag.name"),
            "user_sponsors": sponsors,
            "is_sponsor": bool(sponsors) if sponsors is not None else None,
        },
        kind="story",
    )


def _texts(values: Values, entries: list[Any] | None, path: str) -> list[str] | None:
    if entries is None:
        return None
    return [text for entry in entries if (text := values.text(at(entry, path), path))]


def parse_stories(payload: dict[str, Any], *, profile_id: str) -> list[PostData]:
    """A ``/ig/stories/`` answer: the profile's active stories, oldest first; none when it has no reel."""
    payload = _v.require_object(payload)
    if payload.get("status") == "fail":
        raise _refusal(payload, ProfileMissing, "reels")
    reel = at(payload, f"reels.{str(profile_id).strip()}")
    if reel is None:
        return []
    if not isinstance(reel, dict):
        raise BadResponse("reel is not an object", source=SOURCE)
    handle = _v.text(at(reel, "user.username"), "reel.user.username")
    items = _v.list(reel.get("items"), "reel.items") or []
    stories = []
    for item in items:
        if not isinstance(item, dict):
            raise BadResponse("story item is not an object", source=SOURCE)
        stories.append(v1_story(item, handle))
    return stories


# Client

class ArrayBoboClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def profile_by_handle(self, handle: str, *, credential: Credential,
                                request_id: str | None = None) -> ProfileData:
        payload = await self._get("/ig/info_username/", {"user": handle}, credential, request_id, ProfileMissing)
        return parse_profile(payload, handle=handle)

    async def profile_by_id(self, profile_id: str, *, credential: Credential,
                            request_id: str | None = None) -> ProfileData:
        payload = await self._get("/ig/info/", {"id_user": profile_id}, credential, request_id, ProfileMissing)
        return parse_profile(payload, profile_id=profile_id)

    async def posts_by_id(self, profile_id: str, cursor: str | None = None, *, credential: Credential,
                          request_id: str | None = None) -> Page:
        params = {"id_user": profile_id} | ({"end_cursor": cursor} if cursor else {})
        return parse_timeline_page(await self._get("/ig/posts/", params, credential, request_id, ProfileMissing))

    async def post_by_shortcode(self, shortcode: str, *, credential: Credential,
                                request_id: str | None = None) -> PostData:
        payload = await self._get("/ig/post_info/", {"shortcode": shortcode}, credential, request_id, PostMissing)
        return parse_post(payload, shortcode=shortcode)

    async def reels(self, profile_id: str, cursor: str | None = None, *, credential: Credential,
                    request_id: str | None = None) -> Page:
        params = {"id_user": profile_id} | ({"max_id": cursor} if cursor else {})
        return parse_reels_page(await self._get("/ig/reels_posts/", params, credential, request_id, ProfileMissing))

    async def tagged_posts(self, profile_id: str, cursor: str | None = None, *, credential: Credential,
                           request_id: str | None = None) -> Page:
        params = {"id_user": profile_id} | ({"end_cursor": cursor} if cursor else {})
        payload = await self._get("/ig/tagged/", params, credential, request_id, ProfileMissing)
        return parse_tagged_page(payload, profile_id=profile_id)

    async def stories(self, profile_id: str, *, credential: Credential,
                      request_id: str | None = None) -> list[PostData]:
        payload = await self._get("/ig/stories/", {"id_user": profile_id}, credential, request_id, ProfileMissing)
        return parse_stories(payload, profile_id=profile_id)

    async def _get(self, path: str, params: dict[str, str], credential: Credential, request_id: str | None,
                   missing: type[ProviderError]) -> dict[str, Any]:
        response = await self._http.request(SOURCE, "GET", path, credential=credential, params=params,
                                            request_id=request_id)
        return json_object(response, SOURCE, missing, f"GET {path}")
