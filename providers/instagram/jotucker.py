"""JoTucker (``instagram-scraper2`` on RapidAPI): pure parsers of its answers, and the client.

Profiles arrive in the private API's v1 ``user`` shape, timelines and single posts as v1 media
items, and the lists (followers, following, likers, comments, hashtag feeds) as web GraphQL
edges with ``page_info``. The parsers follow the legacy field paths (legacy-beat.md §3.2) and
key names (§4.2): ids become strings, counts ints, and a missing value stays None.

JoTucker answers HTTP 200 when a profile or post does not exist: a failure body
(``{"message": "User not found", "status": "fail"}``), an empty ``user`` or a null
``shortcode_media`` says so. A refusal whose words are about quota or rate limits, in a 200
or a 4xx body, is a QuotaExceeded like RapidAPI's own 429.
"""

from __future__ import annotations

from typing import Any

from providers.errors import (
    BadResponse,
    InputRejected,
    PostMissing,
    ProfileMissing,
    ProviderError,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp, retry_after_seconds
from providers.instagram.instagram_shapes import (
    MEDIA_TYPES,
    answers_null,
    follower_relationships,
    following_relationships,
    graphql_post_type,
    next_page_cursor,
    person_dimensions,
    refusal,
    sponsor_list,
    v1_carousel_picture,
    v1_counts,
    v1_location,
    v1_profile,
)
from providers.paging import Page
from providers.parsing import Values, at, json_object, provider_message
from topics.models import Activity, Platform, Post, Profile

SOURCE = "rapidapi-jotucker"
# Every list call asks for the largest page the API serves (legacy behaviour).
BATCH_SIZE = "50"
_v = Values(SOURCE)

_QUOTA_PHRASES = ("quota", "rate limit", "too many requests", "exceeded")


def is_quota_message(message: str) -> bool:
    return any(phrase in message.lower() for phrase in _QUOTA_PHRASES)


def _refusal(payload: dict[str, Any], missing: type[ProviderError], shape: str) -> ProviderError:
    """The error for a 200 answer without the expected ``shape``: a quota refusal, else what Instagram's body says."""
    message = payload.get("message")
    if isinstance(message, str) and message and is_quota_message(message):
        return QuotaExceeded(message, source=SOURCE)
    return refusal(payload, missing, shape, SOURCE)


def _edges(payload: dict[str, Any], path: str, missing: type[ProviderError]) -> tuple[list[dict[str, Any]], str | None]:
    """The nodes of the GraphQL connection at ``path`` and the cursor of its next page (None: last page)."""
    connection = at(payload, path)
    if not isinstance(connection, dict):
        raise _refusal(payload, missing, path)
    nodes = []
    for edge in _v.list(connection.get("edges"), f"{path}.edges") or []:
        node = at(edge, "node")
        if not isinstance(node, dict):
            raise BadResponse(f"{path} edge has no node", source=SOURCE)
        nodes.append(node)
    return nodes, next_page_cursor(connection, SOURCE, f"{path}.")


# Profiles


def parse_profile(payload: dict[str, Any], *, handle: str | None = None, profile_id: str | None = None) -> Profile:
    """A ``/user_info_by_id`` answer; ``handle``/``profile_id`` = what was asked for."""
    payload = _v.require_object(payload)
    user = payload.get("user")
    if not isinstance(user, dict):
        raise _refusal(payload, ProfileMissing, "user")
    return v1_profile(user, SOURCE, handle=handle, profile_id=profile_id)


# Posts (v1 media items)


def _media(media: Any, *, by_shortcode: bool) -> Post:
    """One v1 media item; the by-shortcode answer shows a video's own URL as its display URL."""
    if not isinstance(media, dict):
        raise BadResponse("media item is not an object", source=SOURCE)
    shortcode = _v.text(media.get("code"), "media.code")
    if not shortcode:
        raise BadResponse("media item has no code", source=SOURCE)
    profile_id = _v.id(at(media, "user.pk"), "media.user.pk")
    handle = _v.text(at(media, "user.username"), "media.user.username")
    epoch, published = _v.timestamp(media.get("taken_at"), "media.taken_at")
    # A carousel has no picture of its own; its first item's stands for it.
    image = v1_carousel_picture(media, "media.", SOURCE)
    display = image
    if by_shortcode:
        display = _v.text(at(media, "video_versions.0.url"), "media.video_versions.0.url") or image
    tags = _v.list(at(media, "usertags.in"), "media.usertags.in")
    sponsors = sponsor_list(
        _v.list(media.get("sponsor_tags"), "media.sponsor_tags"), "sponsor", "pk", SOURCE, field="sponsor_tags.sponsor"
    )
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics=v1_counts(media, "media.", SOURCE),
        dimensions={
            "profile_id": profile_id,
            "handle": handle,
            "post_type": MEDIA_TYPES.get(_v.count(media.get("media_type"), "media.media_type")),
            "display_url": display,
            "thumbnail_src": image,
            "taken_at_timestamp": epoch,
            "caption": _v.text(at(media, "caption.text"), "media.caption.text"),
            **v1_location(media, "media.", SOURCE),
            "user_tags": [at(tag, "user") for tag in tags] if tags is not None else None,
            "user_sponsors": sponsors,
            "is_sponsor": bool(sponsors) if sponsors is not None else None,
        },
    )


