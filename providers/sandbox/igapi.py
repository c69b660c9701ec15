"""IGApi (igdata on RapidAPI) in the sandbox: web GraphQL follower pages.

``/web_followers`` lists the same followers as RocketAPI's sandbox, 50 a page, in the web
shape (``count``, ``page_info``, ``edges[].node``). Like the real endpoint on large
accounts, it stops early: after ``SERVED_FOLLOWERS`` it answers "no next page" although
``count`` says there are more.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.instagram import (
    Account,
    InstagramWorld,
    decode_cursor,
    encode_cursor,
)
from providers.sandbox.instagram_web import page_info
from providers.sandbox.rocketapi import followers_of

PREFIX = "/rapidapi-igapi"
PAGE_SIZE = 50
SERVED_FOLLOWERS = 1_000

USER_NOT_FOUND = {"message": "User not found"}


def follower_node(account: Account) -> dict[str, Any]:
    return {
        "id": account.profile_id,
        "username": account.handle,
        "full_name": account.full_name,
        "profile_pic_url": account.profile_pic_url,
        "is_private": account.is_private,
        "is_verified": account.is_verified,
        "followed_by_viewer": False,
        "follows_viewer": False,
        "requested_by_viewer": False,
    }


def followers_page(owner: Account, fans: list[Account], end_cursor: str | None) -> dict[str, Any]:
    return {
        "count": owner.followers,
        "page_info": page_info(end_cursor),
        "edges": [{"node": follower_node(fan)} for fan in fans],
    }


class IGApiRoutes:
    def __init__(self, world: InstagramWorld) -> None:
        self._world = world

    def mount(self) -> Mount:
        return Mount(PREFIX, routes=[Route("/web_followers", self.web_followers)])

    async def web_followers(self, request: Request) -> JSONResponse:
        user_id = request.query_params.get("user_id")
        if not user_id:
            return JSONResponse({"message": "user_id is required"}, status_code=400)
        owner = self._world.account_by_id(user_id)
        if owner is None:
            return JSONResponse(USER_NOT_FOUND, status_code=404)
        start = 0
        if cursor := request.query_params.get("cursor"):
            resumed = decode_cursor(cursor, "web_followers", owner.profile_id)
            if resumed is None:
                return JSONResponse({"message": "invalid cursor"}, status_code=400)
            start = resumed
        # A private account's followers are hidden; the count still shows.
        served = 0 if owner.is_private else min(owner.followers, SERVED_FOLLOWERS)
        fans = followers_of(self._world, owner, start, max(0, min(PAGE_SIZE, served - start)))
        following = start + len(fans)
        more = following < served
        return JSONResponse(
            followers_page(owner, fans, encode_cursor("web_followers", owner.profile_id, following) if more else None)
        )
