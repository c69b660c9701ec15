"""JoTucker (instagram-scraper2 on RapidAPI) in the sandbox: its paths, answering in its real shapes.

Profiles come in the private API's v1 ``user`` shape (the same answer ArrayBobo passes through),
timelines and single posts as v1 media items, and the lists (followers, following, likers,
comments, hashtag feeds) in the web GraphQL edge shape with ``page_info``. Lists page with an
opaque ``next_cursor`` and honour ``batch_size`` (1 to 50). ``providers/fixtures/jotucker/``
holds answers of these builders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
from providers.sandbox.instagram_v1 import user_info, v1_media
from providers.sandbox.instagram_web import page_info, timeline_node
from providers.sandbox.social import Comment, SocialGraph

PREFIX = "/rapidapi-jotucker"
MAX_BATCH = 50
DEFAULT_BATCH = 12
REPLIES_SHOWN = 3

USER_NOT_FOUND = {"message": "User not found", "status": "fail"}
MEDIA_NOT_FOUND = {"message": "Media not found or unavailable", "status": "fail"}


# v1 media items (timelines and single posts)


def medias_page(posts: list[Post], next_max_id: str | None) -> dict[str, Any]:
    return {
        "items": [v1_media(post) for post in posts],
        "num_results": len(posts),
        "more_available": next_max_id is not None,
        "next_max_id": next_max_id,
        "auto_load_more_enabled": True,
        "status": "ok",
    }


def media_info(post: Post) -> dict[str, Any]:
    return {
        "items": [v1_media(post)],
        "num_results": 1,
        "more_available": False,
        "auto_load_more_enabled": False,
        "status": "ok",
    }


# GraphQL lists


def graphql_person(account: Account) -> dict[str, Any]:
    return {
        "id": account.profile_id,
        "username": account.handle,
        "full_name": account.full_name,
        "profile_pic_url": account.profile_pic_url,
        "is_private": account.is_private,
        "is_verified": account.is_verified,
        "followed_by_viewer": False,
        "requested_by_viewer": False,
    }


def people_page(edge: str, total: int, people: list[Account], end_cursor: str | None) -> dict[str, Any]:
    """``edge`` is ``edge_followed_by`` (followers) or ``edge_follow`` (following)."""
    return {
        "data": {
            "user": {
                edge: {
                    "count": total,
                    "page_info": page_info(end_cursor),
                    "edges": [{"node": graphql_person(person)} for person in people],
                }
            }
        },
        "status": "ok",
    }


def likers_page(post: Post, likers: list[Account], end_cursor: str | None) -> dict[str, Any]:
    return {
        "data": {
            "shortcode_media": {
                "id": str(post.media_pk),
                "shortcode": post.shortcode,
                "edge_liked_by": {
                    "count": post.likes,
                    "page_info": page_info(end_cursor),
                    "edges": [{"node": graphql_person(liker)} for liker in likers],
                },
            }
        },
        "status": "ok",
    }


def _comment_fields(comment: Comment) -> dict[str, Any]:
    author = comment.author
    return {
        "id": comment.id,
        "text": comment.text,
        "created_at": comment.created_at,
        "did_report_as_spam": False,
        "owner": {
            "id": author.profile_id,
            "is_verified": author.is_verified,
            "profile_pic_url": author.profile_pic_url,
            "username": author.handle,
        },
        "viewer_has_liked": False,
        "edge_liked_by": {"count": comment.likes},
        "is_restricted_pending": False,
    }


def comment_node(comment: Comment, replies: list[Comment]) -> dict[str, Any]:
    """A top-level comment with the first of its replies, as the web shows a thread."""
    more = comment.replies > len(replies)
    node = _comment_fields(comment)
    node["edge_threaded_comments"] = {
        "count": comment.replies,
        "page_info": page_info(encode_cursor("replies", comment.id, len(replies)) if more else None),
        "edges": [{"node": _comment_fields(reply)} for reply in replies],
    }
    return node


def comments_page(post: Post, comments: list[tuple[Comment, list[Comment]]], end_cursor: str | None) -> dict[str, Any]:
    return {
        "data": {
            "shortcode_media": {
                "id": str(post.media_pk),
                "shortcode": post.shortcode,
                "edge_media_to_parent_comment": {
                    "count": post.comments,
                    "page_info": page_info(end_cursor),
                    "edges": [{"node": comment_node(comment, replies)} for comment, replies in comments],
                },
            }
        },
        "status": "ok",
    }


def hashtag_node(post: Post) -> dict[str, Any]:
    """A hashtag feed's node: the timeline node, but the owner carries only its id."""
    node = timeline_node(post)
    node["owner"] = {"id": post.owner.profile_id}
    return node


def hashtag_page(tag: str, total: int, posts: list[Post], end_cursor: str | None) -> dict[str, Any]:
    return {
        "data": {
            "hashtag": {
                "id": str(17_843_000_000_000_000 + seeded("hashtag-id", tag).randrange(10**14)),
                "name": tag,
                "allow_following": True,
                "is_following": False,
                "is_top_media_only": False,
                "profile_pic_url": posts[0].owner.profile_pic_url if posts else None,
                "edge_hashtag_to_media": {"count": total},
                "edge_hashtag_to_ranked_media": {
                    "count": total,
                    "page_info": page_info(end_cursor),
                    "edges": [{"node": hashtag_node(post)} for post in posts],
                },
            }
        },
        "status": "ok",
    }


# Routes


