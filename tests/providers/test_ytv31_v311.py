"""youtube-v31 and youtube-v311 (RapidAPI proxies of the Data API): the shared parsers on their fixtures with
their labels, the clients against the sandbox over loopback HTTP, RapidAPI's refusals, and the crawler falling
through to them when a Data API key's quota is spent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from providers.crawler import Crawler
from providers.credential_cache import Availability
from providers.errors import AuthExpired, NotSupported, PostMissing, ProfileMissing, QuotaExceeded
from providers.http import Credential, ProviderHttp
from providers.operations import FETCH_YT_CHANNEL_POSTS, FETCH_YT_SEARCH
from providers.sandbox.youtube import (
    COMMENTS_DISABLED_VIDEO_ID,
    DEMO_CHANNEL_ID,
    HIDDEN_SUBSCRIBERS_CHANNEL_ID,
    LONG_VIDEO_ID,
    MISSING_VIDEO_ID,
    SHORT_VIDEO_ID,
    YouTubeWorld,
)
from providers.youtube.youtube_data import (
    CommentsDisabled,
    YouTubeDataClient,
    error_for,
    parse_channels,
    parse_comment_threads_page,
    parse_error,
    parse_playlist_items_page,
    parse_search_ids_page,
    parse_search_snippet_page,
    parse_videos,
)
from providers.youtube.youtube_v311 import SOURCE as V311
from providers.youtube.youtube_v311 import YouTubeV311Client
from providers.youtube.ytv31 import SOURCE as V31
from providers.youtube.ytv31 import YtV31Client
from tests.providers.test_youtube_data import CannedHttp
from tests.support import PROVIDER_FIXTURES, every_page, load_fixture
from topics.models import Platform

V31_KEY = Credential(
    id="v31-1", source=V31, secrets={"x-rapidapi-key": "v31-k1", "x-rapidapi-host": "youtube-v31.p.rapidapi.com"}
)
V311_KEY = Credential(
    id="v311-1", source=V311, secrets={"x-rapidapi-key": "v311-k1", "x-rapidapi-host": "youtube-v311.p.rapidapi.com"}
)
DATA_KEY = Credential(id="yt-1", source="ytapitoken", secrets={"key": "sandbox-yt-key"})


# Parsers on the proxies' answers


def test_v31_answers_parse_as_data_api_events_labelled_ytapi() -> None:
    [channel] = parse_channels(load_fixture("ytv31/channels.json"))
    assert (channel.source, channel.profile_id) == ("ytapi", HIDDEN_SUBSCRIBERS_CHANNEL_ID)
    assert channel.metrics["subscriber_count"] is None and channel.metrics["hidden_subscriber_count"] == 1
    long, short = parse_videos(load_fixture("ytv31/videos.json"))
    assert (long.shortcode, long.source, long.dimensions["duration"], long.dimensions["post_type"]) == (
        LONG_VIDEO_ID,
        "ytapi",
        "PT1H2M3S",
        "video",
    )
    assert short.shortcode == SHORT_VIDEO_ID and "post_type" not in short.dimensions
    page = parse_playlist_items_page(load_fixture("ytv31/playlist_items.json"))
    assert len(page.items) == 50 and page.items[0] == SHORT_VIDEO_ID
    ids = parse_search_ids_page(load_fixture("ytv31/search_channel_ids.json"))
    assert ids.items and ids.next_cursor is None
    assert ids.items == [item["id"]["videoId"] for item in load_fixture("ytv31/search_channel_ids.json")["items"]]


def test_v311_answers_are_labelled_rapidapi_yt_search() -> None:
    payload = load_fixture("youtube_v311/search.json")
    page = parse_search_snippet_page(payload, source=V311)
    assert len(page.items) == 3 and page.next_cursor == "CAMQAA"
    first = page.items[0]
    assert (first.platform, first.source, first.metrics) == (Platform.YOUTUBE, V311, {})
    # Search titles come HTML-escaped and are kept as given.
    assert first.dimensions["title"] == "Kohli&#39;s 100 | Cricket Highlights &amp; Analysis"
    comments = parse_comment_threads_page(load_fixture("youtube_v311/comment_threads.json"), source=V311)
    assert len(comments.items) == 3 and {c.source for c in comments.items} == {V311}
    assert {c.activity_type for c in comments.items} == {"COMMENT"}


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [
        (403, "ytv31/error_not_subscribed.json", AuthExpired),
        (401, "youtube_v311/error_no_key.json", AuthExpired),
    ],
)
def test_rapidapi_refusals(status: int, fixture: str, expected: type) -> None:
    error = error_for(
        parse_error(status, (PROVIDER_FIXTURES / fixture).read_text()),
        source=V31,
        what="GET /channels",
        missing=ProfileMissing,
    )
    assert type(error) is expected


# Over loopback HTTP


async def test_v31_answers_as_the_data_api_does(http: ProviderHttp, world: YouTubeWorld) -> None:
    v31, data = YtV31Client(http), YouTubeDataClient(http)
    ids = [DEMO_CHANNEL_ID, HIDDEN_SUBSCRIBERS_CHANNEL_ID]
    assert await v31.channels(ids, credential=V31_KEY) == await data.channels(ids, credential=DATA_KEY)
    videos = [video.video_id for video in world.uploads(DEMO_CHANNEL_ID, 0, 40)]
    posts = await v31.videos(videos, credential=V31_KEY)
    assert posts == await data.videos(videos, credential=DATA_KEY) and len(posts) == 40
    assert {post.source for post in posts} == {"ytapi"}
    assert await v31.videos([MISSING_VIDEO_ID], credential=V31_KEY) == []


async def test_v31_playlist_is_one_page(http: ProviderHttp, world: YouTubeWorld) -> None:
    v31 = YtV31Client(http)
    demo = world.channel(DEMO_CHANNEL_ID)
    assert demo is not None and demo.video_count > 50
    page = await v31.playlist_items(demo.uploads_playlist_id, credential=V31_KEY)
    assert page.items == [video.video_id for video in world.uploads(DEMO_CHANNEL_ID, 0, 50)]
    assert page.next_cursor is None
    with pytest.raises(NotSupported, match="no further pages"):
        await v31.playlist_items(demo.uploads_playlist_id, "CDIQAA", credential=V31_KEY)
    with pytest.raises(ProfileMissing, match="404 playlistNotFound"):
        await v31.playlist_items("PLunknown", credential=V31_KEY)


async def test_v31_channel_video_ids(http: ProviderHttp, world: YouTubeWorld) -> None:
    v31, data = YtV31Client(http), YouTubeDataClient(http)
    every, pages = await every_page(
        lambda cursor: v31.channel_video_ids(DEMO_CHANNEL_ID, None, None, cursor, credential=V31_KEY)
    )
    assert every == [video.video_id for video in world.uploads(DEMO_CHANNEL_ID)] and pages > 1
    start, end = (datetime.now(UTC) - timedelta(days=120)).date().isoformat(), datetime.now(UTC).date().isoformat()
    window, _ = await every_page(
        lambda cursor: v31.channel_video_ids(DEMO_CHANNEL_ID, start, end, cursor, credential=V31_KEY)
    )
    same, _ = await every_page(
        lambda cursor: data.channel_video_ids(DEMO_CHANNEL_ID, start, end, cursor, credential=DATA_KEY)
    )
    assert window == same and 0 < len(window) < len(every)


async def test_v311_search_and_comments(http: ProviderHttp, world: YouTubeWorld) -> None:
    v311, data = YouTubeV311Client(http), YouTubeDataClient(http)
    after, before = datetime.now(UTC) - timedelta(days=60), datetime.now(UTC)
    found, pages = await every_page(
        lambda cursor: v311.keyword_search("wedding vlog", after, before, cursor, credential=V311_KEY)
    )
    expected, _ = await every_page(
        lambda cursor: data.keyword_search("wedding vlog", after, before, cursor, credential=DATA_KEY)
    )
    assert [post.shortcode for post in found] == [post.shortcode for post in expected] and pages > 1
    assert {post.source for post in found} == {V311}
    assert [post.dimensions for post in found] == [post.dimensions for post in expected]

    video = next(v for v in world.uploads(DEMO_CHANNEL_ID) if v.comment_count and v.comment_count > 60)
    comments, _ = await every_page(lambda cursor: v311.comments(video.video_id, cursor, credential=V311_KEY))
    assert [c.dimensions["comment_id"] for c in comments] == [c.comment_id for c in world.comments(video)]
    assert {c.source for c in comments} == {V311}
    with pytest.raises(CommentsDisabled):
        await v311.comments(COMMENTS_DISABLED_VIDEO_ID, credential=V311_KEY)
    with pytest.raises(PostMissing):
        await v311.comments(MISSING_VIDEO_ID, credential=V311_KEY)


async def test_rapidapi_key_refusals(http: ProviderHttp) -> None:
    unsubscribed = Credential(id="v31-2", source=V31, secrets={"x-rapidapi-key": "unsubscribed-k"})
    with pytest.raises(AuthExpired, match="403: You are not subscribed"):
        await YtV31Client(http).channels([DEMO_CHANNEL_ID], credential=unsubscribed)
    spent = Credential(id="v311-2", source=V311, secrets={"x-rapidapi-key": "quota-k"})
    with pytest.raises(QuotaExceeded, match="429"):
        await YouTubeV311Client(http).comments(LONG_VIDEO_ID, credential=spent)


async def test_v311_keyword_search_asks_again_after_an_empty_body() -> None:
    after, before = datetime(2024, 8, 1, tzinfo=UTC), datetime(2024, 8, 31, 23, 59, 59, tzinfo=UTC)
    http = CannedHttp("", (PROVIDER_FIXTURES / "youtube_v311/search.json").read_text())
    page = await YouTubeV311Client(http).keyword_search(
        "cricket",
        after,
        before,  # type: ignore[arg-type]
        credential=V311_KEY,
    )
    assert len(page.items) == 3 and [call[2] for call in http.calls] == ["/search/", "/search/"]
    assert http.calls[0][3]["params"]["q"] == "cricket" and "secrets_as_headers" in http.calls[0][3]


# Falling through to the proxies


class OneKeyEach:
    """Stands in for the credential store: one credential per source."""

    def __init__(self, credentials: dict[str, Credential]) -> None:
        self._credentials = credentials

    async def pick(self, source: str, handle: str | None = None, exclude: Sequence[str] = ()) -> Credential | None:
        credential = self._credentials.get(source)
        return None if credential is None or credential.id in exclude else credential

    async def availability(self, source: str, handle: str | None = None) -> Availability:
        return Availability(usable=int(source in self._credentials), rest_in=None)


class RecordingPolicy:
    def __init__(self) -> None:
        self.rested: list[tuple[str, float | None]] = []
        self.expired: list[str] = []

    async def rest(self, credential: Credential, retry_after: float | None) -> float:
        self.rested.append((credential.id, retry_after))
        return 0.0

    async def expire(self, credential: Credential) -> None:
        self.expired.append(credential.id)

    async def answered(self, credential: Credential) -> None:
        pass


async def test_a_spent_data_api_key_falls_through_to_the_proxies(http: ProviderHttp, world: YouTubeWorld) -> None:
    spent = Credential(id="yt-spent", source="ytapitoken", secrets={"key": "quota-daily-spent"})
    policy = RecordingPolicy()
    crawler = Crawler(
        OneKeyEach({"ytapitoken": spent, V31: V31_KEY, V311: V311_KEY}),  # type: ignore[arg-type]
        policy,
        {
            "ytapitoken": YouTubeDataClient(http),
            V31: YtV31Client(http),  # type: ignore[arg-type]
            V311: YouTubeV311Client(http),
        },
    )
    page, source = await crawler.fetch(FETCH_YT_CHANNEL_POSTS, DEMO_CHANNEL_ID, None, None, None)
    # The first page of a channel search lists the channel itself too: 49 videos.
    assert source == V31 and page.items == [v.video_id for v in world.uploads(DEMO_CHANNEL_ID, 0, 49)]
    # A spent daily quota rests the key until Google resets it, at midnight Pacific Time.
    [(rested, seconds)] = policy.rested
    assert rested == "yt-spent" and 0 < seconds <= 25 * 3600
    after, before = datetime.now(UTC) - timedelta(days=30), datetime.now(UTC)
    page, source = await crawler.fetch(FETCH_YT_SEARCH, "unboxing", after, before, None)
    assert source == V311 and page.items and {post.source for post in page.items} == {V311}
    assert [key for key, _ in policy.rested] == ["yt-spent"] * 2 and policy.expired == []
