"""The YouTube Data API v3 in the sandbox: channels, videos, playlistItems, search, commentThreads,
activities and subscriptions, rendered from the ``YouTubeWorld`` in the API's real shapes.

``DataApiAnswers`` renders the resources from query parameters; ``YouTubeDataRoutes`` serves them
under ``/ytapitoken/youtube/v3/…`` and ``/ytapi/youtube/v3/…`` behind the API-key gate, and the
RapidAPI wrappers (youtube-v31, youtube-v311) serve the same answers behind theirs.

The key gate answers like Google: no ``key`` → 403 ``forbidden``; a key starting ``invalid-`` →
400 with the ``API_KEY_INVALID`` detail; a key starting ``quota-`` → 403 ``quotaExceeded`` (a key
whose daily quota is spent), so tests can watch the crawler rest it and fall through.

Lists page with ``pageToken``/``nextPageToken`` (tokens encode the offset, as Google's ``CAUQAA``
do), ``maxResults`` default 5 and at most 50 (100 for commentThreads). Ids the world does not know
are left out of ``items``; a playlist, video or subscriber it does not know is a 404.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.youtube import (
    Activity,
    Channel,
    Comment,
    Subscription,
    Video,
    YouTubeWorld,
    rfc3339,
)

LABELS = ("ytapitoken", "ytapi")
API = "/youtube/v3"
DEFAULT_PAGE = 5
MAX_PAGE = 50
MAX_COMMENT_PAGE = 100
INVALID_KEY_PREFIX = "invalid-"
QUOTA_KEY_PREFIX = "quota-"
SEARCH_DESCRIPTION_CHARS = 160
# The picture a comment shows for an author without a channel.
DEFAULT_AVATAR = "https://yt3.ggpht.com/ytc/AIdro_default-user=s88-c-k-c0x00ffffff-no-rj"
_STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    503: "UNAVAILABLE",
}


class ApiRefusal(Exception):
    """An error answer in Google's shape; raised anywhere below a route and rendered by it."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        domain: str = "global",
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain, self.details = status, reason, message, domain, details

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
        }
        if self.status in _STATUS_TEXT:
            error["status"] = _STATUS_TEXT[self.status]
        if self.details:
            error["details"] = self.details
        return JSONResponse({"error": error}, status_code=self.status)


MISSING_KEY = ApiRefusal(403, "forbidden", "The request is missing a valid API key.")
INVALID_KEY = ApiRefusal(
    400,
    "badRequest",
    "API key not valid. Please pass a valid API key.",
    details=[
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "youtube.googleapis.com"},
        }
    ],
)
QUOTA_SPENT = ApiRefusal(
    403,
    "quotaExceeded",
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.',
    "youtube.quota",
)


# Small pieces of the wire format


def etag(*parts: object) -> str:
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=20).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_page_token(offset: int) -> str:
    """Google's page tokens are a small protocol buffer: field 1 the offset (a varint), field 2 the direction."""
    varint = bytearray()
    while True:
        byte, offset = offset & 0x7F, offset >> 7
        varint.append(byte | (0x80 if offset else 0))
        if not offset:
            break
    return base64.b64encode(b"\x08" + bytes(varint) + b"\x10\x00").decode().rstrip("=")


def decode_page_token(token: str) -> int | None:
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except ValueError:
        return None
    if len(raw) < 4 or raw[0] != 0x08 or raw[-2:] != b"\x10\x00":
        return None
    offset, shift = 0, 0
    for byte in raw[1:-2]:
        offset |= (byte & 0x7F) << shift
        shift += 7
    return offset


def _parts(params: QueryParams) -> set[str]:
    parts = {part.strip() for part in params.get("part", "").split(",") if part.strip()}
    if not parts:
        raise ApiRefusal(
            400, "missingRequiredParameter", "No filter selected. Expected one of: part", "youtube.parameter"
        )
    return parts


