"""youtube138 (``rapidapi-yt``) in the sandbox: the YouTube world in youtube138's own shapes.

``/v1/channel/details/`` answers a channel as its about page shows it (``stats``, ``banner``
ladders, ``badges``, ``links``, ``joinedDate``); ``/v2/video/details/`` a video with ``author``,
``stats``, ``date``, named ``thumbnails``, ``category``, ``language``, ``content`` and
``endScreen``; ``/v1/channel/videos/`` a channel's uploads, ``PAGE_SIZE`` a page, under
``filter`` videos_latest (the default), shorts_latest or live_now, paged by ``cursorNext``.
An id the world does not know is a 404 ``{"error": ...}``. ``providers/fixtures/youtube138/``
holds recorded-shape answers.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.youtube import DAY, Channel, Video, YouTubeWorld, seeded

PREFIX = "/rapidapi-yt"
PAGE_SIZE = 30
VERIFIED_FROM_SUBSCRIBERS = 100_000
# Share of channels that never set a banner.
NO_BANNER_SHARE = 0.2

DESKTOP_BANNER = ((1060, 175), (1138, 188), (1707, 283), (2120, 351), (2276, 377), (2560, 424))
MOBILE_BANNER = ((320, 88), (640, 175), (960, 263), (1280, 351), (1440, 395))
TV_BANNER = ((320, 180), (854, 480), (1280, 720), (1920, 1080), (2120, 1192))
AVATAR_SIZES = (48, 88, 176)
# Named sizes of a video's thumbnails, as the Data API names them.
THUMBNAILS = (
    ("default", "default", 120, 90),
    ("medium", "mqdefault", 320, 180),
    ("high", "hqdefault", 480, 360),
    ("standard", "sddefault", 640, 480),
    ("maxres", "maxresdefault", 1280, 720),
)
LISTING_THUMBNAILS = ((168, 94), (196, 110), (246, 138), (336, 188))
COUNTRY_NAMES = {"IN": "India", "US": "United States", "GB": "United Kingdom", "AE": "United Arab Emirates"}
CATEGORY_NAMES = {
    "1": "Film & Animation",
    "10": "Music",
    "17": "Sports",
    "20": "Gaming",
    "22": "People & Blogs",
    "24": "Entertainment",
    "26": "Howto & Style",
    "27": "Education",
    "28": "Science & Technology",
}
LINK_SITES = (
    ("Instagram", "https://www.instagram.com/{handle}/"),
    ("Facebook", "https://www.facebook.com/{handle}"),
    ("X", "https://x.com/{handle}"),
    ("Website", "https://{handle}.example"),
)
FILTERS = ("videos_latest", "shorts_latest", "live_now")
# What each listing filter keeps, and the key its entries carry their video under.
LISTING_KEYS = {"videos_latest": "video", "shorts_latest": "short", "live_now": "live"}

CHANNEL_NOT_FOUND = {"error": "This channel does not exist."}
VIDEO_NOT_FOUND = {"error": "Video unavailable"}


def has_banner(channel: Channel) -> bool:
    return seeded("yt138-banner", channel.number).random() >= NO_BANNER_SHARE


def is_verified(channel: Channel) -> bool:
    return channel.subscriber_count >= VERIFIED_FROM_SUBSCRIBERS


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def _instant(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _compact(count: int) -> str:
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return str(count)


def _handle(channel: Channel) -> str:
    return (channel.custom_url or f"@{channel.channel_id}").removeprefix("@")


def _avatar(channel: Channel) -> list[dict[str, Any]]:
    return [{"height": size, "url": channel.thumbnail(size), "width": size} for size in AVATAR_SIZES]


def _badges(channel: Channel) -> list[dict[str, str]]:
    return [{"text": "Verified", "type": "VERIFIED_CHANNEL"}] if is_verified(channel) else []


def _banner(channel: Channel) -> dict[str, Any] | None:
    if not has_banner(channel):
        return None
    token = f"banner-{channel.channel_id[2:]}"

    def ladder(sizes: tuple[tuple[int, int], ...], crop: str) -> list[dict[str, Any]]:
        return [
            {
                "height": height,
                "url": f"https://yt3.ggpht.com/{token}=w{width}-{crop}-k-c0xffffffff-no-nd-rj",
                "width": width,
            }
            for width, height in sizes
        ]

    return {
        "desktop": ladder(DESKTOP_BANNER, "fcrop64=1,00005a57ffffa5a8"),
        "mobile": ladder(MOBILE_BANNER, "fcrop64=1,32b75a57cd48a5a8"),
        "tv": ladder(TV_BANNER, "fcrop64=0,0,100,100"),
    }


def _links(channel: Channel) -> list[dict[str, str]]:
    rng = seeded("yt138-links", channel.number)
    sites = rng.sample(LINK_SITES, rng.randint(0, len(LINK_SITES)))
    handle = _handle(channel).lower()
    return [
        {
            "icon": f"https://encrypted-tbn1.gstatic.com/favicon-tbn?q={title.lower()}",
            "title": title,
            "targetUrl": url.format(handle=handle),
        }
        for title, url in sites
    ]


def _subscribers(channel: Channel) -> dict[str, Any]:
    if channel.hidden_subscriber_count:
        return {"subscribers": None, "subscribersText": None}
    return {
        "subscribers": channel.subscriber_count,
        "subscribersText": f"{_compact(channel.subscriber_count)} subscribers",
    }


def channel_details(channel: Channel) -> dict[str, Any]:
    joined = datetime.fromtimestamp(channel.published_at, UTC)
    return {
        "artistBio": None,
        "avatar": _avatar(channel),
        "badges": _badges(channel),
        "banner": _banner(channel),
        "channelId": channel.channel_id,
        "country": COUNTRY_NAMES.get(channel.country or ""),
        "description": channel.description,
        "hasBusinessEmail": seeded("yt138-email", channel.number).random() < 0.4,
        "isFamilySafe": True,
        "joinedDate": _day(channel.published_at),
        "joinedDateText": f"Joined {joined.day} {joined:%b %Y}",
        "keywords": [],
        "links": _links(channel),
        "stats": {**_subscribers(channel), "videos": channel.video_count, "views": channel.view_count},
        "title": channel.title,
        "username": channel.custom_url,
    }


def _author(channel: Channel) -> dict[str, Any]:
    return {
        "avatar": _avatar(channel),
        "badges": _badges(channel),
        "canonicalBaseUrl": f"/{channel.custom_url}" if channel.custom_url else f"/channel/{channel.channel_id}",
        "channelId": channel.channel_id,
        "stats": _subscribers(channel),
        "title": channel.title,
    }


def _end_screen(world: YouTubeWorld, video: Video) -> dict[str, Any]:
    # Shorts and lives have no end screen; a video's shows the next upload, a playlist and the channel.
    if video.is_short or video.is_live:
        return {"items": []}
    channel = video.channel
    items: list[dict[str, Any]] = []
    following = world.uploads(channel.channel_id, video.position + 1, 1) or world.uploads(channel.channel_id, 0, 1)
    items.append({"type": "video", "video": _listing_video(following[0])})
    items.append(
        {
            "type": "playlist",
            "playlist": {
                "playlistId": channel.uploads_playlist_id,
                "thumbnails": [{"height": 188, "url": following[0].thumbnail("hqdefault"), "width": 336}],
                "title": f"Uploads from {channel.title}",
                "videoCountText": f"{channel.video_count} videos",
            },
        }
    )
    items.append(
        {
            "type": "channel",
            "channel": {"avatar": _avatar(channel), "channelId": channel.channel_id, "title": channel.title},
        }
    )
    return {"items": items}


def video_details(world: YouTubeWorld, video: Video) -> dict[str, Any]:
    published = _instant(video.published_at)
    return {
        "videoId": video.video_id,
        "title": video.title,
        "description": video.description,
        "lengthSeconds": video.duration_seconds,
        "isLiveContent": video.is_live,
        "isLiveNow": video.is_live,
        "author": _author(video.channel),
        "stats": {"comments": video.comment_count, "likes": video.like_count, "views": video.view_count},
        "date": {"published": published, "uploaded": published},
        "thumbnails": {
            name: {"height": height, "url": video.thumbnail(file), "width": width}
            for name, file, width, height in THUMBNAILS
        },
        "keywords": list(video.tags),
        "category": {"id": video.category_id, "name": CATEGORY_NAMES.get(video.category_id)},
        "language": {"defaultAudioLanguage": video.default_audio_language},
        "content": {
            "definition": video.definition,
            "licensed": video.licensed,
            "rating": {"ytRating": "ytAgeRestricted"} if video.age_restricted else {},
        },
        "endScreen": _end_screen(world, video),
    }


def _ago(world: YouTubeWorld, epoch: int) -> str:
    seconds = max(0, world.reference - epoch)
    for size, unit in ((365 * DAY, "year"), (30 * DAY, "month"), (7 * DAY, "week"), (DAY, "day"), (3600, "hour")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def _listing_video(video: Video, ago: str | None = None) -> dict[str, Any]:
    return {
        "badges": ["LIVE"] if video.is_live else [],
        "isLiveNow": video.is_live,
        "lengthSeconds": None if video.is_live else video.duration_seconds,
        "publishedTimeText": ago,
        "stats": {"views": video.view_count},
        "thumbnails": [
            {"height": height, "url": video.thumbnail("hqdefault"), "width": width}
            for width, height in LISTING_THUMBNAILS
        ],
        "title": video.title,
        "videoId": video.video_id,
    }


def _listed(video: Video, listing: str) -> bool:
    if listing == "live_now":
        return video.is_live
    if listing == "shorts_latest":
        return video.is_short
    return not video.is_short and not video.is_live


def encode_cursor(listing: str, channel_id: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{listing}:{channel_id}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, listing: str, channel_id: str) -> int | None:
    """The position a cursor resumes at, or None if it is not one issued for this listing of this channel."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != listing or parts[1] != channel_id or not parts[2].isdigit():
        return None
    return int(parts[2])


