"""Readers of Instagram's own JSON shapes, shared by the providers that pass them through.

ArrayBobo, JoTucker, BestSolutions, RocketAPI, NeoTank, IGApi and Lama's ``/a1`` paths answer
with what Instagram's private (v1) or web (GraphQL) API answered them, so one shape reads the
same whichever source fetched it; Lama's own models keep Instagram's names for a user and a
place, and share those readers too. Each reader takes the source label, names it in its errors
and stamps it on what it returns. Where providers' legacy keys for one shape differ
(legacy-beat.md §4.2), they keep their own readers and share only the parts that agree; a
``prefix`` is where the provider's answer puts the object (``"media."``, ``"items.0."``), so
that error messages name the field as it stands in that answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from providers.errors import (
    BadResponse,
    ProfileMissing,
    ProviderError,
    ProviderUnavailable,
)
from providers.parsing import Values, at
from topics.models import Platform, Post, Profile, Relationship

ACCOUNT_TYPES: dict[int | None, str] = {1: "personal", 2: "business", 3: "creator"}
GRAPHQL_POST_TYPES = {"GraphImage": "image", "GraphVideo": "reels", "GraphSidecar": "carousel"}
MEDIA_TYPES: dict[int | None, str] = {1: "image", 2: "reels", 8: "carousel"}
STORY_CONTENT_TYPES: dict[int | None, str] = {1: "image", 2: "video"}

_MISSING_PHRASES = ("not found", "does not exist")


# Refusals and identity


def refusal(payload: dict[str, Any], missing: type[ProviderError], shape: str, source: str) -> ProviderError:
    """The error for an answer without the expected ``shape``: what Instagram's failure body says, else BadResponse."""
    message = payload.get("message")
    if isinstance(message, str) and message:
        if any(phrase in message.lower() for phrase in _MISSING_PHRASES):
            return missing(message, source=source)
        if payload.get("status") == "fail":
            # Instagram's own refusals ("Please wait a few minutes…") pass through: another source may answer.
            return ProviderUnavailable(message, source=source)
    return BadResponse(f"answer has no {shape}", source=source)


def not_found_refusal(payload: dict[str, Any], shape: str, source: str) -> ProviderError:
    """The error for a profile answer without the expected ``shape``: a missing profile if its message says so."""
    message = payload.get("message")
    if isinstance(message, str) and "not found" in message.lower():
        return ProfileMissing(message, source=source)
    return BadResponse(f"answer has no {shape}" + (f": {message}" if isinstance(message, str) else ""), source=source)


def answers_null(payload: dict[str, Any], key: str) -> bool:
    """Whether ``data.<key>`` is there and null: Instagram's way of saying there is no such thing."""
    data = payload.get("data")
    return isinstance(data, dict) and key in data and data[key] is None


def check_answered_for(
    pk: str, username: str, source: str, *, handle: str | None = None, profile_id: str | None = None
) -> None:
    """Raise ProfileMissing unless the profile answered is the one asked for by ``handle`` or ``profile_id``."""
    if handle is not None and username.lower() != handle.strip().lstrip("@").lower():
        raise ProfileMissing(f"asked for {handle!r}, answered for {username!r}", source=source)
    if profile_id is not None and pk != str(profile_id).strip():
        raise ProfileMissing(f"asked for id {profile_id}, answered for id {pk}", source=source)


# Profiles


def v1_profile(
    user: dict[str, Any], source: str, *, handle: str | None = None, profile_id: str | None = None
) -> Profile:
    """An answer's v1 ``user`` object; ``handle``/``profile_id`` = what was asked for."""
    values = Values(source)
    pk = values.id(user.get("pk"), "user.pk")
    username = values.text(user.get("username"), "user.username")
    if pk is None or not username:
        raise BadResponse("user has no pk or username", source=source)
    check_answered_for(pk, username, source, handle=handle, profile_id=profile_id)
    return Profile(
        platform=Platform.INSTAGRAM,
        source=source,
        profile_id=pk,
        handle=username,
        metrics=v1_profile_counts(user, "user.", source),
        dimensions={
            "profile_id": pk,
            "handle": username,
            "profile_pic_url": values.text(at(user, "hd_profile_pic_url_info.url"), "user.hd_profile_pic_url_info.url"),
            "bio": values.text(user.get("biography"), "user.biography"),
            "full_name": values.text(user.get("full_name"), "user.full_name"),
            "profile_type": ACCOUNT_TYPES.get(values.count(user.get("account_type"), "user.account_type")),
            "fbid": values.id(user.get("interop_messaging_user_fbid"), "user.interop_messaging_user_fbid"),
            "category_id": values.id(user.get("category_id"), "user.category_id"),
            "category": values.text(user.get("category"), "user.category"),
            "external_url": values.text(user.get("external_url"), "user.external_url"),
            "city": values.text(user.get("city_name"), "user.city_name"),
            "location_lat": values.number(user.get("latitude"), "user.latitude"),
            "location_long": values.number(user.get("longitude"), "user.longitude"),
            "public_email": values.text(user.get("public_email"), "user.public_email"),
            "contact_phone": values.text(user.get("contact_phone_number"), "user.contact_phone_number"),
            "is_private": values.flag(user.get("is_private"), "user.is_private"),
            "is_verified": values.flag(user.get("is_verified"), "user.is_verified"),
        },
    )


