"""BestSolutions (instagram-api-cheap-best-performance on RapidAPI) in the sandbox.

``/profile`` answers the private API's v1 user at the top level, ``/feed`` a page of v1 feed
items (``items``, ``more_available``, ``next_max_id``). A profile it does not know is a 404.
``providers/fixtures/bestsolutions/`` holds answers of these builders.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox import cdn
from providers.sandbox.arraybobo import (
    user_info,
    v1_caption,
    v1_tags_and_place,
    v1_user,
)
from providers.sandbox.instagram import (
    Account,
    InstagramWorld,
    Post,
    decode_cursor,
    encode_cursor,
    encode_shortcode,
)

PREFIX = "/rapidapi-bestsolutions"

USER_NOT_FOUND = {"message": "User not found"}

_MEDIA_TYPE = {"image": 1, "video": 2, "carousel": 8}
_PRODUCT_TYPE = {"image": "feed", "video": "clips", "carousel": "carousel_container"}


def profile(account: Account) -> dict[str, Any]:
    return user_info(account)["user"]


def _image_versions(media_pk: int, width: int, height: int, variant: int) -> dict[str, Any]:
    return {"candidates": [
        {"width": size, "height": size * height // width, "url": cdn.image(media_pk, size, size * height // width,
                                                                        variant + number)}
        for number, size in enumerate((width, 640, 320))
    ]}


def _carousel_media(post: Post) -> list[dict[str, Any]]:
    children = []
    for child in range(post.children):
        pk = post.media_pk + 1 + child
        children.append({
            "id": f"{pk}_{post.owner.profile_id}",
            "pk": pk,
            "media_type": 1,
            "code": encode_shortcode(pk),
            "carousel_parent_id": post.media_id,
            "image_versions2": _image_versions(post.media_pk, post.width, post.height, 10 + child * 3),
            "original_width": post.width,
            "original_height": post.height,
            "taken_at": post.taken_at,
            "accessibility_caption": post.accessibility_caption,
        })
    return children


def feed_item(post: Post) -> dict[str, Any]:
    """A v1 media item of any kind, as the private API's user feed and media-info answers carry it."""
    owner = {**v1_user(post.owner), "id": post.owner.profile_id}
    item: dict[str, Any] = {
        "taken_at": post.taken_at,
        "pk": post.media_pk,
        "id": post.media_id,
        "device_timestamp": post.taken_at * 1_000_000 + post.media_pk % 1_000_000,
        "media_type": _MEDIA_TYPE[post.kind],
        "code": post.shortcode,
        "client_cache_key": f"{post.media_pk % 10**10}.2",
        "filter_type": 0,
        "caption_is_edited": False,
        "like_and_view_counts_disabled": False,
        "product_type": _PRODUCT_TYPE[post.kind],
        "is_in_profile_grid": False,
        "profile_grid_control_enabled": False,
        "user": owner,
        "owner": owner,
        "can_viewer_reshare": True,
        "like_count": post.likes,
        "comment_count": post.comments,
        "has_liked": False,
        "top_likers": [],
        "caption": v1_caption(post),
        "original_width": post.width,
        "original_height": post.height,
        "accessibility_caption": post.accessibility_caption,
        "is_paid_partnership": bool(post.sponsors),
        "commerciality_status": "not_commercial",
        "comment_threading_enabled": True,
    }
    if post.kind == "carousel":
        # A carousel's pictures are its children's; the item itself has none.
        item.update(carousel_media_count=post.children, carousel_media=_carousel_media(post))
    else:
        item["image_versions2"] = _image_versions(post.media_pk, post.width, post.height, 0)
    if post.kind == "video":
        item.update(
            video_versions=[
                {"type": version, "width": width, "height": width * 16 // 9,
                 "url": cdn.video(post.media_pk, width, width * 16 // 9), "id": str(post.media_pk % 10**15 + version)}
                for version, width in ((101, 720), (102, 480), (103, 360))
            ],
            video_duration=post.video_duration,
            has_audio=True,
            view_count=post.video_views,
            play_count=post.video_plays,
            ig_play_count=post.video_plays,
        )
    item.update(v1_tags_and_place(post))
    if post.location is not None:
        item.update(lat=post.location.city.latitude, lng=post.location.city.longitude)
    return item


def feed_page(posts: list[Post], next_max_id: str | None) -> dict[str, Any]:
    return {
        "items": [feed_item(post) for post in posts],
        "num_results": len(posts),
        "more_available": next_max_id is not None,
        "next_max_id": next_max_id,
        "auto_load_more_enabled": True,
        "status": "ok",
    }


def _invalid(message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=400)


class BestSolutionsRoutes:
    def __init__(self, world: InstagramWorld) -> None:
        self._world = world

    def mount(self) -> Mount:
        return Mount(PREFIX, routes=[
            Route("/profile", self.profile),
            Route("/feed", self.feed),
        ])

    async def profile(self, request: Request) -> JSONResponse:
        if username := request.query_params.get("username"):
            account = self._world.account(username)
        elif user_id := request.query_params.get("user_id"):
            account = self._world.account_by_id(user_id)
        else:
            return _invalid("username or user_id is required")
        if account is None:
            return JSONResponse(USER_NOT_FOUND, status_code=404)
        return JSONResponse(profile(account))

    async def feed(self, request: Request) -> JSONResponse:
        user_id = request.query_params.get("user_id")
        if not user_id:
            return _invalid("user_id is required")
        owner = self._world.account_by_id(user_id)
        if owner is None:
            return JSONResponse(USER_NOT_FOUND, status_code=404)
        start = 0
        if cursor := request.query_params.get("next_max_id"):
            resumed = decode_cursor(cursor, "feed", owner.profile_id)
            if resumed is None:
                return _invalid("invalid next_max_id")
            start = resumed
        posts = self._world.timeline(owner, start)
        following = start + len(posts)
        more = bool(posts) and following < owner.media_count
        return JSONResponse(feed_page(posts, encode_cursor("feed", owner.profile_id, following) if more else None))
