"""Lama (api.lamadava.com) in the sandbox: its paths, answering in its real shapes.

``/a1/...`` passes Instagram's web answers through (``graphql.user`` for a profile, the private
API's ``items`` for a post); ``/v1/...`` and ``/gql/...`` answer in Lama's own flattened models
(``pk`` as a string, ``taken_at`` as ISO text plus ``taken_at_ts``, ``caption_text``,
``thumbnail_url``…). Paged lists are two-element arrays ``[items, cursor]`` whose cursor is null
on the last page. Refusals are FastAPI-style ``{"detail": …, "exc_type": …}`` bodies: 404 for
what does not exist (400 from ``/a1/user``, as the legacy code saw), 403 for private accounts.
``providers/fixtures/lama/`` holds answers of these builders.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox import cdn
from providers.sandbox.instagram import (
    Account,
    InstagramWorld,
    Post,
    decode_cursor,
    encode_cursor,
    encode_shortcode,
)
from providers.sandbox.instagram_v1 import MEDIA_TYPES, PRODUCT_TYPES, v1_media
from providers.sandbox.instagram_web import page_info, timeline_connection
from providers.sandbox.social import SocialGraph
from providers.sandbox.stories import Story, active_stories

PREFIX = "/lama"
PROFILE_POSTS = 12
# A chunk is at most one page of Instagram's own listing (about 33 feed posts, 30 hashtag posts)
# however large ``max_amount`` is; follower chunks honour ``amount``.
MEDIAS_CHUNK = 33
HASHTAG_CHUNK = 30
PEOPLE_CHUNK = 200

_BUSINESS = 2
_PERSONAL = 1


def iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def refusal(status: int, detail: str, exc_type: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "exc_type": exc_type}, status_code=status)


# /a1/user: the web profile, with the first posts and videos embedded


def gql_profile(account: Account, posts: list[Post], videos: list[Post], video_count: int) -> dict[str, Any]:
    professional = account.account_type != _PERSONAL
    more_posts = encode_cursor("a1-posts", account.profile_id, len(posts)) if len(posts) < account.media_count else None
    more_videos = encode_cursor("a1-videos", account.profile_id, len(videos)) if len(videos) < video_count else None
    slug = (account.category or "").lower().replace(" ", "_").replace("/", "_")
    return {
        "seo_category_infos": [[account.category, slug]] if professional else [],
        "logging_page_id": f"profilePage_{account.profile_id}",
        "show_suggested_profiles": False,
        "show_follow_dialog": False,
        "graphql": {
            "user": {
                "biography": account.biography,
                "blocked_by_viewer": False,
                "restricted_by_viewer": False,
                "country_block": False,
                "external_url": account.external_url or None,
                "external_url_linkshimmed": f"https://l.instagram.com/?u={account.external_url}"
                if account.external_url
                else None,
                "edge_followed_by": {"count": account.followers},
                "fbid": str(account.fbid),
                "followed_by_viewer": False,
                "edge_follow": {"count": account.following},
                "follows_viewer": False,
                "full_name": account.full_name,
                "has_ar_effects": False,
                "has_clips": video_count > 0,
                "has_guides": False,
                "has_channel": False,
                "has_blocked_viewer": False,
                "highlight_reel_count": account.media_count // 20,
                "has_requested_viewer": False,
                "hide_like_and_view_counts": False,
                "id": account.profile_id,
                "is_business_account": account.account_type == _BUSINESS,
                "is_professional_account": professional,
                "is_embeds_disabled": False,
                "is_joined_recently": False,
                "business_address_json": None,
                "business_contact_method": "CALL" if account.contact_phone else None,
                "business_email": account.public_email,
                "business_phone_number": account.contact_phone,
                "business_category_name": account.category if account.account_type == _BUSINESS else None,
                "overall_category_name": None,
                "category_enum": None,
                "category_name": account.category,
                "is_private": account.is_private,
                "is_verified": account.is_verified,
                "edge_mutual_followed_by": {"count": 0, "edges": []},
                "profile_pic_url": account.profile_pic_url,
                "profile_pic_url_hd": account.hd_profile_pic_url,
                "requested_by_viewer": False,
                "should_show_category": professional,
                "should_show_public_contacts": professional,
                "username": account.handle,
                "connected_fb_page": None,
                "pronouns": [],
                "edge_felix_video_timeline": timeline_connection(videos, video_count, more_videos),
                "edge_owner_to_timeline_media": timeline_connection(posts, account.media_count, more_posts),
                "edge_saved_media": {"count": 0, "page_info": page_info(None), "edges": []},
                "edge_media_collections": {"count": 0, "page_info": page_info(None), "edges": []},
            }
        },
        "toast_content_on_load": None,
        "show_view_shop": False,
        "profile_pic_edit_sync_props": None,
        "always_show_message_button_to_pro_account": False,
    }


# /a1/media: the private API's media info passed through


def a1_media(post: Post) -> dict[str, Any]:
    return {"items": [v1_media(post)], "num_results": 1, "more_available": False, "auto_load_more_enabled": False}


# Lama's own models (/v1, /gql)


def user(account: Account) -> dict[str, Any]:
    """Lama's User: the v1 profile, flattened."""
    city = account.city
    return {
        "pk": account.profile_id,
        "username": account.handle,
        "full_name": account.full_name,
        "is_private": account.is_private,
        "profile_pic_url": account.profile_pic_url,
        "profile_pic_url_hd": account.hd_profile_pic_url,
        "is_verified": account.is_verified,
        "media_count": account.media_count,
        "follower_count": account.followers,
        "following_count": account.following,
        "biography": account.biography,
        "external_url": account.external_url or None,
        "account_type": account.account_type,
        "is_business": account.account_type == _BUSINESS,
        "public_email": account.public_email or "",
        "contact_phone_number": account.contact_phone or "",
        "public_phone_country_code": "91" if account.contact_phone else "",
        "public_phone_number": account.contact_phone[4:].replace(" ", "") if account.contact_phone else "",
        "business_contact_method": "CALL" if account.contact_phone else "UNKNOWN",
        "business_category_name": account.category if account.account_type == _BUSINESS else None,
        "category_name": account.category,
        "category": account.category or "",
        "address_street": "",
        "city_id": str(city.id) if city else "0",
        "city_name": city.name if city else "",
        "latitude": city.latitude if city else None,
        "longitude": city.longitude if city else None,
        "zip": "",
        "instagram_location_id": "",
        "interop_messaging_user_fbid": account.fbid,
    }