def _fail(message: str) -> JSONResponse:
    return JSONResponse({"message": message, "status": "fail"}, status_code=400)


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise _BadRequest(f"Missing required parameter: {name}")
    return value


def _batch_size(request: Request) -> int:
    text = request.query_params.get("batch_size", str(DEFAULT_BATCH))
    if not text.isdigit() or not 1 <= int(text) <= MAX_BATCH:
        raise _BadRequest(f"batch_size must be between 1 and {MAX_BATCH}")
    return int(text)


def _position(request: Request, parameter: str, tag: str, key: str) -> int:
    cursor = request.query_params.get(parameter)
    if not cursor:
        return 0
    position = decode_cursor(cursor, tag, key)
    if position is None:
        raise _BadRequest(f"Invalid {parameter}")
    return position


class JoTuckerRoutes:
    """Missing profiles and posts answer HTTP 200 with a failure body, as the real API does."""

    def __init__(self, world: InstagramWorld) -> None:
        self._world = world
        self._social = SocialGraph(world)

    def mount(self) -> Mount:
        handlers = {
            "/user_info_by_id": self.user_info_by_id,
            "/medias_v2": self.medias_v2,
            "/media_info_v2": self.media_info_v2,
            "/followers": self.followers,
            "/following": self.following,
            "/media_likers": self.media_likers,
            "/media_comments": self.media_comments,
            "/hash_tag_medias_v2": self.hash_tag_medias_v2,
        }
        return Mount(PREFIX, routes=[Route(path, self._guarded(handler)) for path, handler in handlers.items()])

    @staticmethod
    def _guarded(handler: Callable[[Request], Awaitable[JSONResponse]]) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def endpoint(request: Request) -> JSONResponse:
            try:
                return await handler(request)
            except _BadRequest as exc:
                return _fail(exc.message)

        return endpoint

    def _account_by_id(self, request: Request) -> Account | None:
        return self._world.account_by_id(_required(request, "user_id"))

    async def user_info_by_id(self, request: Request) -> JSONResponse:
        if handle := request.query_params.get("user_name"):
            account = self._world.account(handle)
        else:
            account = self._account_by_id(request)
        return JSONResponse(user_info(account) if account else USER_NOT_FOUND)

    async def medias_v2(self, request: Request) -> JSONResponse:
        owner = self._account_by_id(request)
        if owner is None:
            return JSONResponse(USER_NOT_FOUND)
        start = _position(request, "max_id", "medias", owner.profile_id)
        posts = self._world.timeline(owner, start, _batch_size(request))
        following = start + len(posts)
        more = bool(posts) and following < owner.media_count
        return JSONResponse(medias_page(posts, encode_cursor("medias", owner.profile_id, following) if more else None))

    async def media_info_v2(self, request: Request) -> JSONResponse:
        post = self._world.post(_required(request, "short_code"))
        return JSONResponse(media_info(post) if post else MEDIA_NOT_FOUND)

    async def followers(self, request: Request) -> JSONResponse:
        return self._people(request, "followers", "edge_followed_by")

    async def following(self, request: Request) -> JSONResponse:
        return self._people(request, "following", "edge_follow")

    def _people(self, request: Request, kind: str, edge: str) -> JSONResponse:
        account = self._account_by_id(request)
        if account is None:
            return JSONResponse({"data": {"user": None}, "status": "ok"})
        total = account.followers if kind == "followers" else account.following
        if account.is_private:
            return JSONResponse(people_page(edge, total, [], None))
        start = _position(request, "next_cursor", kind, account.profile_id)
        listing = self._social.followers if kind == "followers" else self._social.following
        people, following = listing(account, start, _batch_size(request))
        end_cursor = encode_cursor(kind, account.profile_id, following) if following is not None else None
        return JSONResponse(people_page(edge, total, people, end_cursor))

    def _post(self, request: Request) -> Post | None:
        return self._world.post(_required(request, "short_code"))

    async def media_likers(self, request: Request) -> JSONResponse:
        post = self._post(request)
        if post is None:
            return JSONResponse({"data": {"shortcode_media": None}, "status": "ok"})
        start = _position(request, "next_cursor", "likers", post.shortcode)
        likers, following = self._social.likers(post, start, _batch_size(request))
        end_cursor = encode_cursor("likers", post.shortcode, following) if following is not None else None
        return JSONResponse(likers_page(post, likers, end_cursor))

    async def media_comments(self, request: Request) -> JSONResponse:
        post = self._post(request)
        if post is None:
            return JSONResponse({"data": {"shortcode_media": None}, "status": "ok"})
        start = _position(request, "next_cursor", "comments", post.shortcode)
        comments, following = self._social.comments(post, start, _batch_size(request))
        end_cursor = encode_cursor("comments", post.shortcode, following) if following is not None else None
        threads = [(comment, self._social.replies(comment, REPLIES_SHOWN)) for comment in comments]
        return JSONResponse(comments_page(post, threads, end_cursor))

    async def hash_tag_medias_v2(self, request: Request) -> JSONResponse:
        tag = _required(request, "hash_tag").strip().lstrip("#").lower()
        feed = self._social.hashtag(tag)
        start = _position(request, "next_cursor", "hashtag", tag)
        posts, following = self._social.hashtag_page(tag, start, _batch_size(request))
        end_cursor = encode_cursor("hashtag", tag, following) if following is not None else None
        return JSONResponse(hashtag_page(tag, len(feed), posts, end_cursor))