def parse_posts_page(payload: dict[str, Any]) -> Page:
    """A ``/medias_v2`` answer: one page of a profile's timeline, newest first."""
    payload = _v.require_object(payload)
    items = payload.get("items")
    if not isinstance(items, list):
        raise _refusal(payload, ProfileMissing, "items")
    more = _v.flag(payload.get("more_available"), "more_available")
    max_id = _v.id(payload.get("next_max_id"), "next_max_id")
    return Page(
        items=[_media(item, by_shortcode=False) for item in items],
        next_cursor=max_id if more and max_id and items else None,
    )


def parse_post(payload: dict[str, Any], *, shortcode: str | None = None) -> Post:
    """A ``/media_info_v2`` answer: the post is ``items[0]``."""
    payload = _v.require_object(payload)
    items = payload.get("items")
    if not isinstance(items, list):
        raise _refusal(payload, PostMissing, "items")
    if not items:
        raise PostMissing("answer lists no media", source=SOURCE)
    post = _media(items[0], by_shortcode=True)
    if shortcode is not None and post.shortcode != shortcode:
        raise PostMissing(f"asked for {shortcode!r}, answered for {post.shortcode!r}", source=SOURCE)
    return post


def hashtags_of(caption: str | None) -> str | None:
    """The caption's words that start with "#", comma-joined (legacy ``hashtags``)."""
    if caption is None:
        return None
    return ",".join(word for word in caption.split() if word.startswith("#"))


def _hashtag_post(node: dict[str, Any]) -> Post:
    shortcode = _v.text(node.get("shortcode"), "node.shortcode")
    if not shortcode:
        raise BadResponse("hashtag post has no shortcode", source=SOURCE)
    profile_id = _v.id(at(node, "owner.id"), "node.owner.id")
    epoch, published = _v.timestamp(node.get("taken_at_timestamp"), "node.taken_at_timestamp")
    caption = _v.text(at(node, "edge_media_to_caption.edges.0.node.text"), "node.caption")
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=profile_id,
        # Hashtag feeds name the owner by id only.
        handle=None,
        publish_time=published,
        metrics={
            "comments": _v.count(at(node, "edge_media_to_comment.count"), "node.edge_media_to_comment.count"),
            "likes": _v.count(at(node, "edge_liked_by.count"), "node.edge_liked_by.count"),
            "view_count": _v.count(node.get("video_view_count"), "node.video_view_count"),
        },
        dimensions={
            "profile_id": profile_id,
            "post_type": graphql_post_type(node.get("__typename")),
            "display_url": _v.text(node.get("display_url"), "node.display_url"),
            "thumbnail_src": _v.text(node.get("thumbnail_src"), "node.thumbnail_src"),
            "taken_at_timestamp": epoch,
            "caption": caption,
            "hashtags": hashtags_of(caption),
        },
    )


