"""ArrayBobo (instagram-scraper-2022 on RapidAPI) in the sandbox: its paths, answering in its real shapes.

Profiles come in the private API's v1 ``user`` shape, timelines, tagged posts and single posts
in the web GraphQL shape, reels in the v1 clips shape and stories in the v1 reels_media shape,
each with the extra fields the real answers carry. ``providers/fixtures/arraybobo/`` holds
answers of these builders.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
)
from providers.sandbox.instagram_v1 import reel_item, story_reel, user_info
from providers.sandbox.instagram_web import (
    graphql_location,
    graphql_media,
    graphql_user,
    page_info,
    timeline_connection,
)
from providers.sandbox.stories import Story, active_stories, tagged_posts

PREFIX = "/rapidapi-arraybobo"

USER_NOT_FOUND = {"message": "User not found", "status": "fail"}
MEDIA_NOT_FOUND = {"message": "Media not found or unavailable", "status": "fail"}


# Timeline and single posts (web GraphQL)


def timeline_page(owner: Account, posts: list[Post], end_cursor: str | None) -> dict[str, Any]:
    return {
        "data": {"user": {"edge_owner_to_timeline_media": timeline_connection(posts, owner.media_count, end_cursor)}},
        "status": "ok",
    }


def post_info(post: Post) -> dict[str, Any]:
    owner = post.owner
    media = graphql_media(post)
    media.update(
        display_resources=[
            {
                "src": cdn.image(post.media_pk, width, width * post.height // post.width, variant=2),
                "config_width": width,
                "config_height": width * post.height // post.width,
            }
            for width in (640, 750, 1080)
        ],
        upcoming_event=None,
        owner={
            **graphql_user(owner),
            "blocked_by_viewer": False,
            "restricted_by_viewer": None,
            "has_blocked_viewer": False,
            "is_embeds_disabled": False,
            "is_private": owner.is_private,
            "is_unpublished": False,
            "requested_by_viewer": False,
            "pass_tiering_recommendation": True,
            "edge_owner_to_timeline_media": {"count": owner.media_count},
            "edge_followed_by": {"count": owner.followers},
        },
        edge_media_to_parent_comment={"count": post.comments, "page_info": page_info(None), "edges": []},
        edge_media_to_hoisted_comment={"edges": []},
        edge_media_preview_comment={"count": post.comments, "edges": []},
        edge_web_media_to_related_media={"edges": []},
        edge_related_profiles={"edges": []},
        location=graphql_location(post.location, with_address=True),
        is_ad=False,
        caption_is_edited=False,
        has_ranked_comments=False,
        like_and_view_counts_disabled=False,
        commenting_disabled_for_viewer=False,
    )
    if post.kind == "video":
        media.update(
            video_play_count=post.video_plays,
            video_duration=post.video_duration,
            title="",
            encoding_status=None,
            is_published=True,
        )
    return media


# Reels (v1 clips)


def reels_page(posts: list[Post], max_id: str | None) -> dict[str, Any]:
    return {
        "items": [reel_item(post) for post in posts],
        "paging_info": {"max_id": max_id, "more_available": max_id is not None},
        "status": "ok",
    }


# Tagged posts (web GraphQL)


def tagged_page(posts: list[Post], total: int, end_cursor: str | None) -> dict[str, Any]:
    return {
        "data": {"user": {"edge_user_to_photos_of_you": timeline_connection(posts, total, end_cursor)}},
        "status": "ok",
    }


# Stories (v1 reels_media)


def stories_answer(owner: Account, stories: list[Story]) -> dict[str, Any]:
    """Instagram's reels_media answer: keyed by the owner's id, empty when nothing is up."""
    if not stories:
        return {"reels": {}, "reels_media": [], "status": "ok"}
    reel = story_reel(owner, stories)
    return {"reels": {owner.profile_id: reel}, "reels_media": [reel], "status": "ok"}


# Routes


def _fail(message: str) -> JSONResponse:
    return JSONResponse({"message": message, "status": "fail"}, status_code=400)


class ArrayBoboRoutes:
    """Real answers are HTTP 200 even when the profile or post does not exist; only the body says so."""

    def __init__(self, world: InstagramWorld, clock: Callable[[], float] = time.time) -> None:
        self._world = world
        # Which stories are up depends on the moment asked; tests pin it.
        self._clock = clock

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/ig/info_username/", self.info_username),
                Route("/ig/info/", self.info),
                Route("/ig/posts/", self.posts),
                Route("/ig/post_info/", self.post_info),
                Route("/ig/reels_posts/", self.reels_posts),
                Route("/ig/tagged/", self.tagged),
                Route("/ig/stories/", self.stories),
            ],
        )

    async def info_username(self, request: Request) -> JSONResponse:
        handle = request.query_params.get("user")
        if not handle:
            return _fail("Missing required parameter: user")
        account = self._world.account(handle)
        return JSONResponse(user_info(account) if account else USER_NOT_FOUND)

    async def info(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        account = self._world.account_by_id(profile_id)
        return JSONResponse(user_info(account) if account else USER_NOT_FOUND)

    async def posts(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        owner = self._world.account_by_id(profile_id)
        if owner is None:
            return JSONResponse({"data": {"user": None}, "status": "ok"})
        start = 0
        if cursor := request.query_params.get("end_cursor"):
            resumed = decode_cursor(cursor, "posts", owner.profile_id)
            if resumed is None:
                return _fail("Invalid end_cursor")
            start = resumed
        posts = self._world.timeline(owner, start)
        following = start + len(posts)
        more = bool(posts) and following < owner.media_count
        end_cursor = encode_cursor("posts", owner.profile_id, following) if more else None
        return JSONResponse(timeline_page(owner, posts, end_cursor))

    async def post_info(self, request: Request) -> JSONResponse:
        shortcode = request.query_params.get("shortcode")
        if not shortcode:
            return _fail("Missing required parameter: shortcode")
        post = self._world.post(shortcode)
        return JSONResponse(post_info(post) if post else MEDIA_NOT_FOUND)

    async def reels_posts(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        owner = self._world.account_by_id(profile_id)
        if owner is None:
            return JSONResponse(USER_NOT_FOUND)
        start = 0
        if max_id := request.query_params.get("max_id"):
            resumed = decode_cursor(max_id, "reels", owner.profile_id)
            if resumed is None:
                return _fail("Invalid max_id")
            start = resumed
        posts, following = self._world.reels(owner, start)
        next_max_id = encode_cursor("reels", owner.profile_id, following) if following is not None else None
        return JSONResponse(reels_page(posts, next_max_id))

    async def tagged(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        account = self._world.account_by_id(profile_id)
        if account is None:
            return JSONResponse({"data": {"user": None}, "status": "ok"})
        start = 0
        if cursor := request.query_params.get("end_cursor"):
            resumed = decode_cursor(cursor, "tagged", account.profile_id)
            if resumed is None:
                return _fail("Invalid end_cursor")
            start = resumed
        posts, following = tagged_posts(self._world, account, start)
        end_cursor = encode_cursor("tagged", account.profile_id, following) if following is not None else None
        return JSONResponse(tagged_page(posts, int(account.profile_id) % 40, end_cursor))

    async def stories(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        account = self._world.account_by_id(profile_id)
        if account is None:
            return JSONResponse(USER_NOT_FOUND)
        return JSONResponse(stories_answer(account, active_stories(self._world, account, int(self._clock()))))