def _invalid(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


class YouTube138Routes:
    def __init__(self, world: YouTubeWorld) -> None:
        self._world = world

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/v1/channel/details/", self.channel_details),
                Route("/v2/video/details/", self.video_details),
                Route("/v1/channel/videos/", self.channel_videos),
            ],
        )

    async def channel_details(self, request: Request) -> JSONResponse:
        channel_id = request.query_params.get("id")
        if not channel_id:
            return _invalid("id is required")
        channel = self._world.channel(channel_id)
        if channel is None:
            return JSONResponse(CHANNEL_NOT_FOUND, status_code=404)
        return JSONResponse(channel_details(channel))

    async def video_details(self, request: Request) -> JSONResponse:
        video_id = request.query_params.get("id")
        if not video_id:
            return _invalid("id is required")
        video = self._world.video(video_id)
        if video is None:
            return JSONResponse(VIDEO_NOT_FOUND, status_code=404)
        return JSONResponse(video_details(self._world, video))

    async def channel_videos(self, request: Request) -> JSONResponse:
        channel_id = request.query_params.get("id")
        if not channel_id:
            return _invalid("id is required")
        listing = request.query_params.get("filter") or FILTERS[0]
        if listing not in FILTERS:
            return _invalid(f"filter must be one of {', '.join(FILTERS)}")
        channel = self._world.channel(channel_id)
        if channel is None:
            return JSONResponse(CHANNEL_NOT_FOUND, status_code=404)
        start = 0
        if cursor := request.query_params.get("cursorNext"):
            resumed = decode_cursor(cursor, listing, channel.channel_id)
            if resumed is None:
                return _invalid("invalid cursorNext")
            start = resumed
        listed = [video for video in self._world.uploads(channel.channel_id) if _listed(video, listing)]
        page = listed[start : start + PAGE_SIZE]
        following = start + len(page)
        key = LISTING_KEYS[listing]
        return JSONResponse(
            {
                "contents": [
                    {"type": key, key: _listing_video(video, _ago(self._world, video.published_at))} for video in page
                ],
                "cursorNext": encode_cursor(listing, channel.channel_id, following)
                if following < len(listed)
                else None,
                "filter": listing,
            }
        )