def parse_hashtag_page(payload: dict[str, Any]) -> Page:
    """A ``/hash_tag_medias_v2`` answer; a tag Instagram does not know (null ``hashtag``) lists nothing."""
    payload = _v.require_object(payload)
    if answers_null(payload, "hashtag"):
        return Page(items=[], next_cursor=None)
    nodes, cursor = _edges(payload, "data.hashtag.edge_hashtag_to_ranked_media", BadResponse)
    return Page(items=[_hashtag_post(node) for node in nodes], next_cursor=cursor)


# Relationships


def _person(node: dict[str, Any], field: str) -> tuple[str, dict[str, Any]]:
    person_id = _v.id(node.get("id"), f"{field}.id")
    if person_id is None:
        raise BadResponse(f"{field} has no id", source=SOURCE)
    return person_id, person_dimensions(node, field, SOURCE)


def _people(payload: dict[str, Any], edge: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    payload = _v.require_object(payload)
    if answers_null(payload, "user"):
        raise ProfileMissing("no such user", source=SOURCE)
    nodes, cursor = _edges(payload, f"data.user.{edge}", ProfileMissing)
    return [_person(node, f"{edge}.node") for node in nodes], cursor


def parse_followers_page(payload: dict[str, Any], profile_id: str) -> Page:
    """A ``/followers`` answer: each follower FOLLOWS ``profile_id``."""
    people, cursor = _people(payload, "edge_followed_by")
    return Page(items=follower_relationships(people, profile_id, SOURCE), next_cursor=cursor)


def parse_following_page(payload: dict[str, Any], profile_id: str) -> Page:
    """A ``/following`` answer: ``profile_id`` FOLLOWS each account listed."""
    people, cursor = _people(payload, "edge_follow")
    return Page(items=following_relationships(people, profile_id, SOURCE), next_cursor=cursor)


# Activities


def _shortcode_media(payload: dict[str, Any], edge: str) -> tuple[list[dict[str, Any]], str | None]:
    payload = _v.require_object(payload)
    if answers_null(payload, "shortcode_media"):
        raise PostMissing("Post is missing", source=SOURCE)
    return _edges(payload, f"data.shortcode_media.{edge}", PostMissing)


def parse_likers_page(payload: dict[str, Any], shortcode: str) -> Page:
    """A ``/media_likers`` answer: each liker LIKEs the post."""
    nodes, cursor = _shortcode_media(payload, "edge_liked_by")
    likes = []
    for node in nodes:
        actor, dimensions = _person(node, "edge_liked_by.node")
        likes.append(
            Activity(
                platform=Platform.INSTAGRAM,
                source=SOURCE,
                activity_type="LIKE",
                shortcode=shortcode,
                actor_profile_id=actor,
                dimensions=dimensions,
            )
        )
    return Page(items=likes, next_cursor=cursor)


def _comment(node: dict[str, Any], shortcode: str) -> Activity:
    field = "edge_media_to_parent_comment.node"
    actor = _v.id(at(node, "owner.id"), f"{field}.owner.id")
    if actor is None:
        raise BadResponse("comment has no owner id", source=SOURCE)
    epoch, published = _v.timestamp(node.get("created_at"), f"{field}.created_at")
    thread = _v.list(at(node, "edge_threaded_comments.edges"), f"{field}.edge_threaded_comments.edges")
    return Activity(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        activity_type="COMMENT",
        shortcode=shortcode,
        actor_profile_id=actor,
        publish_time=published,
        metrics={
            "likes": _v.count(at(node, "edge_liked_by.count"), f"{field}.edge_liked_by.count"),
            "comments": _v.count(at(node, "edge_threaded_comments.count"), f"{field}.edge_threaded_comments.count"),
            # Metrics are numbers: the thread is kept as how many of its replies came with the comment.
            "comments_thread": len(thread) if thread is not None else None,
        },
        dimensions={
            "comment_id": _v.id(node.get("id"), f"{field}.id"),
            "text": _v.text(node.get("text"), f"{field}.text"),
            "taken_at_timestamp": epoch,
            "profile_pic_url": _v.text(at(node, "owner.profile_pic_url"), f"{field}.owner.profile_pic_url"),
            "handle": _v.text(at(node, "owner.username"), f"{field}.owner.username"),
            "is_verified": _v.flag(at(node, "owner.is_verified"), f"{field}.owner.is_verified"),
        },
    )


def parse_comments_page(payload: dict[str, Any], shortcode: str) -> Page:
    """A ``/media_comments`` answer: the post's top-level comments."""
    nodes, cursor = _shortcode_media(payload, "edge_media_to_parent_comment")
    return Page(items=[_comment(node, shortcode) for node in nodes], next_cursor=cursor)


# Client


class JoTuckerClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def profile_by_handle(self, handle: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        payload = await self._get("/user_info_by_id", {"user_name": handle}, credential, request_id, ProfileMissing)
        return parse_profile(payload, handle=handle)

    async def profile_by_id(self, profile_id: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        payload = await self._get("/user_info_by_id", {"user_id": profile_id}, credential, request_id, ProfileMissing)
        return parse_profile(payload, profile_id=profile_id)

    async def posts_by_id(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"user_id": profile_id, "batch_size": BATCH_SIZE} | ({"max_id": cursor} if cursor else {})
        return parse_posts_page(await self._get("/medias_v2", params, credential, request_id, ProfileMissing))

    async def post_by_shortcode(self, shortcode: str, *, credential: Credential, request_id: str | None = None) -> Post:
        payload = await self._get("/media_info_v2", {"short_code": shortcode}, credential, request_id, PostMissing)
        return parse_post(payload, shortcode=shortcode)

    async def followers(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        payload = await self._list(
            "/followers", {"user_id": profile_id}, cursor, credential, request_id, ProfileMissing
        )
        return parse_followers_page(payload, profile_id)

    async def following(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        payload = await self._list(
            "/following", {"user_id": profile_id}, cursor, credential, request_id, ProfileMissing
        )
        return parse_following_page(payload, profile_id)

    async def likers(
        self, shortcode: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        payload = await self._list(
            "/media_likers", {"short_code": shortcode}, cursor, credential, request_id, PostMissing
        )
        return parse_likers_page(payload, shortcode)

    async def comments(
        self, shortcode: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        payload = await self._list(
            "/media_comments", {"short_code": shortcode}, cursor, credential, request_id, PostMissing
        )
        return parse_comments_page(payload, shortcode)

    async def hashtag_posts(
        self, hashtag: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        tag = hashtag.strip().lstrip("#")
        # A hashtag Instagram does not know is a verdict on the input, not a broken answer.
        payload = await self._list(
            "/hash_tag_medias_v2", {"hash_tag": tag}, cursor, credential, request_id, InputRejected
        )
        return parse_hashtag_page(payload)

    async def _list(
        self,
        path: str,
        params: dict[str, str],
        cursor: str | None,
        credential: Credential,
        request_id: str | None,
        missing: type[ProviderError],
    ) -> dict[str, Any]:
        params = params | {"batch_size": BATCH_SIZE} | ({"next_cursor": cursor} if cursor else {})
        return await self._get(path, params, credential, request_id, missing)

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
        if response.status_code != 200 and is_quota_message(message := provider_message(response.text)):
            raise QuotaExceeded(
                f"GET {path} answered {response.status_code}: {message}",
                source=SOURCE,
                retry_after=retry_after_seconds(response.headers),
            )
        return json_object(response, SOURCE, missing, f"GET {path}")