def _page_size(params: QueryParams, maximum: int = MAX_PAGE, default: int = DEFAULT_PAGE) -> int:
    raw = params.get("maxResults")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise ApiRefusal(
            400,
            "invalidValue",
            f"Invalid value '{raw}'. Values must be within the range: [0, {maximum}]",
            "youtube.parameter",
        )
    return int(raw)


def _offset(params: QueryParams) -> int:
    token = params.get("pageToken")
    if not token:
        return 0
    offset = decode_page_token(token)
    if offset is None:
        raise ApiRefusal(400, "invalidPageToken", "The request specifies an invalid page token.", "youtube.parameter")
    return offset


def _instant(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiRefusal(400, "invalidValue", f"Invalid value '{raw}' for {name}.", "youtube.parameter") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _required(params: QueryParams, name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise ApiRefusal(
            400, "missingRequiredParameter", f"No filter selected. Expected one of: {name}", "youtube.parameter"
        )
    return value


def listing(
    kind: str,
    items: list[dict[str, Any]],
    *,
    total: int | None = None,
    per_page: int | None = None,
    next_offset: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": f"youtube#{kind}ListResponse", "etag": etag(kind, *(i["etag"] for i in items))}
    if next_offset is not None:
        body["nextPageToken"] = encode_page_token(next_offset)
    body |= extra
    body["pageInfo"] = {
        "totalResults": len(items) if total is None else total,
        "resultsPerPage": len(items) if per_page is None else per_page,
    }
    body["items"] = items
    return body


def _window(
    entries: Sequence[Any], params: QueryParams, maximum: int = MAX_PAGE, default: int = DEFAULT_PAGE
) -> tuple[Sequence[Any], int | None, int]:
    """One page of ``entries`` as the request asks: the page, where the next one starts (None: last), the page size."""
    size, start = _page_size(params, maximum, default), _offset(params)
    end = start + size
    return entries[start:end], (end if size and end < len(entries) else None), size


# Resources


def channel_pictures(channel: Channel) -> dict[str, Any]:
    return {
        name: {"url": channel.thumbnail(size), "width": size, "height": size}
        for name, size in (("default", 88), ("medium", 240), ("high", 800))
    }


def video_pictures(video: Video, *, every_size: bool = True) -> dict[str, Any]:
    sizes = [("default", "default", 120, 90), ("medium", "mqdefault", 320, 180), ("high", "hqdefault", 480, 360)]
    if every_size:
        sizes.append(("standard", "sddefault", 640, 480))
        if video.definition == "hd":
            sizes.append(("maxres", "maxresdefault", 1280, 720))
    return {
        name: {"url": video.thumbnail(file), "width": width, "height": height} for name, file, width, height in sizes
    }


def channel_published(channel: Channel) -> str:
    # Channel timestamps carry microseconds on the real API; video ones do not.
    return rfc3339(channel.published_at)[:-1] + f".{channel.number * 7919 % 10**6:06d}Z"


def channel_resource(channel: Channel, parts: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "youtube#channel",
        "etag": etag("channel", channel.channel_id, sorted(parts)),
        "id": channel.channel_id,
    }
    if "snippet" in parts:
        snippet: dict[str, Any] = {"title": channel.title, "description": channel.description}
        if channel.custom_url:
            snippet["customUrl"] = channel.custom_url
        snippet |= {"publishedAt": channel_published(channel), "thumbnails": channel_pictures(channel)}
        if channel.default_language:
            snippet["defaultLanguage"] = channel.default_language
        snippet["localized"] = {"title": channel.title, "description": channel.description}
        if channel.country:
            snippet["country"] = channel.country
        item["snippet"] = snippet
    if "contentDetails" in parts:
        item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": channel.uploads_playlist_id}}
    if "statistics" in parts:
        statistics: dict[str, Any] = {"viewCount": str(channel.view_count)}
        # A hidden subscriber count is not sent at all.
        if not channel.hidden_subscriber_count:
            statistics["subscriberCount"] = str(channel.subscriber_count)
        statistics |= {"hiddenSubscriberCount": channel.hidden_subscriber_count, "videoCount": str(channel.video_count)}
        item["statistics"] = statistics
    return item


def video_resource(video: Video, parts: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "youtube#video",
        "etag": etag("video", video.video_id, sorted(parts)),
        "id": video.video_id,
    }
    if "snippet" in parts:
        snippet: dict[str, Any] = {
            "publishedAt": rfc3339(video.published_at),
            "channelId": video.channel.channel_id,
            "title": video.title,
            "description": video.description,
            "thumbnails": video_pictures(video),
            "channelTitle": video.channel.title,
        }
        if video.tags:
            snippet["tags"] = list(video.tags)
        snippet |= {
            "categoryId": video.category_id,
            "liveBroadcastContent": "live" if video.is_live else "none",
            "localized": {"title": video.title, "description": video.description},
        }
        if video.default_audio_language:
            snippet["defaultAudioLanguage"] = video.default_audio_language
        item["snippet"] = snippet
    if "contentDetails" in parts:
        item["contentDetails"] = {
            "duration": video.duration,
            "dimension": "2d",
            "definition": video.definition,
            "caption": "false",
            "licensedContent": video.licensed,
            "contentRating": {"ytRating": "ytAgeRestricted"} if video.age_restricted else {},
            "projection": "rectangular",
        }
    if "statistics" in parts:
        statistics = {"viewCount": str(video.view_count)}
        if video.like_count is not None:
            statistics["likeCount"] = str(video.like_count)
        statistics["favoriteCount"] = "0"
        if video.comment_count is not None:
            statistics["commentCount"] = str(video.comment_count)
        item["statistics"] = statistics
    return item


def search_result(entry: Video | Channel, parts: set[str]) -> dict[str, Any]:
    if isinstance(entry, Channel):
        item: dict[str, Any] = {
            "kind": "youtube#searchResult",
            "etag": etag("search", entry.channel_id),
            "id": {"kind": "youtube#channel", "channelId": entry.channel_id},
        }
        if "snippet" in parts:
            item["snippet"] = {
                "publishedAt": channel_published(entry),
                "channelId": entry.channel_id,
                "title": entry.title,
                "description": entry.description,
                "thumbnails": channel_pictures(entry),
                "channelTitle": entry.title,
                "liveBroadcastContent": "none",
                "publishTime": channel_published(entry),
            }
        return item
    item = {
        "kind": "youtube#searchResult",
        "etag": etag("search", entry.video_id),
        "id": {"kind": "youtube#video", "videoId": entry.video_id},
    }
    if "snippet" in parts:
        published = rfc3339(entry.published_at)
        item["snippet"] = {
            "publishedAt": published,
            "channelId": entry.channel.channel_id,
            "title": _html(entry.title),
            "description": entry.description[:SEARCH_DESCRIPTION_CHARS],
            "thumbnails": video_pictures(entry, every_size=False),
            "channelTitle": entry.channel.title,
            "liveBroadcastContent": "live" if entry.is_live else "none",
            "publishTime": published,
        }
    return item


def _html(text: str) -> str:
    """Text as the API's HTML formats write it (search titles, comments with textFormat=html)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def comment_resource(comment: Comment, html: bool) -> dict[str, Any]:
    """A ``youtube#comment``. Its snippet names no video (the thread's does); ``authorChannelId`` is there only
    when the author has a channel ("if any"): otherwise the name and channel URL are empty."""
    author = comment.author
    name = (author.custom_url or author.title) if author else ""
    snippet: dict[str, Any] = {
        "channelId": comment.video.channel.channel_id,
        "textDisplay": _html(comment.text) if html else comment.text,
        "textOriginal": comment.text,
        "authorDisplayName": name,
        "authorProfileImageUrl": author.thumbnail(88) if author else DEFAULT_AVATAR,
        "authorChannelUrl": f"http://www.youtube.com/{name}" if author else "",
    }
    if author:
        snippet["authorChannelId"] = {"value": author.channel_id}
    if comment.parent_id:
        snippet["parentId"] = comment.parent_id
    published = rfc3339(comment.published_at)
    snippet |= {
        "canRate": True,
        "viewerRating": "none",
        "likeCount": comment.like_count,
        "publishedAt": published,
        "updatedAt": published,
    }
    return {
        "kind": "youtube#comment",
        "etag": etag("comment", comment.comment_id),
        "id": comment.comment_id,
        "snippet": snippet,
    }


def activity_resource(activity: Activity, parts: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "youtube#activity",
        "etag": etag("activity", activity.activity_id),
        "id": activity.activity_id,
    }
    if "snippet" in parts:
        if activity.subscribed_to is not None:
            target = activity.subscribed_to
            title, description, pictures = target.title, target.description, channel_pictures(target)
        else:
            assert activity.video is not None  # uploads and playlist items carry their video
            title, description, pictures = (
                activity.video.title,
                activity.video.description,
                video_pictures(activity.video),
            )
        item["snippet"] = {
            "publishedAt": rfc3339(activity.published_at),
            "channelId": activity.channel.channel_id,
            "title": title,
            "description": description,
            "thumbnails": pictures,
            "channelTitle": activity.channel.title,
            "type": activity.kind,
        }
    if "contentDetails" in parts:
        if activity.kind == "subscription":
            assert activity.subscribed_to is not None
            details: dict[str, Any] = {
                "subscription": {
                    "resourceId": {"kind": "youtube#channel", "channelId": activity.subscribed_to.channel_id}
                }
            }
        elif activity.kind == "playlistItem":
            assert activity.video is not None
            details = {
                "playlistItem": {
                    "resourceId": {"kind": "youtube#video", "videoId": activity.video.video_id},
                    "playlistId": activity.playlist_id,
                    "playlistItemId": etag("playlist-item", activity.activity_id),
                }
            }
        else:
            assert activity.video is not None
            details = {"upload": {"videoId": activity.video.video_id}}
        item["contentDetails"] = details
    return item


def subscription_resource(subscription: Subscription, parts: set[str]) -> dict[str, Any]:
    target, subscriber = subscription.target, subscription.subscriber
    item: dict[str, Any] = {
        "kind": "youtube#subscription",
        "etag": etag("subscription", subscription.subscription_id),
        "id": subscription.subscription_id,
    }
    if "snippet" in parts:
        item["snippet"] = {
            "publishedAt": rfc3339(subscription.subscribed_at),
            "title": target.title,
            "description": target.description,
            "resourceId": {"kind": "youtube#channel", "channelId": target.channel_id},
            "channelId": subscriber.channel_id,
            "thumbnails": channel_pictures(target),
        }
    if "contentDetails" in parts:
        item["contentDetails"] = {"totalItemCount": target.video_count, "newItemCount": 0, "activityType": "all"}
    if "subscriberSnippet" in parts:
        item["subscriberSnippet"] = {
            "title": subscriber.title,
            "description": subscriber.description,
            "channelId": subscriber.channel_id,
            "thumbnails": channel_pictures(subscriber),
        }
    return item


class DataApiAnswers:
    """The Data API's list methods over the world: query parameters in, the answer body out (or ApiRefusal)."""

    def __init__(self, world: YouTubeWorld) -> None:
        self._world = world

    def channels(self, params: QueryParams) -> dict[str, Any]:
        parts = _parts(params)
        if params.get("forHandle", "").strip():
            # One handle names at most one channel.
            found = [channel for channel in [self._world.channel_for_handle(params["forHandle"])] if channel]
        else:
            ids = _required(params, "id").split(",")
            found = [channel for channel in map(self._world.channel, ids) if channel is not None]
        body = listing("channel", [channel_resource(channel, parts) for channel in found])
        if not found:
            # An answer that found nothing has no items at all.
            del body["items"]
        return body

    def videos(self, params: QueryParams) -> dict[str, Any]:
        parts = _parts(params)
        ids = _required(params, "id").split(",")
        found = [video for video in map(self._world.video, ids) if video is not None]
        return listing("video", [video_resource(video, parts) for video in found])

    def playlist_items(self, params: QueryParams) -> dict[str, Any]:
        parts = _parts(params)
        playlist_id = _required(params, "playlistId")
        channel = self._world.channel_for_playlist(playlist_id)
        if channel is None:
            raise ApiRefusal(
                404,
                "playlistNotFound",
                "The playlist identified with the request's <code>playlistId</code> parameter cannot be found.",
                "youtube.playlistItem",
            )
        start = _offset(params)
        size = _page_size(params)
        videos = self._world.uploads(channel.channel_id, start, size)
        following = start + size if size and start + size < channel.video_count else None
        items = [self._playlist_item(playlist_id, start + index, video, parts) for index, video in enumerate(videos)]
        return listing("playlistItem", items, total=channel.video_count, per_page=size, next_offset=following)

    @staticmethod
    def _playlist_item(playlist_id: str, position: int, video: Video, parts: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kind": "youtube#playlistItem",
            "etag": etag("playlist-item", video.video_id),
            "id": etag("playlist-item-id", playlist_id, video.video_id),
        }
        if "snippet" in parts:
            item["snippet"] = {
                "publishedAt": rfc3339(video.published_at),
                "channelId": video.channel.channel_id,
                "title": video.title,
                "description": video.description,
                "thumbnails": video_pictures(video),
                "channelTitle": video.channel.title,
                "playlistId": playlist_id,
                "position": position,
                "resourceId": {"kind": "youtube#video", "videoId": video.video_id},
                "videoOwnerChannelTitle": video.channel.title,
                "videoOwnerChannelId": video.channel.channel_id,
            }
        if "contentDetails" in parts:
            item["contentDetails"] = {"videoId": video.video_id, "videoPublishedAt": rfc3339(video.published_at)}
        if "status" in parts:
            item["status"] = {"privacyStatus": "public"}
        return item

    def search(self, params: QueryParams) -> dict[str, Any]:
        parts = _parts(params)
        after, before = _instant(params, "publishedAfter"), _instant(params, "publishedBefore")
        entries: list[Video | Channel]
        if channel_id := params.get("channelId"):
            channel = self._world.channel(channel_id)
            videos = (
                []
                if channel is None
                else [
                    video
                    for video in self._world.uploads(channel_id)
                    if (after is None or video.published_at >= after)
                    and (before is None or video.published_at <= before)
                ]
            )
            entries = list(videos)
            # Without type=video a channel search finds the channel itself too.
            if channel is not None and params.get("type") != "video" and after is None and before is None:
                entries.insert(0, channel)
        else:
            # regionCode and relevanceLanguage only bias the real ranking; the world's has no such bias.
            entries = list(self._world.search(params.get("q", ""), after, before))
        if params.get("order") == "date":
            entries.sort(key=lambda entry: -entry.published_at if isinstance(entry, Video) else float("-inf"))
        page, following, size = _window(entries, params)
        return listing(
            "search",
            [search_result(entry, parts) for entry in page],
            total=len(entries),
            per_page=size,
            next_offset=following,
            regionCode=params.get("regionCode", "IN").upper(),
        )

    def comment_threads(self, params: QueryParams) -> dict[str, Any]:
        parts = _parts(params)
        video = self._world.video(_required(params, "videoId"))
        if video is None:
            raise ApiRefusal(
                404,
                "videoNotFound",
                'The video identified by the <code><a href="/youtube/v3/docs/'
                'commentThreads/list#videoId">videoId</a></code> parameter could not be found.',
                "youtube.commentThread",
            )
        if video.comment_count is None:
            raise ApiRefusal(
                403,
                "commentsDisabled",
                'The video identified by the <code><a href="/youtube/v3/docs/'
                'commentThreads/list#videoId">videoId</a></code> parameter has disabled comments.',
                "youtube.commentThread",
            )
        html = params.get("textFormat", "html") == "html"
        page, following, size = _window(self._world.comments(video), params, MAX_COMMENT_PAGE, 20)
        items = []
        for comment in page:
            thread: dict[str, Any] = {
                "kind": "youtube#commentThread",
                "etag": etag("thread", comment.comment_id),
                "id": comment.comment_id,
            }
            if "snippet" in parts:
                thread["snippet"] = {
                    "channelId": video.channel.channel_id,
                    "videoId": video.video_id,
                    "topLevelComment": comment_resource(comment, html),
                    "canReply": True,
                    "totalReplyCount": comment.reply_count,
                    "isPublic": True,
                }
            if "replies" in parts and comment.reply_count:
                thread["replies"] = {
                    "comments": [comment_resource(reply, html) for reply in self._world.replies(comment)]
                }
            items.append(thread)
        return listing("commentThread", items, per_page=size, next_offset=following)

    def activities(self, params: QueryParams) -> dict[str, Any]:
        parts = _parts(params)
        channel = self._world.channel(_required(params, "channelId"))
        found = [] if channel is None else self._world.activities(channel)
        page, following, size = _window(found, params)
        return listing(
            "activity",
            [activity_resource(activity, parts) for activity in page],
            total=len(found),
            per_page=size,
            next_offset=following,
        )

    def subscriptions(self, params: QueryParams) -> dict[str, Any]:
        parts = _parts(params)
        channel = self._world.channel(_required(params, "channelId"))
        if channel is None:
            raise ApiRefusal(
                404,
                "subscriberNotFound",
                "The subscriber identified with the request cannot be found.",
                "youtube.subscription",
            )
        if channel.subscriptions_hidden:
            raise ApiRefusal(
                403,
                "subscriptionForbidden",
                "The requester is not allowed to access the requested subscriptions.",
                "youtube.subscription",
            )
        found = self._world.subscriptions(channel)
        page, following, size = _window(found, params)
        return listing(
            "subscription",
            [subscription_resource(item, parts) for item in page],
            total=len(found),
            per_page=size,
            next_offset=following,
        )


Answer = Callable[[QueryParams], dict[str, Any]]
Gate = Callable[[Request], JSONResponse | None]


def endpoint(answer: Answer, gate: Gate) -> Callable[[Request], Awaitable[JSONResponse]]:
    """A route answering ``answer`` once ``gate`` (the provider's credential check) lets the request through."""

    async def handle(request: Request) -> JSONResponse:
        refused = gate(request)
        if refused is not None:
            return refused
        try:
            return JSONResponse(answer(request.query_params))
        except ApiRefusal as refusal:
            return refusal.response()

    return handle


def key_gate(request: Request) -> JSONResponse | None:
    key = request.query_params.get("key")
    if not key:
        return MISSING_KEY.response()
    if key.startswith(INVALID_KEY_PREFIX):
        return INVALID_KEY.response()
    if key.startswith(QUOTA_KEY_PREFIX):
        return QUOTA_SPENT.response()
    return None


class YouTubeDataRoutes:
    def __init__(self, world: YouTubeWorld) -> None:
        self._answers = DataApiAnswers(world)

    def mounts(self) -> list[Mount]:
        return [Mount(f"/{label}", routes=self.routes()) for label in LABELS]

    def routes(self) -> list[Route]:
        answers = self._answers
        return [
            Route(f"{API}/{resource}", endpoint(answer, key_gate))
            for resource, answer in (
                ("channels", answers.channels),
                ("videos", answers.videos),
                ("playlistItems", answers.playlist_items),
                ("search", answers.search),
                ("commentThreads", answers.comment_threads),
                ("activities", answers.activities),
                ("subscriptions", answers.subscriptions),
            )
        ]