def user_short(account: Account) -> dict[str, Any]:
    return {
        "pk": account.profile_id,
        "id": account.profile_id,
        "username": account.handle,
        "full_name": account.full_name,
        "profile_pic_url": account.profile_pic_url,
        "profile_pic_url_hd": None,
        "is_private": account.is_private,
        "is_verified": account.is_verified,
    }


def media(post: Post) -> dict[str, Any]:
    """Lama's Media: one post, flattened."""
    v1 = v1_media(post)
    images = v1.get("image_versions2") or v1["carousel_media"][0]["image_versions2"]
    thumbnail = images["candidates"][0]["url"]
    location = None
    if post.location is not None:
        place = post.location
        location = {
            "pk": int(place.id),
            "name": place.name,
            "phone": "",
            "website": "",
            "category": "",
            "hours": {},
            "address": "",
            "city": place.city.name,
            "zip": None,
            "lng": place.city.longitude,
            "lat": place.city.latitude,
            "external_id": str(int(place.id) * 3),
            "external_id_source": "facebook_places",
        }
    return {
        "pk": str(post.media_pk),
        "id": post.media_id,
        "code": post.shortcode,
        "taken_at": iso(post.taken_at),
        "taken_at_ts": post.taken_at,
        "media_type": MEDIA_TYPES[post.kind],
        "product_type": PRODUCT_TYPES[post.kind],
        # Lama leaves a carousel's own thumbnail empty; its items carry theirs.
        "thumbnail_url": None if post.kind == "carousel" else thumbnail,
        "location": location,
        "user": user_short(post.owner),
        "comment_count": post.comments,
        "comments_disabled": False,
        "like_count": post.likes,
        "play_count": post.video_plays or 0,
        "has_liked": False,
        "caption_text": post.caption or "",
        "accessibility_caption": post.accessibility_caption,
        "usertags": [{"user": user_short(tag.account), "x": tag.x, "y": tag.y} for tag in post.tags],
        "sponsor_tags": [user_short(sponsor) for sponsor in post.sponsors],
        "video_url": v1["video_versions"][0]["url"] if post.kind == "video" else None,
        "view_count": post.video_views or 0,
        "video_duration": post.video_duration or 0.0,
        "title": "",
        "resources": [
            {
                "pk": str(child["pk"]),
                "id": child["id"],
                "video_url": None,
                "thumbnail_url": child["image_versions2"]["candidates"][0]["url"],
                "media_type": 1,
                "product_type": "carousel_item",
                "carousel_parent_id": post.media_id,
                "taken_at": post.taken_at,
            }
            for child in v1.get("carousel_media", [])
        ],
        "image_versions": [
            {"height": candidate["height"], "width": candidate["width"], "url": candidate["url"]}
            for candidate in images["candidates"][:1]
        ],
        "video_versions": v1.get("video_versions", []),
        "like_and_view_counts_disabled": False,
        "coauthor_producers": [],
        "is_paid_partnership": bool(post.sponsors),
    }


