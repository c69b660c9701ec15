"""The sandbox's YouTube: deterministic channels, videos, comments, activities, subscriptions and audiences.

Every YouTube provider module of the sandbox (Data API, youtube-v31, youtube-v311, youtube138, the
shorts probe) renders this one world in its own shape, so they all tell the same story.

Identity. A world channel has a number; its id is ``UC`` + 22 characters that pack the number
(shuffled) and a hash check, so ``channel(id)`` recognises its own ids and answers None for any
other string, well-formed or not (the real API leaves unknown ids out of ``items``). A video id
(11 characters) packs its channel's number and its position in the channel's uploads (0 = newest)
plus a check, so ``video(id)`` finds the video and its channel from the id alone. A channel's
uploads playlist is ``UU`` + the channel id after ``UC``, as on YouTube.

Time counts back from the UTC midnight at which the world was made (``reference``), like the
Instagram world: fixed for a server's lifetime.

API (all pure, no I/O):
    world = YouTubeWorld()
    world.channel(channel_id) -> Channel | None
    world.channel_for_playlist(playlist_id) -> Channel | None   (uploads playlists only)
    world.video(video_id) -> Video | None
    world.uploads(channel_id, start=0, count=None) -> list[Video]   newest first; [] for an unknown channel
    world.is_short(video_id) -> bool          a Short: up to 60 s, or up to SHORT_MAX_SECONDS if uploaded
                                              from 2024-10-15 in a square or tall frame; never live
    world.search(query, published_after, published_before) -> list[Video]   by view count, descending
    world.comments(video) -> list[Comment]    newest first; [] when comments are disabled; a few
                                              have no author channel (``author`` None)
    world.replies(comment) -> list[Comment]
    world.activities(channel) -> list[Activity]   newest first
    world.subscriptions(channel) -> list[Subscription]   (check ``channel.subscriptions_hidden`` first)
    world.audience(channel) -> Audience       the three YouTube Analytics reports' rows
    world.report_outage(channel) -> str | None   the Analytics report whose backend is down for it

Well-known ids (module constants): DEMO_CHANNEL_ID and its uploads SHORT_VIDEO_ID (45 s),
LONG_VIDEO_ID (over one hour), LIKES_HIDDEN_VIDEO_ID, LIVE_VIDEO_ID (duration P0D),
COMMENTS_DISABLED_VIDEO_ID, LONGER_SHORT_VIDEO_ID (a 2:30 Short), FOUR_MINUTE_VIDEO_ID and
WIDE_VIDEO_ID (2:30, but a wide video: not a Short); HIDDEN_SUBSCRIBERS_CHANNEL_ID;
SUBSCRIPTIONS_HIDDEN_CHANNEL_ID; CITY_REPORT_DOWN_CHANNEL_ID (its Analytics city report fails);
MISSING_CHANNEL_ID and MISSING_VIDEO_ID (well-formed, unknown to the world).
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from providers.sandbox.ids import ALPHABET, decode_base64_number, encode_base64_number

DAY = 86_400
# A Short could run 60 s until YouTube allowed three minutes for uploads from 2024-10-15 on.
CLASSIC_SHORT_MAX_SECONDS = 60
SHORT_MAX_SECONDS = 180
LONGER_SHORTS_FROM = int(datetime(2024, 10, 15, tzinfo=UTC).timestamp())
# The share of 61-180 s uploads since then made in a square or tall frame, so Shorts.
LONGER_SHORT_SHARE = 0.5
# A share of commenters whose comments carry no authorChannelId (a deleted or channel-less account).
NO_CHANNEL_COMMENTER_SHARE = 0.04

# Channel ids: 6 characters (36 bits) carry the shuffled channel number, 16 characters a check.
_CHANNEL_SPACE = 2**36
_CHANNEL_SHUFFLE = 0x9E3779B97 % _CHANNEL_SPACE | 1
_CHANNEL_UNSHUFFLE = pow(_CHANNEL_SHUFFLE, -1, _CHANNEL_SPACE)
MAX_CHANNEL_NUMBER = 2**32
# Video ids: 8 characters (48 bits) carry number × UPLOAD_SLOTS + position, shuffled; 3 characters a check.
UPLOAD_SLOTS = 2**12
_VIDEO_SPACE = 2**48
_VIDEO_SHUFFLE = 0x2545F4914F6D % _VIDEO_SPACE | 1
_VIDEO_UNSHUFFLE = pow(_VIDEO_SHUFFLE, -1, _VIDEO_SPACE)

# Channels that third parties (commenters, subscriptions, search results) are drawn from.
_CROWD_FIRST = 1_000
# Handles resolve (the Data API's forHandle, the channel page) for the channels below the crowd.
HANDLE_INDEXED = _CROWD_FIRST - 1
MAX_COMMENTS = 300
MAX_REPLIES_SHOWN = 5
MAX_SUBSCRIPTIONS = 240
MAX_ACTIVITIES = 120
# A search draws its results from the uploads of this many channels picked for the query; the real
# API stops paging at about 500 results.
SEARCH_CHANNELS = 12
MAX_SEARCH_RESULTS = 500

_WORDS_A = (
    "Desi",
    "Chai",
    "Masala",
    "Monsoon",
    "Urban",
    "Pixel",
    "Tadka",
    "Bollywood",
    "Tech",
    "Cricket",
    "Yatra",
    "Rasoi",
    "Gaming",
    "Filmy",
    "Study",
    "Fitness",
)
_WORDS_B = (
    "Beats",
    "Talks",
    "Kitchen",
    "Vlogs",
    "Guru",
    "Diaries",
    "Studio",
    "Official",
    "Tales",
    "Hub",
    "Central",
    "Nation",
    "Express",
    "Lab",
)
_DESCRIPTIONS = (
    "New videos every week. Subscribe and hit the bell!",
    "Recipes from my grandmother's kitchen.",
    "Honest reviews of the latest gadgets.",
    "Travel stories from every corner of India.",
    "Comedy sketches, reactions and more.",
    "Exam tips, notes and live doubt sessions.",
    "",
)
_TOPICS = (
    "street food tour",
    "budget phone review",
    "morning workout",
    "wedding vlog",
    "exam strategy",
    "road trip",
    "cricket highlights",
    "movie reaction",
    "easy dal recipe",
    "setup tour",
    "unboxing",
    "day in my life",
    "monsoon trek",
    "stand-up clip",
    "lofi mix",
)
_FORMATS = (
    "{topic} | {channel}",
    "I tried {topic} for 7 days",
    "{topic} #shorts",
    "The ultimate {topic}",
    "{topic} (full video)",
    "{topic} - part {n}",
)
_TAGS = ("india", "hindi", "vlog", "shorts", "review", "recipe", "comedy", "travel", "tech", "music", "trending")
_REMARKS = (
    "Loved this video!",
    "Who is watching in 2024?",
    "Please make a part 2",
    "Great explanation, thanks",
    "First comment 😄",
    "This deserves more views",
    "Watching from Pune",
    "Amazing editing bro",
    "Can you share the recipe link?",
    "Best channel on YouTube",
)
# (shortest, longest) seconds of an upload, and its share: shorts, ordinary videos, long streams and films.
_LENGTHS = (((8, CLASSIC_SHORT_MAX_SECONDS), 30), ((61, 1500), 55), ((1500, 11000), 15))
# (YouTube category id, share) for uploads.
_CATEGORIES = (("22", 25), ("24", 20), ("10", 12), ("20", 10), ("27", 10), ("26", 8), ("17", 6), ("28", 5), ("1", 4))
_LANGUAGES = (("hi", 40), ("en", 25), ("ta", 8), ("te", 7), ("bn", 5), (None, 15))
_COUNTRIES = (("IN", 75), ("US", 8), ("GB", 4), ("AE", 3), (None, 10))
# City rows of YouTube Analytics name cities by their Google Knowledge Graph id.
CITIES = (
    "/m/04vmp",
    "/m/09f07",
    "/m/09c17",
    "/m/0c8tk",
    "/m/09f8q",
    "/m/0cvw9",
    "/m/015y2q",
    "/m/01f1kd",
    "/m/0fs54",
    "/m/0d9jr",
    "/m/0dlv0",
    "/m/01cf3k",
)
AUDIENCE_COUNTRIES = ("IN", "US", "AE", "GB", "SA", "CA", "BD", "NP", "PK", "AU", "SG", "DE")
AGE_GROUPS = ("age13-17", "age18-24", "age25-34", "age35-44", "age45-54", "age55-64", "age65-")
GENDERS = ("female", "male", "user_specified")

# Channel numbers of the well-known channels.
_DEMO, _HIDDEN_SUBSCRIBERS, _SUBSCRIPTIONS_HIDDEN, _CITY_REPORT_DOWN = 1, 2, 3, 4
# Upload positions of the demo channel's well-known videos.
_SHORT, _LONG, _LIKES_HIDDEN, _LIVE, _COMMENTS_DISABLED = 0, 1, 2, 3, 4
_LONGER_SHORT, _FOUR_MINUTES, _WIDE = 5, 6, 7
# Demo uploads of a set length: (seconds, whether it is a Short).
_FIXED_UPLOADS = {
    _SHORT: (45, True),
    _LONG: (3723, False),
    _LONGER_SHORT: (150, True),
    _FOUR_MINUTES: (240, False),
    _WIDE: (150, False),
}
# The Analytics report whose backend is down for a well-known channel, so one report fails and the rest arrive.
_REPORT_OUTAGES = {_CITY_REPORT_DOWN: "city"}


@dataclass(frozen=True, slots=True)
class Channel:
    channel_id: str
    number: int
    title: str
    description: str
    custom_url: str | None  # "@handle", as the API writes it; None for a channel without one
    published_at: int
    country: str | None
    view_count: int
    subscriber_count: int  # already rounded to three significant figures, as the API shows it
    hidden_subscriber_count: bool
    video_count: int
    subscriptions_hidden: bool
    default_language: str | None

    @property
    def uploads_playlist_id(self) -> str:
        return "UU" + self.channel_id[2:]

    def thumbnail(self, size: int) -> str:
        token = _token("channel-picture", self.number, size=18)
        return f"https://yt3.ggpht.com/ytc/{token}=s{size}-c-k-c0x00ffffff-no-rj"


@dataclass(frozen=True, slots=True)
class Video:
    video_id: str
    channel: Channel
    position: int  # in the channel's uploads, 0 = newest
    title: str
    description: str
    published_at: int
    duration_seconds: int  # 0 for a live broadcast
    is_live: bool
    is_short: bool
    view_count: int
    like_count: int | None  # None: the owner hides likes
    comment_count: int | None  # None: comments are disabled
    tags: tuple[str, ...]
    category_id: str
    default_audio_language: str | None
    licensed: bool
    definition: str  # hd or sd
    age_restricted: bool

    @property
    def duration(self) -> str:
        return iso_duration(0 if self.is_live else self.duration_seconds)

    def thumbnail(self, name: str) -> str:
        return f"https://i.ytimg.com/vi/{self.video_id}/{name}.jpg"


@dataclass(frozen=True, slots=True)
class Comment:
    comment_id: str
    video: Video
    author: Channel | None  # None: the author has no channel, so the API names none
    text: str
    published_at: int
    like_count: int
    reply_count: int
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    subscriber: Channel
    target: Channel
    subscribed_at: int


@dataclass(frozen=True, slots=True)
class Activity:
    activity_id: str
    channel: Channel
    kind: str  # upload, subscription or playlistItem
    published_at: int
    video: Video | None  # upload and playlistItem
    subscribed_to: Channel | None  # subscription
    playlist_id: str | None  # playlistItem


@dataclass(frozen=True, slots=True)
class Audience:
    """The three YouTube Analytics report rows of a channel's lifetime audience."""

    cities: list[tuple[str, int]]  # (Knowledge Graph id, views), most viewed first
    countries: list[tuple[str, int]]  # (ISO code, views), most viewed first
    gender_age: list[tuple[str, str, float]]  # (gender, ageGroup, viewerPercentage)


