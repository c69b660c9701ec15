"""RocketAPI (v1.rocketapi.io) in the sandbox, and the follower lists it shares with IGApi.

Every answer is RocketAPI's envelope around Instagram's own:
``{"status": "done", "response": {"status_code", "content_type", "body"}}``; Instagram's 404
travels inside a 200. Parameters come as a JSON body, on GET (as the legacy client sends
them) or POST. A token starting with ``exhausted`` stands for a plan whose requests are
used up: RocketAPI says so in its own body (``"status": "error"``), not with a 429.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    seeded,
)
from providers.sandbox.instagram_v1 import feed_item, reel_item, story_reel, v1_user
from providers.sandbox.stories import active_stories

PREFIX = "/rocketapi"
METHODS = ["GET", "POST"]
FOLLOWERS_MAX_PAGE = 200

EXHAUSTED_TOKEN = "Token exhausted"
PLAN_EXHAUSTED = {
    "status": "error",
    "message": "You have reached the request limit of your plan. Upgrade at https://rocketapi.io/dashboard",
}
NO_TOKEN = {"status": "error", "message": "Authorization token is missing or invalid"}
USER_NOT_FOUND = {"message": "User not found", "status": "fail"}
MEDIA_NOT_FOUND = {"message": "Media not found or unavailable", "status": "fail"}

_FAN_FIRST = ("aarav", "diya", "kabir", "meera", "rohan", "sana", "vikram", "zoya", "ananya", "ishaan", "tara", "neel")
_FAN_WORDS = ("travels", "eats", "fit", "studio", "clicks", "diaries", "makeup", "beats", "style", "reads", "home")


def followers_of(world: InstagramWorld, account: Account, start: int, count: int) -> list[Account]:
    """Who follows ``account``, from list position ``start``: as many in all as its follower count says.

    A follower is a pure function of the account and the position, so every provider that
    lists followers lists the same people in the same order; the position in the handle keeps
    them distinct. About one in ten is a private account.
    """
    fans = []
    for position in range(start, min(start + count, account.followers)):
        rng = seeded("follower", account.profile_id, position)
        first = "private" if rng.random() < 0.1 else rng.choice(_FAN_FIRST)
        fan = world.account(f"{first}.{rng.choice(_FAN_WORDS)}{position}")
        if fan is None:
            raise ValueError(f"follower {position} of {account.handle} has an invalid handle")
        fans.append(fan)
    return fans


def envelope(body: dict[str, Any], status_code: int = 200) -> dict[str, Any]:
    """RocketAPI's wrapper around what Instagram answered it."""
    return {
        "status": "done",
        "response": {"status_code": status_code, "content_type": "application/json", "body": body},
    }


def _reshares(post: Post) -> int:
    return post.likes // 40


def media_info(post: Post) -> dict[str, Any]:
    item = feed_item(post)
    if post.kind == "video":
        item["reshare_count"] = _reshares(post)
    return envelope(
        {"items": [item], "num_results": 1, "more_available": False, "auto_load_more_enabled": False, "status": "ok"}
    )


def clips_page(posts: list[Post], max_id: str | None) -> dict[str, Any]:
    items = []
    for post in posts:
        clip = reel_item(post)
        clip["media"]["reshare_count"] = _reshares(post)
        items.append(clip)
    return envelope(
        {"items": items, "paging_info": {"max_id": max_id, "more_available": max_id is not None}, "status": "ok"}
    )


def followers_page(fans: list[Account], next_max_id: str | None) -> dict[str, Any]:
    return envelope(
        {
            "users": [v1_user(fan) for fan in fans],
            "big_list": next_max_id is not None,
            "page_size": len(fans),
            "next_max_id": next_max_id,
            "has_more": next_max_id is not None,
            "should_limit_list_of_followers": False,
            "status": "ok",
        }
    )