def story(item: Story) -> dict[str, Any]:
    """Lama's Story: link stickers carry the URLs, hashtags and mentions their own lists."""
    video = item.kind == "video"
    return {
        "pk": str(item.pk),
        "id": item.media_id,
        "code": encode_shortcode(item.pk),
        "taken_at": iso(item.taken_at),
        "media_type": 2 if video else 1,
        "product_type": "story",
        "thumbnail_url": cdn.image(item.pk, 1080, 1920),
        "user": user_short(item.owner),
        "video_url": cdn.video(item.pk, 720, 1280) if video else None,
        "video_duration": item.video_duration or 0.0,
        "sponsor_tags": [user_short(sponsor) for sponsor in item.sponsors],
        "mentions": [
            {"user": user_short(account), "x": 0.5, "y": 0.3 + 0.1 * number, "width": 0.4, "height": 0.05}
            for number, account in enumerate(item.mentions)
        ],
        "links": [],
        "hashtags": [
            {
                "hashtag": {"id": None, "name": name, "media_count": None, "profile_pic_url": None},
                "x": 0.5,
                "y": 0.6 + 0.1 * number,
                "width": 0.3,
                "height": 0.05,
            }
            for number, name in enumerate(item.hashtags)
        ],
        "locations": [],
        "stickers": [
            {
                "id": f"story_link_{item.pk % 10**6}_{number}",
                "type": "story_link",
                "x": 0.5,
                "y": 0.8,
                "z": 1000005,
                "width": 0.45,
                "height": 0.06,
                "rotation": 0.0,
                "story_link": {"url": link, "link_title": None, "link_type": "web", "display_url": link},
                "extra": {},
            }
            for number, link in enumerate(item.links)
        ],
        "medias": [],
    }


def chunk(items: list[dict[str, Any]], cursor: str | None) -> list[Any]:
    return [items, cursor]


# Routes