def seeded(*parts: object) -> random.Random:
    """A generator seeded from a stable hash of ``parts`` (Python's hash() changes per process)."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _token(*parts: object, size: int) -> str:
    """``size`` characters of the id alphabet, a stable function of ``parts``."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=48).digest()
    return "".join(ALPHABET[byte % 64] for byte in digest[:size])


def channel_id_for(number: int) -> str:
    body = encode_base64_number(number * _CHANNEL_SHUFFLE % _CHANNEL_SPACE, 6)
    return "UC" + body + _token("channel-check", number, size=16)


def channel_number(channel_id: str) -> int | None:
    """The world number behind a channel id, or None for an id this world never issued."""
    if len(channel_id) != 24 or not channel_id.startswith("UC"):
        return None
    packed = decode_base64_number(channel_id[2:8])
    if packed is None:
        return None
    number = packed * _CHANNEL_UNSHUFFLE % _CHANNEL_SPACE
    if not 0 < number < MAX_CHANNEL_NUMBER or channel_id_for(number) != channel_id:
        return None
    return number


def video_id_for(number: int, position: int) -> str:
    packed = (number * UPLOAD_SLOTS + position) * _VIDEO_SHUFFLE % _VIDEO_SPACE
    return encode_base64_number(packed, 8) + _token("video-check", number, position, size=3)