def _error(body: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _invalid(message: str) -> JSONResponse:
    return _error({"status": "error", "message": message}, 400)


class RocketAPIRoutes:
    def __init__(self, world: InstagramWorld, clock: Callable[[], float] = time.time) -> None:
        self._world = world
        self._clock = clock

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/instagram/media/get_info_by_shortcode", self.media_by_shortcode, methods=METHODS),
                Route("/instagram/user/get_clips", self.clips, methods=METHODS),
                Route("/instagram/user/get_stories", self.stories, methods=METHODS),
                Route("/instagram/user/get_followers", self.followers, methods=METHODS),
            ],
        )

    async def _params(self, request: Request) -> dict[str, Any] | JSONResponse:
        """The JSON body, or the refusal RocketAPI answers instead (bad token, used-up plan, bad body)."""
        token = request.headers.get("authorization", "")
        if not token.startswith("Token ") or len(token) <= len("Token "):
            return _error(NO_TOKEN, 401)
        if token.startswith(EXHAUSTED_TOKEN):
            return _error(PLAN_EXHAUSTED, 403)
        try:
            body = await request.json()
        except ValueError:
            return _invalid("The request body must be a JSON object")
        return body if isinstance(body, dict) else _invalid("The request body must be a JSON object")

    def _owner(self, value: Any) -> Account | None:
        return self._world.account_by_id(str(value)) if isinstance(value, (int, str)) else None

    async def media_by_shortcode(self, request: Request) -> JSONResponse:
        params = await self._params(request)
        if isinstance(params, JSONResponse):
            return params
        shortcode = params.get("shortcode")
        if not isinstance(shortcode, str) or not shortcode:
            return _invalid("shortcode is required")
        post = self._world.post(shortcode)
        return JSONResponse(media_info(post) if post else envelope(MEDIA_NOT_FOUND, 404))

    async def clips(self, request: Request) -> JSONResponse:
        params = await self._params(request)
        if isinstance(params, JSONResponse):
            return params
        owner = self._owner(params.get("id"))
        if owner is None:
            return JSONResponse(envelope(USER_NOT_FOUND, 404))
        start = 0
        if max_id := params.get("max_id"):
            resumed = decode_cursor(str(max_id), "clips", owner.profile_id)
            if resumed is None:
                return _invalid("invalid max_id")
            start = resumed
        posts, following = self._world.reels(owner, start)
        return JSONResponse(
            clips_page(posts, encode_cursor("clips", owner.profile_id, following) if following is not None else None)
        )

    async def stories(self, request: Request) -> JSONResponse:
        params = await self._params(request)
        if isinstance(params, JSONResponse):
            return params
        ids = params.get("ids")
        if not isinstance(ids, list) or not ids:
            return _invalid("ids must be a non-empty list of user ids")
        now = int(self._clock())
        reels: dict[str, Any] = {}
        for value in ids:
            owner = self._owner(value)
            if owner is None:
                return JSONResponse(envelope(USER_NOT_FOUND, 404))
            if stories := active_stories(self._world, owner, now):
                reels[owner.profile_id] = story_reel(owner, stories)
        return JSONResponse(envelope({"reels": reels, "reels_media": list(reels.values()), "status": "ok"}))

    async def followers(self, request: Request) -> JSONResponse:
        params = await self._params(request)
        if isinstance(params, JSONResponse):
            return params
        owner = self._owner(params.get("id"))
        if owner is None:
            return JSONResponse(envelope(USER_NOT_FOUND, 404))
        count = params.get("count", 100)
        if not isinstance(count, int) or count < 1:
            return _invalid("count must be a positive number")
        start = 0
        if max_id := params.get("max_id"):
            if not str(max_id).isdigit():
                return _invalid("invalid max_id")
            start = int(max_id)
        if owner.is_private:
            return JSONResponse(followers_page([], None))
        fans = followers_of(self._world, owner, start, min(count, FOLLOWERS_MAX_PAGE))
        following = start + len(fans)
        return JSONResponse(followers_page(fans, str(following) if fans and following < owner.followers else None))
