"""NeoTank (instagram130 on RapidAPI) in the sandbox: web GraphQL profiles and timeline pages.

``/account-info`` answers the web profile (``edge_followed_by`` and so on) with its first
timeline page embedded, ``/account-medias`` a timeline page (``count``, ``page_info``,
``edges``) of up to 50 posts whatever ``first`` asks, as Instagram's web API caps it. A
username or id NeoTank cannot use is a 422, an unknown profile a 404, a call without a
RapidAPI key a 401.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.instagram import (
    PAGE_SIZE,
    Account,
    InstagramWorld,
    Post,
    decode_cursor,
    encode_cursor,
    seeded,
)
from providers.sandbox.instagram_web import page_info, timeline_connection

PREFIX = "/rapidapi-neotank"
MAX_FIRST = 50

NO_KEY = {"message": "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info."}
NOT_FOUND = {"message": "Page not found"}


def _cursor(owner: Account, following: int) -> str | None:
    return encode_cursor("medias", owner.profile_id, following) if following < owner.media_count else None


def account_info(world: InstagramWorld, account: Account) -> dict[str, Any]:
    posts = world.timeline(account, 0)
    videos = sum(post.kind == "video" for post in world.timeline(account, 0, account.media_count))
    city = account.city
    professional = account.account_type != 1
    return {
        "biography": account.biography,
        "bio_links": [{"title": "", "lynx_url": "", "url": account.external_url, "link_type": "external"}]
        if account.external_url
        else [],
        "biography_with_entities": {"raw_text": account.biography, "entities": []},
        "blocked_by_viewer": False,
        "restricted_by_viewer": None,
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
        "group_metadata": None,
        "has_ar_effects": False,
        "has_clips": videos > 0,
        "has_guides": False,
        "has_channel": False,
        "has_blocked_viewer": False,
        "highlight_reel_count": seeded("highlights", account.profile_id).randrange(0, 12),
        "has_requested_viewer": False,
        "hide_like_and_view_counts": False,
        "id": account.profile_id,
        "is_business_account": account.account_type == 2,
        "is_professional_account": professional,
        "is_supervision_enabled": False,
        "is_guardian_of_viewer": False,
        "is_joined_recently": False,
        "business_address_json": None,
        "business_contact_method": "UNKNOWN",
        "business_email": account.public_email if professional else None,
        "business_phone_number": account.contact_phone if professional else None,
        "business_category_name": account.category if account.account_type == 2 else None,
        "overall_category_name": None,
        "category_enum": None,
        "category_name": account.category,
        "is_private": account.is_private,
        "is_verified": account.is_verified,
        "is_verified_by_mv4b": False,
        "is_regulated_c18": False,
        "profile_pic_url": account.profile_pic_url,
        "profile_pic_url_hd": account.hd_profile_pic_url,
        "should_show_category": professional,
        "should_show_public_contacts": professional,
        "username": account.handle,
        "city_name": city.name if city else None,
        "pronouns": [],
        "transparency_label": None,
        "transparency_product": None,
        "edge_felix_video_timeline": {"count": videos, "page_info": page_info(None), "edges": []},
        "edge_owner_to_timeline_media": timeline_connection(
            posts, account.media_count, _cursor(account, len(posts)) if posts else None
        ),
        "edge_saved_media": {"count": 0, "page_info": page_info(None), "edges": []},
        "edge_media_collections": {"count": 0, "page_info": page_info(None), "edges": []},
    }


def account_medias(owner: Account, posts: list[Post], end_cursor: str | None) -> dict[str, Any]:
    return timeline_connection(posts, owner.media_count, end_cursor)


def _unprocessable(message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=422)


class NeoTankRoutes:
    def __init__(self, world: InstagramWorld) -> None:
        self._world = world

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/account-info", self.account_info),
                Route("/account-medias", self.account_medias),
            ],
        )

    async def account_info(self, request: Request) -> JSONResponse:
        if not request.headers.get("x-rapidapi-key"):
            return JSONResponse(NO_KEY, status_code=401)
        username = request.query_params.get("username", "").strip().lstrip("@").lower()
        if not username:
            return _unprocessable("username is required")
        account = self._world.account(username)
        if account is None:
            if username.startswith("missing"):
                return JSONResponse(NOT_FOUND, status_code=404)
            return _unprocessable(f"Invalid username: {username}")
        return JSONResponse(account_info(self._world, account))

    async def account_medias(self, request: Request) -> JSONResponse:
        if not request.headers.get("x-rapidapi-key"):
            return JSONResponse(NO_KEY, status_code=401)
        owner = self._world.account_by_id(request.query_params.get("userid", ""))
        if owner is None:
            return _unprocessable("userid must be a numeric Instagram user id")
        first = request.query_params.get("first", str(PAGE_SIZE))
        if not first.isdigit() or int(first) < 1:
            return _unprocessable("first must be a positive number")
        start = 0
        if after := request.query_params.get("after"):
            resumed = decode_cursor(after, "medias", owner.profile_id)
            if resumed is None:
                return _unprocessable("Invalid after cursor")
            start = resumed
        posts = self._world.timeline(owner, start, min(int(first), MAX_FIRST))
        following = start + len(posts)
        return JSONResponse(account_medias(owner, posts, _cursor(owner, following) if posts else None))
