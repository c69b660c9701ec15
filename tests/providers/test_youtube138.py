"""youtube138 (rapidapi-yt): parsers on recorded-shape fixtures, the client against its sandbox over loopback."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest

from providers.errors import (
    BadResponse,
    InputRejected,
    PostMissing,
    ProfileMissing,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.sandbox import SandboxServer
from providers.sandbox.youtube import (
    DEMO_CHANNEL_ID,
    HIDDEN_SUBSCRIBERS_CHANNEL_ID,
    LIKES_HIDDEN_VIDEO_ID,
    LIVE_VIDEO_ID,
    LONG_VIDEO_ID,
    MISSING_CHANNEL_ID,
    MISSING_VIDEO_ID,
    SHORT_VIDEO_ID,
    YouTubeWorld,
    channel_id_for,
)
from providers.sandbox.youtube138 import DESKTOP_BANNER, has_banner, is_verified
from providers.youtube.youtube138 import (
    SOURCE,
    YouTube138Client,
    iso_duration,
    parse_channel,
    parse_channel_videos_page,
    parse_date,
    parse_video,
)
from tests.support import SandboxHttp, SandboxKnobs, load_fixture
from topics.models import Platform, TraceLog

KEY = Credential(
    id="yt138-1", source=SOURCE, secrets={"x-rapidapi-key": "yt138-k1", "x-rapidapi-host": "youtube138.p.rapidapi.com"}
)


load = partial(load_fixture, "youtube138")


def midnight(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


# Parsers


def test_channel() -> None:
    payload = load("channel_details.json")
    channel = parse_channel(payload)
    assert (channel.platform, channel.source, channel.kind) == (Platform.YOUTUBE, SOURCE, "profile")
    assert (channel.profile_id, channel.handle) == ("UCk2Pq7VbN4sRz0tXw1yLmQa", "@masalarasoi")
    assert channel.metrics == {"video_count": 1187, "subscriber_count": 2340000, "view_count": 612938417}
    desktop = payload["banner"]["desktop"]
    assert channel.dimensions == {
        "title": "Masala Rasoi",
        "description": payload["description"],
        "custom_url": "@masalarasoi",
        "external_urls": json.dumps(payload["links"]),
        "thumbnails": json.dumps(desktop),
        "thumbnail": desktop[5]["url"],
        "country": "India",
        "taken_at_timestamp": midnight("2014-08-19"),
        "is_verified": True,
    }
    assert "w2560" in channel.dimensions["thumbnail"]


def test_channel_without_banner_badge_or_subscriber_count() -> None:
    channel = parse_channel(load("channel_details_no_banner.json"))
    assert channel.handle is None
    # Hidden subscribers stay unknown, never 0; a count sent as text is still a count.
    assert channel.metrics == {"video_count": 37, "subscriber_count": None, "view_count": 48211}
    dims = channel.dimensions
    assert (dims["thumbnails"], dims["thumbnail"], dims["custom_url"], dims["country"]) == (None, None, None, None)
    assert dims["is_verified"] is False
    assert dims["external_urls"] == "[]"
    assert dims["taken_at_timestamp"] == midnight("2021-01-05")


def test_a_shorter_banner_ladder_has_no_thumbnail() -> None:
    payload = load("channel_details.json")
    payload["banner"]["desktop"] = payload["banner"]["desktop"][:5]
    assert parse_channel(payload).dimensions["thumbnail"] is None
    del payload["badges"]
    assert parse_channel(payload).dimensions["is_verified"] is None
    payload["badges"] = [{"text": "Official Artist Channel", "type": "OFFICIAL_ARTIST_CHANNEL"}]
    assert parse_channel(payload).dimensions["is_verified"] is False


def test_unknown_and_malformed_channels() -> None:
    with pytest.raises(ProfileMissing, match="This channel does not exist"):
        parse_channel(load("channel_not_found.json"))
    with pytest.raises(ProfileMissing, match="no channelId"):
        parse_channel({"title": "x"})
    payload = load("channel_details.json")
    payload["stats"]["views"] = "lots"
    with pytest.raises(BadResponse, match=r"stats\.views"):
        parse_channel(payload)
    payload = load("channel_details.json")
    payload["joinedDate"] = "Joined 19 Aug 2014"
    with pytest.raises(BadResponse, match="joinedDate is not a date"):
        parse_channel(payload)
    with pytest.raises(BadResponse, match="JSON object"):
        parse_channel([])  # type: ignore[arg-type]


def test_video() -> None:
    payload = load("video_details.json")
    video = parse_video(payload)
    assert (video.platform, video.source, video.kind) == (Platform.YOUTUBE, SOURCE, "post")
    assert (video.shortcode, video.profile_id, video.handle) == ("q8Xr2LmT0bA", "UCk2Pq7VbN4sRz0tXw1yLmQa", None)
    assert video.publish_time == datetime(2024, 3, 14, 5, 30, 12, tzinfo=UTC)
    assert video.metrics == {"comments": 1873, "likes": 48210, "view_count": 1296044}
    assert video.dimensions == {
        "title": "Dal Makhani Like a Dhaba | Masala Rasoi",
        "channel_title": "Masala Rasoi",
        "description": payload["description"],
        "duration": "PT0H12M34S",
        "taken_at_timestamp": int(video.publish_time.timestamp()),
        "thumbnails": json.dumps(payload["thumbnails"]),
        "thumbnail": "https://i.ytimg.com/vi/q8Xr2LmT0bA/hqdefault.jpg",
        "tags": json.dumps(["dal makhani", "dhaba style", "punjabi recipes"]),
        "category_id": "26",
        "audio_language": "hi",
        "is_licensed": True,
        "content_rating": "{}",
        "playlist_id": "PLm3Kx9Qa7Rt2Vb5Nc8Yd1Ze4Wf6Hg0Ji",
    }


def test_long_video_with_hidden_likes() -> None:
    video = parse_video(load("video_details_long.json"))
    assert video.dimensions["duration"] == "PT1H23M45S"
    assert video.metrics == {"comments": 312, "likes": None, "view_count": 88412}
    # Published at 13:00 in India is 07:30 UTC.
    assert video.publish_time == datetime(2023, 11, 26, 7, 30, tzinfo=UTC)
    assert video.dimensions["taken_at_timestamp"] == int(video.publish_time.timestamp())
    assert video.dimensions["playlist_id"] is None  # no end screen
    assert video.dimensions["audio_language"] is None
    assert video.dimensions["is_licensed"] is False
    assert json.loads(video.dimensions["content_rating"]) == {"ytRating": "ytAgeRestricted"}
    assert video.dimensions["tags"] == "[]"


def test_video_in_the_flat_v1_shape() -> None:
    payload = load("video_details_v1.json")
    video = parse_video(payload)
    assert video.shortcode == "Ty7Bn2Rc5Lq"
    assert video.publish_time == datetime(2024, 5, 2, tzinfo=UTC)
    assert video.dimensions["duration"] == "PT0H00M58S"
    # The list runs smallest first; the largest is the thumbnail.
    assert video.dimensions["thumbnail"] == payload["thumbnails"][-1]["url"]
    assert video.dimensions["thumbnails"] == json.dumps(payload["thumbnails"])
    assert video.dimensions["category_id"] is None  # v1 names the category, it has no id


def test_unknown_and_malformed_videos() -> None:
    with pytest.raises(PostMissing, match="Video unavailable"):
        parse_video(load("video_not_found.json"))
    payload = load("video_details.json")
    payload["thumbnails"] = "hqdefault.jpg"
    with pytest.raises(BadResponse, match="thumbnails"):
        parse_video(payload)
    payload = load("video_details.json")
    payload["lengthSeconds"] = "12:34"
    with pytest.raises(BadResponse, match="lengthSeconds"):
        parse_video(payload)
    payload = load("video_details.json")
    payload["content"]["licensed"] = "maybe"
    with pytest.raises(BadResponse, match=r"content\.licensed"):
        parse_video(payload)


def test_iso_duration_and_dates() -> None:
    assert [iso_duration(s) for s in (None, 0, 9, 60, 754, 3600, 3723, 36061)] == [
        None,
        "PT0H00M00S",
        "PT0H00M09S",
        "PT0H01M00S",
        "PT0H12M34S",
        "PT1H00M00S",
        "PT1H02M03S",
        "PT10H01M01S",
    ]
    assert parse_date(None, "d") == (None, None)
    assert parse_date("", "d") == (None, None)
    assert parse_date("1970-01-02", "d") == (86_400, datetime(1970, 1, 2, tzinfo=UTC))
    assert parse_date("1970-01-01T01:00:00Z", "d")[0] == 3600
    with pytest.raises(BadResponse, match="d is not text"):
        parse_date(20240101, "d")


def test_channel_videos_pages() -> None:
    payload = load("channel_videos.json")
    page = parse_channel_videos_page(payload)
    assert page.items == [entry["video"]["videoId"] for entry in payload["contents"]]
    assert len(page.items) == 30 and page.next_cursor == payload["cursorNext"]

    last = parse_channel_videos_page(load("channel_videos_last_page.json"))
    assert last.next_cursor is None
    assert len(last.items) == 7 and "Sx4Rm1Nd8Kp" not in last.items  # the short entry has no video

    with pytest.raises(ProfileMissing, match="does not exist"):
        parse_channel_videos_page(load("channel_not_found.json"))
    with pytest.raises(BadResponse, match="no contents"):
        parse_channel_videos_page({"cursorNext": None})
    assert parse_channel_videos_page({"contents": [], "cursorNext": ""}).next_cursor is None


class ScriptedHttp:
    """Stands in for ProviderHttp: answers each id from ``answers`` and records the calls in flight."""

    def __init__(self, answers: dict[str, Any], delay: float = 0.01) -> None:
        self.answers = answers
        self.delay = delay
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.cancelled = 0

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((source, path, kwargs))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        answer = self.answers[kwargs["params"]["id"]]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return httpx.Response(status, content=json.dumps(body).encode())


async def test_batches_are_bounded_ordered_and_skip_unknown_ids() -> None:
    found = load("channel_details.json")
    answers = {f"id{n}": (200, {**found, "channelId": f"id{n}"}) for n in range(12)}
    answers["id3"] = (200, load("channel_not_found.json"))
    answers["id7"] = (404, {"error": "This channel does not exist."})
    http = ScriptedHttp(answers)
    client = YouTube138Client(http, max_concurrency=3)  # type: ignore[arg-type]
    profiles = await client.channels(list(answers), credential=KEY, request_id="r1")
    assert [p.profile_id for p in profiles] == [f"id{n}" for n in range(12) if n not in (3, 7)]
    assert http.most_in_flight == 3
    assert {(source, path) for source, path, _ in http.calls} == {(SOURCE, "/v1/channel/details/")}
    assert all(kwargs["credential"] is KEY and kwargs["request_id"] == "r1" for _, _, kwargs in http.calls)


async def test_a_quota_answer_fails_the_batch_and_stops_the_rest() -> None:
    answers: dict[str, Any] = {f"v{n}": (200, load("video_details.json")) for n in range(20)}
    answers["v1"] = QuotaExceeded("GET /v2/video/details/ answered 429", source=SOURCE, retry_after=7.0)
    http = ScriptedHttp(answers, delay=0.05)
    with pytest.raises(QuotaExceeded) as caught:
        await YouTube138Client(http, max_concurrency=4).videos(list(answers), credential=KEY)  # type: ignore[arg-type]
    assert caught.value.retry_after == 7.0
    # The calls already running were cancelled, and the ones still waiting never went out.
    assert http.cancelled >= 1 and len(http.calls) < len(answers)


async def test_channel_video_ids_ignores_dates() -> None:
    http = ScriptedHttp({"UCk2Pq7VbN4sRz0tXw1yLmQa": (200, load("channel_videos.json"))})
    client = YouTube138Client(http)  # type: ignore[arg-type]
    await client.channel_video_ids("UCk2Pq7VbN4sRz0tXw1yLmQa", "2024-01-01", "2024-01-31", "c2", credential=KEY)
    await client.channel_video_ids("UCk2Pq7VbN4sRz0tXw1yLmQa", credential=KEY)
    assert [(path, kwargs["params"]) for _, path, kwargs in http.calls] == [
        ("/v1/channel/videos/", {"id": "UCk2Pq7VbN4sRz0tXw1yLmQa", "filter": "videos_latest", "cursorNext": "c2"}),
        ("/v1/channel/videos/", {"id": "UCk2Pq7VbN4sRz0tXw1yLmQa", "filter": "videos_latest"}),
    ]


# Over loopback HTTP


@pytest.fixture
def client(sandbox_http: SandboxHttp, knobs: SandboxKnobs) -> YouTube138Client:
    return YouTube138Client(sandbox_http(SOURCE))


async def test_channels_match_the_world(client: YouTube138Client, world: YouTubeWorld, knobs: SandboxKnobs) -> None:
    profiles = await client.channels(
        [DEMO_CHANNEL_ID, MISSING_CHANNEL_ID, HIDDEN_SUBSCRIBERS_CHANNEL_ID], credential=KEY
    )
    assert [p.profile_id for p in profiles] == [DEMO_CHANNEL_ID, HIDDEN_SUBSCRIBERS_CHANNEL_ID]
    demo, hidden = profiles
    channel = world.channel(DEMO_CHANNEL_ID)
    assert channel is not None
    assert demo.handle == channel.custom_url and demo.dimensions["custom_url"] == channel.custom_url
    assert demo.metrics == {
        "video_count": channel.video_count,
        "subscriber_count": channel.subscriber_count,
        "view_count": channel.view_count,
    }
    assert demo.dimensions["title"] == channel.title
    assert demo.dimensions["country"] == "India"
    assert demo.dimensions["is_verified"] is is_verified(channel) is True
    # joinedDate is a day: the timestamp is that day's UTC midnight.
    assert demo.dimensions["taken_at_timestamp"] == channel.published_at // 86_400 * 86_400
    assert has_banner(channel)
    assert len(json.loads(demo.dimensions["thumbnails"])) == len(DESKTOP_BANNER)
    assert "=w2560-" in demo.dimensions["thumbnail"]
    assert hidden.metrics["subscriber_count"] is None and hidden.metrics["video_count"] is not None
    assert hidden.dimensions["is_verified"] is False
    # The key travelled as a header: the sandbox metered it.
    assert knobs.stats()["credentials"]["yt138-k1"]["accepted"] == 3


async def test_a_channel_without_banner(client: YouTube138Client, world: YouTubeWorld) -> None:
    bare = next(
        channel_id_for(n)
        for n in range(10, 500)
        if (c := world.channel(channel_id_for(n))) is not None and not has_banner(c)
    )
    [profile] = await client.channels([bare], credential=KEY)
    assert profile.dimensions["thumbnails"] is None and profile.dimensions["thumbnail"] is None


async def test_videos_match_the_world(client: YouTube138Client, world: YouTubeWorld) -> None:
    ids = [LONG_VIDEO_ID, MISSING_VIDEO_ID, SHORT_VIDEO_ID, LIKES_HIDDEN_VIDEO_ID, LIVE_VIDEO_ID]
    posts = await client.videos(ids, credential=KEY)
    assert [p.shortcode for p in posts] == [LONG_VIDEO_ID, SHORT_VIDEO_ID, LIKES_HIDDEN_VIDEO_ID, LIVE_VIDEO_ID]
    long, short, likes_hidden, live = posts
    video = world.video(LONG_VIDEO_ID)
    assert video is not None
    assert long.dimensions["duration"] == "PT1H02M03S"
    assert long.profile_id == DEMO_CHANNEL_ID and long.dimensions["channel_title"] == video.channel.title
    assert long.publish_time == datetime.fromtimestamp(video.published_at, UTC)
    assert long.metrics == {"comments": video.comment_count, "likes": video.like_count, "view_count": video.view_count}
    assert long.dimensions["category_id"] == video.category_id
    assert long.dimensions["tags"] == json.dumps(list(video.tags))
    assert long.dimensions["thumbnail"] == f"https://i.ytimg.com/vi/{LONG_VIDEO_ID}/hqdefault.jpg"
    assert long.dimensions["playlist_id"] == video.channel.uploads_playlist_id
    assert short.dimensions["duration"] == "PT0H00M45S" and short.dimensions["playlist_id"] is None
    assert likes_hidden.metrics["likes"] is None and likes_hidden.metrics["view_count"] is not None
    assert live.dimensions["duration"] == "PT0H00M00S"


async def test_channel_video_ids_page_to_the_end(client: YouTube138Client, world: YouTubeWorld) -> None:
    expected = [v.video_id for v in world.uploads(DEMO_CHANNEL_ID) if not v.is_short and not v.is_live]
    ids: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await client.channel_video_ids(DEMO_CHANNEL_ID, "2020-01-01", "2020-01-31", cursor, credential=KEY)
        ids += page.items
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # The dates changed nothing: every long upload, newest first.
    assert ids == expected and pages == -(-len(expected) // 30)
    assert SHORT_VIDEO_ID not in ids and LIVE_VIDEO_ID not in ids


async def test_unknown_channel_listing_and_quota(client: YouTube138Client, knobs: SandboxKnobs) -> None:
    with pytest.raises(ProfileMissing, match="404"):
        await client.channel_video_ids(MISSING_CHANNEL_ID, None, None, None, credential=KEY)
    with pytest.raises(InputRejected, match="400"):
        await client.channel_video_ids(DEMO_CHANNEL_ID, None, None, "not-a-cursor", credential=KEY)
    knobs.set(fail_paths={"/rapidapi-yt/v2/video/details/": 429}, fail_retry_after=30)
    with pytest.raises(QuotaExceeded) as caught:
        await client.videos([LONG_VIDEO_ID, SHORT_VIDEO_ID], credential=KEY)
    assert caught.value.retry_after == 30
    assert await client.channels([DEMO_CHANNEL_ID], credential=KEY)


async def test_the_key_never_reaches_errors_logs_or_traces(
    sandbox_server: SandboxServer, knobs: SandboxKnobs, caplog: pytest.LogCaptureFixture
) -> None:
    traces: list[TraceLog] = []

    async def keep(record: TraceLog) -> None:
        traces.append(record)

    http = ProviderHttp(base_urls={SOURCE: f"{sandbox_server.url}/{SOURCE}"}, timeout=5.0, trace_sink=keep)
    client = YouTube138Client(http)
    with caplog.at_level(logging.DEBUG):
        knobs.set(fail_paths={"/rapidapi-yt/v1/channel/videos/": 500})
        with pytest.raises(ProviderUnavailable) as unavailable:
            await client.channel_video_ids(DEMO_CHANNEL_ID, credential=KEY)
        knobs.set()
        with pytest.raises(ProfileMissing) as missing:
            await client.channel_video_ids(MISSING_CHANNEL_ID, credential=KEY)
        assert len(await client.channels([MISSING_CHANNEL_ID, DEMO_CHANNEL_ID], credential=KEY)) == 1
    await http.aclose()
    assert len(traces) == 4 and {t.credential_id for t in traces} == {KEY.id}
    for text in (caplog.text, str(unavailable.value), str(missing.value), *(t.model_dump_json() for t in traces)):
        assert "yt138-k1" not in text
