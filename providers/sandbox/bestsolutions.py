"""BestSolutions (instagram-api-cheap-best-performance on RapidAPI) in the sandbox.

``/profile`` answers the private API's v1 user at the top level, ``/feed`` a page of v1 feed
items (``items``, ``more_available``, ``next_max_id``). A profile it does not know is a 404.
``providers/fixtures/bestsolutions/`` holds its answers.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.instagram import (
    Account,
    InstagramWorld,
    Post,
    decode_cursor,
    encode_cursor,
)
from providers.sandbox.instagram_v1 import feed_item, user_info

PREFIX = "/rapidapi-bestsolutions"

USER_NOT_FOUND = {"message": "User not found"}


def profile(account: Account) -> dict[str, Any]:
    user: dict[str, Any] = user_info(account)["user"]
    return user


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
        return Mount(
            PREFIX,
            routes=[
                Route("/profile", self.profile),
                Route("/feed", self.feed),
            ],
        )

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