class LamaRoutes:
    def __init__(self, world: InstagramWorld) -> None:
        self._world = world
        self._social = SocialGraph(world)

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/a1/user", self.a1_user),
                Route("/v1/user/by/id", self.user_by_id),
                Route("/v1/user/medias/chunk", self.medias_chunk),
                Route("/a1/media", self.a1_media),
                Route("/gql/user/followers/chunk", self.followers_chunk),
                Route("/gql/user/following/chunk", self.following_chunk),
                Route("/v1/user/stories", self.stories),
                Route("/v1/hashtag/medias/recent/chunk", self.hashtag_chunk),
            ],
        )

    async def a1_user(self, request: Request) -> JSONResponse:
        account = self._world.account(request.query_params.get("username", ""))
        if account is None:
            return refusal(400, "Not found user", "UserNotFound")
        posts = self._world.timeline(account, 0, PROFILE_POSTS)
        videos, _ = self._world.reels(account, 0, account.media_count)
        return JSONResponse(gql_profile(account, posts, videos[:PROFILE_POSTS], len(videos)))

    async def user_by_id(self, request: Request) -> JSONResponse:
        account = self._world.account_by_id(request.query_params.get("id", ""))
        if account is None:
            return refusal(404, "Target user not found", "UserNotFound")
        return JSONResponse(user(account))

    def _visible(self, request: Request) -> Account | JSONResponse:
        """The account of ``user_id``, or the refusal Lama gives for a missing or private one."""
        account = self._world.account_by_id(request.query_params.get("user_id", ""))
        if account is None:
            return refusal(404, "Target user not found", "UserNotFound")
        if account.is_private:
            return refusal(403, "Private account", "PrivateAccount")
        return account

    async def medias_chunk(self, request: Request) -> JSONResponse:
        account = self._visible(request)
        if isinstance(account, JSONResponse):
            return account
        start = self._position(request, "end_cursor", "medias", account.profile_id)
        if start is None:
            return refusal(400, "Invalid end_cursor", "ValidationError")
        size = min(_amount(request, "max_amount", MEDIAS_CHUNK), MEDIAS_CHUNK)
        posts = self._world.timeline(account, start, size)
        following = start + len(posts)
        cursor = encode_cursor("medias", account.profile_id, following) if following < account.media_count else None
        return JSONResponse(chunk([media(post) for post in posts], cursor))

    async def a1_media(self, request: Request) -> JSONResponse:
        post = self._world.post(request.query_params.get("code", ""))
        if post is None:
            return refusal(404, "Media not found or unavailable", "MediaNotFound")
        return JSONResponse(a1_media(post))

    async def followers_chunk(self, request: Request) -> JSONResponse:
        return self._people(request, "followers")

    async def following_chunk(self, request: Request) -> JSONResponse:
        return self._people(request, "following")

    def _people(self, request: Request, kind: str) -> JSONResponse:
        account = self._visible(request)
        if isinstance(account, JSONResponse):
            return account
        start = self._position(request, "end_cursor", kind, account.profile_id)
        if start is None:
            return refusal(400, "Invalid end_cursor", "ValidationError")
        listing = self._social.followers if kind == "followers" else self._social.following
        people, following = listing(account, start, _amount(request, "amount", PEOPLE_CHUNK))
        cursor = encode_cursor(kind, account.profile_id, following) if following is not None else None
        return JSONResponse(chunk([user_short(person) for person in people], cursor))

    async def stories(self, request: Request) -> JSONResponse:
        account = self._visible(request)
        if isinstance(account, JSONResponse):
            return account
        return JSONResponse([story(item) for item in active_stories(self._world, account, int(time.time()))])

    async def hashtag_chunk(self, request: Request) -> JSONResponse:
        tag = request.query_params.get("name", "").strip().lstrip("#").lower()
        if not tag:
            return refusal(422, "Field required: name", "ValidationError")
        start = self._position(request, "max_id", "hashtag", tag)
        if start is None:
            return refusal(400, "Invalid max_id", "ValidationError")
        size = min(_amount(request, "max_amount", HASHTAG_CHUNK), HASHTAG_CHUNK)
        posts, following = self._social.hashtag_page(tag, start, size)
        cursor = encode_cursor("hashtag", tag, following) if following is not None else None
        return JSONResponse(chunk([media(post) for post in posts], cursor))

    @staticmethod
    def _position(request: Request, parameter: str, tag: str, key: str) -> int | None:
        cursor = request.query_params.get(parameter)
        return decode_cursor(cursor, tag, key) if cursor else 0


def _amount(request: Request, parameter: str, default: int) -> int:
    text = request.query_params.get(parameter, "")
    return int(text) if text.isdigit() and int(text) > 0 else default