def v1_profile_counts(user: dict[str, Any], prefix: str, source: str) -> dict[str, float | int | None]:
    """The counts of a v1 user: followers, following and posts."""
    values = Values(source)
    return {
        "followers": values.count(user.get("follower_count"), f"{prefix}follower_count"),
        "following": values.count(user.get("following_count"), f"{prefix}following_count"),
        "media_count": values.count(user.get("media_count"), f"{prefix}media_count"),
    }


def web_profile_counts(user: dict[str, Any], prefix: str, source: str) -> dict[str, float | int | None]:
    """The counts of a web GraphQL profile: followers, following, timeline posts and videos."""
    values = Values(source)
    return {
        "followers": values.count(at(user, "edge_followed_by.count"), f"{prefix}edge_followed_by.count"),
        "following": values.count(at(user, "edge_follow.count"), f"{prefix}edge_follow.count"),
        "media_count": values.count(
            at(user, "edge_owner_to_timeline_media.count"), f"{prefix}edge_owner_to_timeline_media.count"
        ),
        "reels_media_count": values.count(
            at(user, "edge_felix_video_timeline.count"), f"{prefix}edge_felix_video_timeline.count"
        ),
    }


def web_business_flags(user: dict[str, Any], prefix: str, source: str) -> tuple[bool | None, bool | None, bool | None]:
    """A web GraphQL profile's is_business, is_professional, and whether either holds (None: neither is known)."""
    values = Values(source)
    is_business = values.flag(user.get("is_business_account"), f"{prefix}is_business_account")
    is_professional = values.flag(user.get("is_professional_account"), f"{prefix}is_professional_account")
    either = None if is_business is None and is_professional is None else bool(is_business or is_professional)
    return is_business, is_professional, either


# Media


def graphql_post_type(typename: Any) -> str | None:
    # Newer GraphQL answers prefix the type names with "XDT" (XDTGraphImage…).
    return GRAPHQL_POST_TYPES.get(typename.removeprefix("XDT")) if isinstance(typename, str) else None


def sponsor_list(
    entries: list[Any] | None, key: str, id_field: str, source: str, field: str | None = None
) -> list[dict[str, str | None]] | None:
    """Paid-partnership sponsors as ``{profile_id, handle}``; None when the answer did not say.

    Each entry holds the sponsor at ``key``; errors name it ``field`` (``key`` unless told).
    """
    if entries is None:
        return None
    values = Values(source)
    field = field or key
    return [
        {
            "profile_id": values.id(at(entry, f"{key}.{id_field}"), f"{field}.{id_field}"),
            "handle": values.text(at(entry, f"{key}.username"), f"{field}.username"),
        }
        for entry in entries
    ]


def v1_counts(media: dict[str, Any], prefix: str, source: str) -> dict[str, float | int | None]:
    """A v1 media item's comment, like, view and play counts."""
    values = Values(source)
    return {
        "comments": values.count(media.get("comment_count"), f"{prefix}comment_count"),
        "likes": values.count(media.get("like_count"), f"{prefix}like_count"),
        "view_count": values.count(media.get("view_count"), f"{prefix}view_count"),
        "play_count": values.count(media.get("play_count"), f"{prefix}play_count"),
    }


def v1_location(media: dict[str, Any], prefix: str, source: str) -> dict[str, Any]:
    """A v1 media item's place: its name and coordinates."""
    values = Values(source)
    return {
        "location": values.text(at(media, "location.name"), f"{prefix}location.name"),
        "location_lat": values.number(at(media, "location.lat"), f"{prefix}location.lat"),
        "location_long": values.number(at(media, "location.lng"), f"{prefix}location.lng"),
    }


def v1_carousel_picture(media: dict[str, Any], prefix: str, source: str) -> str | None:
    """A v1 media item's picture; a carousel's is its first item's, whatever the item itself carries."""
    image_path = "carousel_media.0.image_versions2" if "carousel_media" in media else "image_versions2"
    return Values(source).text(at(media, f"{image_path}.candidates.0.url"), f"{prefix}{image_path}.candidates.0.url")