def video_address(video_id: str) -> tuple[int, int] | None:
    """(channel number, upload position) behind a video id, or None for an id this world never issued."""
    if len(video_id) != 11:
        return None
    packed = decode_base64_number(video_id[:8])
    if packed is None:
        return None
    number, position = divmod(packed * _VIDEO_UNSHUFFLE % _VIDEO_SPACE, UPLOAD_SLOTS)
    if not 0 < number < MAX_CHANNEL_NUMBER or video_id_for(number, position) != video_id:
        return None
    return number, position


def iso_duration(seconds: int) -> str:
    """A duration as the Data API writes it: PT1H2M3S, PT4M, PT45S, P1DT2H; P0D for zero (a live broadcast)."""
    if seconds <= 0:
        return "P0D"
    days, rest = divmod(seconds, DAY)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if value)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def rfc3339(epoch: int) -> str:
    """The Data API's timestamp format: 2024-05-01T10:15:00Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _three_figures(value: int) -> int:
    if value < 1000:
        return value
    scale: int = 10 ** (len(str(value)) - 3)
    return value // scale * scale


_T = TypeVar("_T")


def _weighted(rng: random.Random, choices: tuple[tuple[_T, int], ...]) -> _T:
    return rng.choices([value for value, _ in choices], weights=[weight for _, weight in choices])[0]


DEMO_CHANNEL_ID = channel_id_for(_DEMO)
DEMO_UPLOADS_PLAYLIST_ID = "UU" + DEMO_CHANNEL_ID[2:]
HIDDEN_SUBSCRIBERS_CHANNEL_ID = channel_id_for(_HIDDEN_SUBSCRIBERS)
SUBSCRIPTIONS_HIDDEN_CHANNEL_ID = channel_id_for(_SUBSCRIPTIONS_HIDDEN)
CITY_REPORT_DOWN_CHANNEL_ID = channel_id_for(_CITY_REPORT_DOWN)
SHORT_VIDEO_ID = video_id_for(_DEMO, _SHORT)
LONG_VIDEO_ID = video_id_for(_DEMO, _LONG)
LIKES_HIDDEN_VIDEO_ID = video_id_for(_DEMO, _LIKES_HIDDEN)
LIVE_VIDEO_ID = video_id_for(_DEMO, _LIVE)
COMMENTS_DISABLED_VIDEO_ID = video_id_for(_DEMO, _COMMENTS_DISABLED)
LONGER_SHORT_VIDEO_ID = video_id_for(_DEMO, _LONGER_SHORT)
FOUR_MINUTE_VIDEO_ID = video_id_for(_DEMO, _FOUR_MINUTES)
WIDE_VIDEO_ID = video_id_for(_DEMO, _WIDE)
MISSING_CHANNEL_ID = "UC" + "x" * 22
MISSING_VIDEO_ID = "xxxxxxxxxxx"


class YouTubeWorld:
    def __init__(self, reference: datetime | None = None) -> None:
        now = reference or datetime.now(UTC)
        self.reference = int(now.timestamp()) // DAY * DAY
        # "@handle" -> channel number, built on the first handle lookup.
        self._handles: dict[str, int] | None = None

    # Channels

    def channel(self, channel_id: str) -> Channel | None:
        number = channel_number(channel_id.strip())
        return None if number is None else self._channel(number)

    def channel_for_handle(self, handle: str) -> Channel | None:
        """The channel whose handle (``customUrl``, ``@`` optional, any case) this is, among the first
        ``HANDLE_INDEXED`` channels (the ones tests and the demo name); the lowest number wins a shared one."""
        if self._handles is None:
            self._handles = {}
            for indexed in range(HANDLE_INDEXED, 0, -1):
                channel = self._channel(indexed)
                if channel.custom_url:
                    self._handles[channel.custom_url.lower()] = indexed
        wanted = handle.strip().lower()
        found = self._handles.get(wanted if wanted.startswith("@") else f"@{wanted}")
        return None if found is None else self._channel(found)

    def channel_for_playlist(self, playlist_id: str) -> Channel | None:
        """The channel whose uploads playlist this is; None for any other playlist id."""
        if not playlist_id.startswith("UU"):
            return None
        return self.channel("UC" + playlist_id[2:])

    def _channel(self, number: int) -> Channel:
        rng = seeded("yt-channel", number)
        title = f"{rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)}"
        if number > _SUBSCRIPTIONS_HIDDEN:
            title += f" {number % 1000}"
        handle = title.lower().replace(" ", "")
        subscribers = int(10 ** rng.uniform(2.0, 7.3))
        age_days = rng.randint(400, 4000)
        video_count = rng.randint(12, 260)
        if number == _DEMO:
            video_count = max(video_count, 80)
        return Channel(
            channel_id=channel_id_for(number),
            number=number,
            title=title,
            description=rng.choice(_DESCRIPTIONS),
            custom_url=None if rng.random() < 0.15 and number != _DEMO else f"@{handle}",
            published_at=self.reference - age_days * DAY - rng.randrange(DAY),
            country=_weighted(rng, _COUNTRIES) if number != _DEMO else "IN",
            view_count=int(subscribers * rng.uniform(40, 400)) + rng.randint(0, 999),
            subscriber_count=_three_figures(subscribers),
            hidden_subscriber_count=number == _HIDDEN_SUBSCRIBERS
            or (number > _SUBSCRIPTIONS_HIDDEN and rng.random() < 0.08),
            video_count=video_count,
            subscriptions_hidden=number == _SUBSCRIPTIONS_HIDDEN
            or (number > _SUBSCRIPTIONS_HIDDEN and rng.random() < 0.25),
            default_language=rng.choice(("en", "hi", None)),
        )

    def _crowd(self, *parts: object) -> Channel:
        """A third-party channel picked by ``parts``: the same parts always pick the same channel."""
        return self._channel(seeded("crowd", *parts).randrange(_CROWD_FIRST, MAX_CHANNEL_NUMBER))

    # Videos

    def video(self, video_id: str) -> Video | None:
        address = video_address(video_id.strip())
        if address is None:
            return None
        channel = self._channel(address[0])
        if address[1] >= channel.video_count:
            return None
        return self._video(channel, address[1], self._times(channel)[address[1]])

    def is_short(self, video_id: str) -> bool:
        video = self.video(video_id)
        return video is not None and video.is_short

    def uploads(self, channel_id: str, start: int = 0, count: int | None = None) -> list[Video]:
        channel = self.channel(channel_id)
        if channel is None:
            return []
        return self._uploads(channel, start, count)

    def _uploads(self, channel: Channel, start: int = 0, count: int | None = None) -> list[Video]:
        times = self._times(channel)
        end = channel.video_count if count is None else min(channel.video_count, start + count)
        return [self._video(channel, position, times[position]) for position in range(start, end)]

    def _times(self, channel: Channel) -> list[int]:
        """Publish times, newest first: the newest within three days of the reference, spread back to
        the channel's start."""
        rng = seeded("yt-times", channel.number)
        moment = self.reference - rng.randrange(3 * DAY)
        gap = max(3600, (moment - channel.published_at) // (channel.video_count + 1))
        times = []
        for _ in range(channel.video_count):
            times.append(moment)
            moment -= rng.randrange(gap // 2, gap * 3 // 2 + 1)
        return times

    def _video(self, channel: Channel, position: int, published_at: int) -> Video:
        video_id = video_id_for(channel.number, position)
        rng = seeded("yt-video", video_id)
        demo = channel.number == _DEMO
        is_live = (demo and position == _LIVE) or (not demo and rng.random() < 0.02)
        fixed = _FIXED_UPLOADS.get(position) if demo else None
        if fixed is not None:
            seconds = fixed[0]
        elif is_live:
            seconds = 0
        else:
            low, high = _weighted(rng, _LENGTHS)
            seconds = rng.randint(low, high)
        if demo and position in (_LIKES_HIDDEN, _COMMENTS_DISABLED):
            seconds = max(seconds, 61 + position)
        subscribers = max(channel.subscriber_count, 100)
        views = int(subscribers * rng.uniform(0.02, 1.5) * (3 if seconds <= CLASSIC_SHORT_MAX_SECONDS else 1))
        likes: int | None = int(views * rng.uniform(0.01, 0.06))
        if (demo and position == _LIKES_HIDDEN) or (not demo and rng.random() < 0.05):
            likes = None
        comments: int | None = int(views * rng.uniform(0.0005, 0.004))
        if (demo and position == _COMMENTS_DISABLED) or (not demo and rng.random() < 0.04):
            comments = None
        topic = rng.choice(_TOPICS)
        title = rng.choice(_FORMATS).format(topic=topic.title(), channel=channel.title, n=rng.randint(2, 5))
        tags = tuple(rng.sample(_TAGS, rng.choice((0, 2, 3, 5))))
        category_id = str(_weighted(rng, _CATEGORIES))
        language: str | None = _weighted(rng, _LANGUAGES)
        licensed = rng.random() < 0.7
        definition = "hd" if rng.random() < 0.85 else "sd"
        age_restricted = rng.random() < 0.02
        # Drawn last, so the longer Shorts leave every other value of the world as it was.
        tall = rng.random() < LONGER_SHORT_SHARE
        if fixed is not None:
            is_short = fixed[1]
        else:
            is_short = not is_live and (
                seconds <= CLASSIC_SHORT_MAX_SECONDS
                or (
                    seconds <= SHORT_MAX_SECONDS
                    and published_at >= LONGER_SHORTS_FROM
                    and tall
                    and not (demo and position in (_LIKES_HIDDEN, _COMMENTS_DISABLED))
                )
            )
        return Video(
            video_id=video_id,
            channel=channel,
            position=position,
            title=title,
            description=f"{title}\n\n{channel.description}".strip(),
            published_at=published_at,
            duration_seconds=seconds,
            is_live=is_live,
            is_short=is_short,
            view_count=views,
            like_count=likes,
            comment_count=comments,
            tags=tags,
            category_id=category_id,
            default_audio_language=language,
            licensed=licensed,
            definition=definition,
            age_restricted=age_restricted,
        )

    # Search

    def search(
        self, query: str, published_after: int | None = None, published_before: int | None = None
    ) -> list[Video]:
        """Videos for a query published in the window, most viewed first; the same query always finds
        the same channels."""
        key = " ".join(query.lower().split())
        if not key:
            return []
        found = []
        for pick in range(SEARCH_CHANNELS):
            for video in self._uploads(self._crowd("search", key, pick)):
                if published_after is not None and video.published_at < published_after:
                    continue
                if published_before is not None and video.published_at > published_before:
                    continue
                found.append(video)
        found.sort(key=lambda video: (-video.view_count, video.video_id))
        return found[:MAX_SEARCH_RESULTS]

    # Comments

    def comments(self, video: Video) -> list[Comment]:
        if video.comment_count is None:
            return []
        total = min(video.comment_count, MAX_COMMENTS)
        span = max(self.reference - video.published_at, 3600)
        comments = []
        for position in range(total):
            rng = seeded("yt-comment", video.video_id, position)
            # Position 0 is the newest: the listing is in time order, newest first.
            published_at = self.reference - int(span * (position + rng.random()) / (total + 1))
            comment_id = "Ug" + _token("comment-id", video.video_id, position, size=20) + "4AaABAg"
            replies = rng.choices((0, rng.randint(1, 3), rng.randint(4, 20)), weights=(75, 20, 5))[0]
            text, likes = rng.choice(_REMARKS), int(rng.paretovariate(1.5)) - 1
            # Drawn last, so the channel-less authors leave every other value of the world as it was.
            author = None if rng.random() < NO_CHANNEL_COMMENTER_SHARE else self._crowd("commenter", comment_id)
            comments.append(Comment(comment_id, video, author, text, published_at, likes, replies))
        return comments

    def replies(self, comment: Comment) -> list[Comment]:
        """The answers a comment thread shows with it (at most MAX_REPLIES_SHOWN), oldest first."""
        replies = []
        published_at = comment.published_at
        for position in range(min(comment.reply_count, MAX_REPLIES_SHOWN)):
            rng = seeded("yt-reply", comment.comment_id, position)
            published_at = min(published_at + rng.randrange(60, 6 * 3600), self.reference)
            reply_id = f"{comment.comment_id}.{_token('reply-id', comment.comment_id, position, size=22)}"
            # A reply mentions the comment's author by handle; a channel-less author has none.
            mention = f"@{comment.author.title.replace(' ', '')} " if comment.author else ""
            replies.append(
                Comment(
                    reply_id,
                    comment.video,
                    self._crowd("replier", reply_id),
                    f"{mention}{rng.choice(_REMARKS)}",
                    published_at,
                    int(rng.paretovariate(2.0)) - 1,
                    0,
                    comment.comment_id,
                )
            )
        return replies

    # Subscriptions and activities

    def subscriptions(self, channel: Channel) -> list[Subscription]:
        """Channels ``channel`` subscribes to, most recent first (some channels subscribe to none)."""
        rng = seeded("yt-subscription-count", channel.number)
        total = 0 if rng.random() < 0.1 else rng.randint(1, MAX_SUBSCRIPTIONS)
        moment = self.reference - rng.randrange(DAY)
        span = max(self.reference - channel.published_at, DAY)
        subscriptions = []
        for position in range(total):
            moment -= rng.randrange(1, max(2, span // (total + 1)))
            target = self._crowd("subscription", channel.number, position)
            subscription_id = _token("subscription-id", channel.number, target.number, size=43)
            subscriptions.append(Subscription(subscription_id, channel, target, moment))
        return subscriptions

    def activities(self, channel: Channel) -> list[Activity]:
        """Uploads, subscriptions and playlist additions, newest first."""
        found = [
            Activity(
                _activity_id(channel, "upload", video.video_id),
                channel,
                "upload",
                video.published_at,
                video,
                None,
                None,
            )
            for video in self._uploads(channel, 0, MAX_ACTIVITIES)
        ]
        found += [
            Activity(
                _activity_id(channel, "subscription", item.subscription_id),
                channel,
                "subscription",
                item.subscribed_at,
                None,
                item.target,
                None,
            )
            for item in self.subscriptions(channel)[:MAX_ACTIVITIES]
        ]
        rng = seeded("yt-playlist-items", channel.number)
        playlist_id = "PL" + _token("playlist", channel.number, size=32)
        for position in range(rng.randint(0, 30)):
            other = self._crowd("playlist-item", channel.number, position)
            video = self._uploads(other, rng.randrange(min(other.video_count, 10)), 1)[0]
            added = max(video.published_at, self.reference - rng.randrange(1, 200 * DAY))
            found.append(
                Activity(
                    _activity_id(channel, "playlistItem", video.video_id),
                    channel,
                    "playlistItem",
                    added,
                    video,
                    None,
                    playlist_id,
                )
            )
        found.sort(key=lambda activity: (-activity.published_at, activity.activity_id))
        return found[:MAX_ACTIVITIES]

    # Analytics

    def report_outage(self, channel: Channel) -> str | None:
        """The Analytics report (city, country, gender_age) whose backend fails for ``channel``, if any."""
        return _REPORT_OUTAGES.get(channel.number)

    def audience(self, channel: Channel) -> Audience:
        rng = seeded("yt-audience", channel.number)
        views = channel.view_count
        cities = sorted(
            ((city, int(views * rng.uniform(0.001, 0.08))) for city in CITIES), key=lambda row: (-row[1], row[0])
        )
        countries = sorted(
            ((code, int(views * rng.uniform(0.002, 0.1) * (8 if code == "IN" else 1))) for code in AUDIENCE_COUNTRIES),
            key=lambda row: (-row[1], row[0]),
        )
        weights = [
            (gender, group, rng.uniform(0.2, 3.0) if gender != "user_specified" else rng.uniform(0, 0.05))
            for gender in GENDERS
            for group in AGE_GROUPS
        ]
        total = sum(weight for _, _, weight in weights)
        gender_age = sorted(
            ((gender, group, round(weight * 100 / total, 1)) for gender, group, weight in weights),
            key=lambda row: (-row[2], row[0], row[1]),
        )
        return Audience(cities=cities, countries=countries[:10], gender_age=gender_age)


def _activity_id(channel: Channel, kind: str, key: str) -> str:
    digits = str(
        int.from_bytes(hashlib.blake2b(f"{channel.number}:{kind}:{key}".encode(), digest_size=12).digest(), "big")
    )
    return base64.b64encode(digits.encode()).decode()