def v1_own_picture(media: dict[str, Any], prefix: str, source: str) -> str | None:
    """A v1 media item's own picture, else (a carousel carries none of its own) its first item's."""
    values = Values(source)
    return values.text(at(media, "image_versions2.candidates.0.url"), f"{prefix}image_versions2") or values.text(
        at(media, "carousel_media.0.image_versions2.candidates.0.url"), f"{prefix}carousel_media.0.image_versions2"
    )


def graphql_post(node: dict[str, Any], source: str) -> Post:
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
    return Post(
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
            "post_type": graphql_post_type(node.get("__typename")),
            "display_url": values.text(node.get("display_url"), "display_url"),
            "thumbnail_src": values.text(node.get("thumbnail_src"), "thumbnail_src"),
            "taken_at_timestamp": epoch,
            "user_tags": [at(edge, "node") for edge in tag_edges] if tag_edges is not None else None,
            "user_sponsors": sponsors,
            "is_sponsor": bool(sponsors) if sponsors is not None else None,
            "caption": values.text(at(node, "edge_media_to_caption.edges.0.node.text"), "caption"),
        },
    )


def v1_reel(media: dict[str, Any], source: str) -> Post:
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
    return Post(
        platform=Platform.INSTAGRAM,
        source=source,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics=v1_counts(media, "media.", source),
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


def clips(items: list[Any], source: str) -> Iterator[tuple[dict[str, Any], Post]]:
    """Each item of a v1 clips page: its ``media`` and the reel it reads as, one at a time."""
    for item in items:
        media = at(item, "media")
        if not isinstance(media, dict):
            raise BadResponse("reel item has no media", source=source)
        yield media, v1_reel(media, source)


def clips_cursor(answer: dict[str, Any], source: str) -> str | None:
    """The ``max_id`` of a v1 clips page's next page; None on the last."""
    values = Values(source)
    more = values.flag(at(answer, "paging_info.more_available"), "paging_info.more_available")
    max_id = values.id(at(answer, "paging_info.max_id"), "paging_info.max_id")
    return max_id if more and max_id else None


def v1_story(item: dict[str, Any], handle: str | None, source: str) -> Post:
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
    return Post(
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


def reel_stories(answer: dict[str, Any], profile_id: str, source: str) -> Iterator[tuple[dict[str, Any], Post]]:
    """Each item of ``profile_id``'s reel in a v1 reels_media answer and the story it reads as; none without a reel."""
    values = Values(source)
    reel = at(answer, f"reels.{str(profile_id).strip()}")
    if reel is None:
        return
    if not isinstance(reel, dict):
        raise BadResponse("reel is not an object", source=source)
    handle = values.text(at(reel, "user.username"), "reel.user.username")
    for item in values.list(reel.get("items"), "reel.items") or []:
        if not isinstance(item, dict):
            raise BadResponse("story item is not an object", source=source)
        yield item, v1_story(item, handle, source)


# Lists


def next_page_cursor(connection: dict[str, Any], source: str, prefix: str = "") -> str | None:
    """The ``end_cursor`` of a web GraphQL connection's next page; None on the last."""
    values = Values(source)
    more = values.flag(at(connection, "page_info.has_next_page"), f"{prefix}page_info.has_next_page")
    cursor = values.text(at(connection, "page_info.end_cursor"), f"{prefix}page_info.end_cursor")
    return cursor if more and cursor else None


def person_dimensions(person: dict[str, Any], field: str, source: str) -> dict[str, Any]:
    """What a listed account (a follower, a liker) shows of itself; errors name it ``field``."""
    values = Values(source)
    return {
        "handle": values.text(person.get("username"), f"{field}.username"),
        "full_name": values.text(person.get("full_name"), f"{field}.full_name"),
        "profile_pic_url": values.text(person.get("profile_pic_url"), f"{field}.profile_pic_url"),
        "is_private": values.flag(person.get("is_private"), f"{field}.is_private"),
        "is_verified": values.flag(person.get("is_verified"), f"{field}.is_verified"),
    }


def follower_relationships(
    people: Iterable[tuple[str, dict[str, Any]]], profile_id: str, source: str
) -> list[Relationship]:
    """Each ``(id, dimensions)`` person FOLLOWS ``profile_id``."""
    return [
        Relationship(
            platform=Platform.INSTAGRAM,
            source=source,
            source_profile_id=person_id,
            target_profile_id=profile_id,
            source_dimensions=dimensions,
        )
        for person_id, dimensions in people
    ]


def following_relationships(
    people: Iterable[tuple[str, dict[str, Any]]], profile_id: str, source: str
) -> list[Relationship]:
    """``profile_id`` FOLLOWS each ``(id, dimensions)`` person."""
    return [
        Relationship(
            platform=Platform.INSTAGRAM,
            source=source,
            source_profile_id=profile_id,
            target_profile_id=person_id,
            target_dimensions=dimensions,
        )
        for person_id, dimensions in people
    ]
