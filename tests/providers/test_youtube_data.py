"""YouTube Data API v3: the pure parsers on fixtures in the API's shapes, the refusal classification, and
the client against the sandbox over loopback HTTP (every operation, paging, refusals, and no key anywhere)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from providers.errors import (
    AuthExpired,
    BadResponse,
    Forbidden,
    InputRejected,
    PostMissing,
    ProfileMissing,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.paging import Page
from providers.sandbox.config import SandboxConfig
from providers.sandbox.youtube import (
    COMMENTS_DISABLED_VIDEO_ID,
    DEMO_CHANNEL_ID,
    HIDDEN_SUBSCRIBERS_CHANNEL_ID,
    LIKES_HIDDEN_VIDEO_ID,
    LIVE_VIDEO_ID,
    LONG_VIDEO_ID,
    MAX_COMMENTS,
    MISSING_CHANNEL_ID,
    MISSING_VIDEO_ID,
    SHORT_VIDEO_ID,
    SUBSCRIPTIONS_HIDDEN_CHANNEL_ID,
    YouTubeWorld,
    channel_id_for,
)
from providers.youtube.youtube_data import (
    EVENT_SOURCE,
    ApiError,
    CommentsDisabled,
    SubscriptionForbidden,
    YouTubeDataClient,
    error_for,
    iso8601_seconds,
    parse_activities_page,
    parse_channels,
    parse_comment_threads_page,
    parse_error,
    parse_playlist_items_page,
    parse_search_ids_page,
    parse_search_snippet_page,
    parse_subscriptions_page,
    parse_videos,
)
from tests.providers.youtube_loopback import LoopbackServer
from tests.support import PROVIDER_FIXTURES, every_page, load_fixture
from topics.models import Platform, TraceLog

FIXTURES = PROVIDER_FIXTURES / "youtube_data"
KEY = "sandbox-yt-secret-4f2a"
CREDENTIAL = Credential(id="yt-1", source="ytapitoken", secrets={"key": KEY})


load = partial(load_fixture, "youtube_data")


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


# Durations


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("PT1H2M3S", 3723),
        ("PT45S", 45),
        ("P1DT2H", 93600),
        ("P0D", 0),
        ("PT4M", 240),
        ("PT1H", 3600),
        ("PT59S", 59),
        ("P1W", 604800),
        ("PT1M0.5S", 60),
        ("PT", None),
        ("P", None),
        ("", None),
        (None, None),
        ("1:02:03", None),
        ("PT1X", None),
        ("P1DT", None),
    ],
)
def test_iso8601_seconds(duration: str | None, seconds: int | None) -> None:
    assert iso8601_seconds(duration) == seconds


# Parsers


def test_channels() -> None:
    payload = load("channels.json")
    demo, hidden, plain = parse_channels(payload)
    item = payload["items"][0]
    assert (demo.platform, demo.source, demo.kind, demo.profile_id, demo.handle) == (
        Platform.YOUTUBE,
        EVENT_SOURCE,
        "profile",
        DEMO_CHANNEL_ID,
        "@yatrakitchen",
    )
    assert demo.metrics == {
        "video_count": 184,
        "subscriber_count": 777000,
        "hidden_subscriber_count": 0,
        "view_count": 274124331,
    }
    assert demo.dimensions == {
        "title": "Yatra Kitchen",
        "description": "Recipes from my grandmother's kitchen.",
        "custom_url": "@yatrakitchen",
        "taken_at_timestamp": epoch("2016-11-01T14:52:16Z"),
        "thumbnails": json.dumps(item["snippet"]["thumbnails"]),
        "thumbnail": item["snippet"]["thumbnails"]["default"]["url"],
        "country": "IN",
        "uploads_playlist_id": "UU" + DEMO_CHANNEL_ID[2:],
    }
    # A hidden subscriber count is absent from the answer: None, never 0.
    assert "subscriberCount" not in payload["items"][1]["statistics"]
    assert hidden.profile_id == HIDDEN_SUBSCRIBERS_CHANNEL_ID
    assert hidden.metrics["subscriber_count"] is None and hidden.metrics["hidden_subscriber_count"] == 1
    assert hidden.metrics["video_count"] == int(payload["items"][1]["statistics"]["videoCount"])
    # No custom URL and no country: handle, custom_url and country stay None.
    assert plain.handle is None and plain.dimensions["custom_url"] is None and plain.dimensions["country"] is None
    assert MISSING_CHANNEL_ID not in {p.profile_id for p in (demo, hidden, plain)}
    # An answer that found nothing has no items key at all.
    assert "items" not in load("channels_none.json") and parse_channels(load("channels_none.json")) == []


def test_videos() -> None:
    payload = load("videos.json")
    posts = {post.shortcode: post for post in parse_videos(payload)}
    assert list(posts) == [
        LONG_VIDEO_ID,
        SHORT_VIDEO_ID,
        LIKES_HIDDEN_VIDEO_ID,
        LIVE_VIDEO_ID,
        COMMENTS_DISABLED_VIDEO_ID,
    ]
    long = posts[LONG_VIDEO_ID]
    item = payload["items"][0]
    assert (long.platform, long.source, long.kind, long.profile_id, long.handle) == (
        Platform.YOUTUBE,
        EVENT_SOURCE,
        "post",
        DEMO_CHANNEL_ID,
        None,
    )
    assert long.publish_time == datetime.fromisoformat(item["snippet"]["publishedAt"].replace("Z", "+00:00"))
    assert long.publish_time.tzinfo is not None
    assert long.metrics == {"comments": 1166, "favourite_count": 0, "likes": 25884, "view_count": 780485}
    assert long.dimensions == {
        "title": item["snippet"]["title"],
        "channel_title": "Yatra Kitchen",
        "description": item["snippet"]["description"],
        "duration": "PT1H2M3S",
        "taken_at_timestamp": epoch(item["snippet"]["publishedAt"]),
        "thumbnails": json.dumps(item["snippet"]["thumbnails"]),
        "thumbnail": f"https://i.ytimg.com/vi/{LONG_VIDEO_ID}/default.jpg",
        "tags": json.dumps(["comedy", "travel", "vlog"]),
        "category_id": item["snippet"]["categoryId"],
        "audio_language": "hi",
        "is_licensed": item["contentDetails"]["licensedContent"],
        "content_rating": json.dumps({"ytRating": "ytAgeRestricted"}),
        "definition": item["contentDetails"]["definition"],
        "post_type": "video",
    }
    # Up to 180 s, or live (P0D), the Data API cannot tell a short: post_type is left to the probe.
    short = posts[SHORT_VIDEO_ID]
    assert short.dimensions["duration"] == "PT45S" and "post_type" not in short.dimensions
    assert posts[LIVE_VIDEO_ID].dimensions["duration"] == "P0D" and "post_type" not in posts[LIVE_VIDEO_ID].dimensions
    assert posts[SHORT_VIDEO_ID].dimensions["content_rating"] == "{}"
    # Likes hidden, comments off: absent counts stay None.
    assert posts[LIKES_HIDDEN_VIDEO_ID].metrics["likes"] is None
    assert posts[LIKES_HIDDEN_VIDEO_ID].metrics["view_count"] == 775054
    assert posts[LIKES_HIDDEN_VIDEO_ID].dimensions["tags"] is None
    assert posts[COMMENTS_DISABLED_VIDEO_ID].metrics["comments"] is None
    assert posts[COMMENTS_DISABLED_VIDEO_ID].dimensions["audio_language"] is None
    assert parse_videos(load("videos_none.json")) == []


@pytest.mark.parametrize(
    ("duration", "post_type"),
    [
        ("PT45S", None),
        ("PT1M1S", None),
        ("PT2M30S", None),
        ("PT3M", None),
        ("PT3M1S", "video"),
        ("PT4M", "video"),
        ("P0D", None),
    ],
)
def test_only_videos_too_long_for_a_short_are_typed(duration: str, post_type: str | None) -> None:
    # Shorts run up to three minutes since 2024-10-15: a 2:30 upload may be one, so the probe decides.
    payload = load("videos.json")
    payload["items"][0]["contentDetails"]["duration"] = duration
    [post] = parse_videos({"items": payload["items"][:1]})
    assert post.dimensions.get("post_type") == post_type


def test_malformed_videos_are_refused() -> None:
    payload = load("videos.json")
    payload["items"][0]["contentDetails"]["duration"] = "1:02:03"
    with pytest.raises(BadResponse, match="not an ISO-8601 duration"):
        parse_videos(payload)
    payload = load("videos.json")
    payload["items"][1]["statistics"]["viewCount"] = "many"
    with pytest.raises(BadResponse, match=r"statistics\.viewCount is not a count"):
        parse_videos(payload)
    payload = load("videos.json")
    del payload["items"][2]["id"]
    with pytest.raises(BadResponse, match="no id"):
        parse_videos(payload)
    with pytest.raises(BadResponse, match="not a timestamp"):
        parse_videos({"items": [{"id": "x", "snippet": {"publishedAt": "yesterday"}}]})


def test_playlist_items() -> None:
    payload = load("playlist_items.json")
    page = parse_playlist_items_page(payload)
    assert page.items == [item["contentDetails"]["videoId"] for item in payload["items"]]
    assert page.items[:2] == [SHORT_VIDEO_ID, LONG_VIDEO_ID] and page.next_cursor == "CAUQAA"
    # A private video is still listed with its id.
    assert payload["items"][3]["status"]["privacyStatus"] == "private" and len(page.items) == 5
    last = parse_playlist_items_page(load("playlist_items_last_page.json"))
    assert len(last.items) == 3 and last.next_cursor is None


def test_search_pages() -> None:
    ids = parse_search_ids_page(load("search_channel_ids.json"))
    # A channel search finds the channel itself first; only videos count.
    assert ids.items == [SHORT_VIDEO_ID, LONG_VIDEO_ID, LIKES_HIDDEN_VIDEO_ID, LIVE_VIDEO_ID]
    assert ids.next_cursor == "CAUQAA"

    payload = load("search_snippet.json")
    page = parse_search_snippet_page(payload)
    assert len(page.items) == 4 and page.next_cursor == "CAQQAA"
    first, item = page.items[0], payload["items"][0]
    assert (first.shortcode, first.profile_id, first.source, first.metrics) == (
        item["id"]["videoId"],
        item["snippet"]["channelId"],
        EVENT_SOURCE,
        {},
    )
    assert first.dimensions == {
        "title": item["snippet"]["title"],
        "channel_title": item["snippet"]["channelTitle"],
        "description": item["snippet"]["description"],
        "taken_at_timestamp": epoch(item["snippet"]["publishedAt"]),
        "thumbnails": json.dumps(item["snippet"]["thumbnails"]),
        "thumbnail": item["snippet"]["thumbnails"]["default"]["url"],
    }
    assert all(after.publish_time >= datetime(2024, 4, 1, tzinfo=UTC) for after in page.items)


def test_comment_threads() -> None:
    payload = load("comment_threads.json")
    page = parse_comment_threads_page(payload)
    assert len(payload["items"]) == len(page.items) == 4 and page.next_cursor == "CAQQAA"
    first = page.items[0]
    said = payload["items"][0]["snippet"]["topLevelComment"]["snippet"]
    assert (first.platform, first.source, first.kind, first.activity_type, first.shortcode) == (
        Platform.YOUTUBE,
        EVENT_SOURCE,
        "activity",
        "COMMENT",
        SHORT_VIDEO_ID,
    )
    assert first.actor_profile_id == said["authorChannelId"]["value"]
    assert first.publish_time == datetime.fromisoformat(said["publishedAt"].replace("Z", "+00:00"))
    assert first.metrics == {"likes": said["likeCount"]}
    assert first.dimensions == {
        "comment_id": payload["items"][0]["id"],
        "text": said["textDisplay"],
        "channel_title": said["authorDisplayName"],
        "thumbnail": said["authorProfileImageUrl"],
        "taken_at_timestamp": epoch(said["publishedAt"]),
    }
    # The third thread's author has no channel ("if any"): the comment is kept, with its text and no actor.
    anonymous, said = page.items[2], payload["items"][2]["snippet"]["topLevelComment"]["snippet"]
    assert "authorChannelId" not in said
    assert anonymous.actor_profile_id is None and anonymous.shortcode == SHORT_VIDEO_ID
    assert anonymous.dimensions["comment_id"] == payload["items"][2]["id"]
    assert anonymous.dimensions["text"] == said["textDisplay"] and anonymous.dimensions["channel_title"] == ""
    assert [c.dimensions["comment_id"] for c in page.items] == [item["id"] for item in payload["items"]]


def test_parse_activities() -> None:
    payload = load("activities.json")
    page = parse_activities_page(payload)
    assert page.next_cursor == "CAYQAA"
    assert [a.activity_type for a in page.items] == [i["snippet"]["type"] for i in payload["items"]]
    assert {a.actor_channel_id for a in page.items} == {DEMO_CHANNEL_ID}
    by_type = {a.activity_type: (a, i) for a, i in zip(page.items, payload["items"], strict=True)}
    subscription, item = by_type["subscription"]
    assert (subscription.platform, subscription.source, subscription.kind, subscription.activity_id) == (
        Platform.YOUTUBE,
        EVENT_SOURCE,
        "yt_activity",
        item["id"],
    )
    assert subscription.dimensions == {
        "published_at": item["snippet"]["publishedAt"],
        "subscribed_channel_id": item["contentDetails"]["subscription"]["resourceId"]["channelId"],
        "subscribed_channel_title": item["snippet"]["title"],
        "subscribed_description": item["snippet"]["description"],
        "subscribed_thumbnails": json.dumps(item["snippet"]["thumbnails"]),
        "subscribed_thumbnail": item["snippet"]["thumbnails"]["default"]["url"],
    }
    upload, item = by_type["upload"]
    assert upload.dimensions == {
        "published_at": item["snippet"]["publishedAt"],
        "shortcode": item["contentDetails"]["upload"]["videoId"],
    }
    added, item = by_type["playlistItem"]
    assert added.dimensions == {
        "published_at": item["snippet"]["publishedAt"],
        "shortcode": item["contentDetails"]["playlistItem"]["resourceId"]["videoId"],
        "playlist_id": item["contentDetails"]["playlistItem"]["playlistId"],
    }
    assert parse_activities_page(load("activities_none.json")) == Page(items=[], next_cursor=None)


def test_parse_subscriptions() -> None:
    payload = load("subscriptions.json")
    page = parse_subscriptions_page(payload)
    assert len(page.items) == 3 and page.next_cursor == "CAMQAA"
    first, item = page.items[0], payload["items"][0]
    assert (first.platform, first.source, first.kind, first.relationship_id) == (
        Platform.YOUTUBE,
        EVENT_SOURCE,
        "yt_relationship",
        item["id"],
    )
    assert (first.source_channel_id, first.target_channel_id) == (
        DEMO_CHANNEL_ID,
        item["snippet"]["resourceId"]["channelId"],
    )
    assert first.subscribed_on == datetime.fromisoformat(item["snippet"]["publishedAt"].replace("Z", "+00:00"))
    assert first.target_dimensions == {
        "title": item["snippet"]["title"],
        "description": item["snippet"]["description"],
        "thumbnails": json.dumps(item["snippet"]["thumbnails"]),
        "thumbnail": item["snippet"]["thumbnails"]["default"]["url"],
    }
    assert first.source_dimensions["title"] == item["subscriberSnippet"]["title"] == "Yatra Kitchen"
    # Without subscriberSnippet the subscriber is still snippet.channelId.
    del payload["items"][1]["subscriberSnippet"]
    assert parse_subscriptions_page(payload).items[1].source_channel_id == DEMO_CHANNEL_ID
    # A channel subscribed to nothing: an empty last page, not an error.
    none = load("subscriptions_none.json")
    assert none["pageInfo"]["totalResults"] == 0
    assert parse_subscriptions_page(none) == Page(items=[], next_cursor=None)


# Refusals


def refusal(reason: str, status: int = 403, message: str = "refused") -> str:
    return json.dumps(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        }
    )


@pytest.mark.parametrize(
    ("status", "body", "missing", "expected"),
    [
        (403, (FIXTURES / "error_quota_exceeded.json").read_text(), ProfileMissing, QuotaExceeded),
        (403, refusal("dailyLimitExceeded"), ProfileMissing, QuotaExceeded),
        (403, refusal("rateLimitExceeded"), ProfileMissing, QuotaExceeded),
        (403, refusal("userRateLimitExceeded"), ProfileMissing, QuotaExceeded),
        (403, (FIXTURES / "error_subscription_forbidden.json").read_text(), ProfileMissing, SubscriptionForbidden),
        (403, (FIXTURES / "error_comments_disabled.json").read_text(), PostMissing, CommentsDisabled),
        (403, (FIXTURES / "error_missing_key.json").read_text(), ProfileMissing, AuthExpired),
        (403, refusal("insufficientPermissions"), ProfileMissing, AuthExpired),
        (403, refusal("accessNotConfigured"), ProfileMissing, AuthExpired),
        (400, refusal("keyInvalid", 400), ProfileMissing, AuthExpired),
        (400, (FIXTURES / "error_key_invalid.json").read_text(), ProfileMissing, AuthExpired),
        (401, refusal("authError", 401), ProfileMissing, AuthExpired),
        (404, (FIXTURES / "error_video_not_found.json").read_text(), PostMissing, PostMissing),
        (404, refusal("channelNotFound", 404), ProfileMissing, ProfileMissing),
        (404, (FIXTURES / "error_playlist_not_found.json").read_text(), ProfileMissing, ProfileMissing),
        (403, refusal("accountClosed"), ProfileMissing, ProfileMissing),
        (403, refusal("somethingNew"), ProfileMissing, Forbidden),
        (400, (FIXTURES / "error_invalid_page_token.json").read_text(), ProfileMissing, InputRejected),
        # RapidAPI's gateway refuses the key in its own words.
        (403, json.dumps({"message": "You are not subscribed to this API."}), ProfileMissing, AuthExpired),
        (401, json.dumps({"message": "Invalid API key."}), ProfileMissing, AuthExpired),
        (400, "<html>Bad Request</html>", ProfileMissing, InputRejected),
    ],
)
def test_refusals_are_classified(
    status: int, body: str, missing: type[ProviderError], expected: type[ProviderError]
) -> None:
    error = error_for(parse_error(status, body), source="ytapitoken", what="GET /youtube/v3/x", missing=missing)
    assert type(error) is expected
    assert str(error).startswith(f"ytapitoken: GET /youtube/v3/x answered {status}")


@pytest.mark.parametrize(
    ("reason", "now", "rest"),
    [
        # Daily units reset at midnight Pacific Time: PST (UTC-8) in January, PDT (UTC-7) in July.
        ("quotaExceeded", datetime(2026, 1, 15, 20, 0, tzinfo=UTC), 12 * 3600.0),
        ("dailyLimitExceeded", datetime(2026, 7, 15, 6, 30, tzinfo=UTC), 30 * 60.0),
        # A rate reason passes within seconds: the configured cooldown applies.
        ("rateLimitExceeded", datetime(2026, 1, 15, 20, 0, tzinfo=UTC), None),
        ("userRateLimitExceeded", datetime(2026, 1, 15, 20, 0, tzinfo=UTC), None),
    ],
)
def test_a_spent_daily_quota_rests_until_google_resets_it(reason: str, now: datetime, rest: float | None) -> None:
    error = error_for(
        parse_error(403, refusal(reason)),
        source="ytapitoken",
        what="GET /youtube/v3/x",
        missing=ProfileMissing,
        now=now,
    )
    assert isinstance(error, QuotaExceeded) and error.retry_after == rest


def test_refusal_messages_are_plain_and_scrubbed() -> None:
    quota = parse_error(403, (FIXTURES / "error_quota_exceeded.json").read_text())
    assert quota == ApiError(
        403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota."
    )
    echoed = parse_error(400, refusal("keyInvalid", 400, f"Bad key {KEY} given"), redact=(KEY,))
    assert echoed.message == "Bad key *** given"
    assert parse_error(400, (FIXTURES / "error_key_invalid.json").read_text()).details == ("API_KEY_INVALID",)


# Over loopback HTTP


@pytest.fixture
def youtube(http: ProviderHttp) -> YouTubeDataClient:
    return YouTubeDataClient(http)


async def test_channels_by_id(youtube: YouTubeDataClient, http: ProviderHttp, world: YouTubeWorld) -> None:
    profiles = await youtube.channels(
        [DEMO_CHANNEL_ID, MISSING_CHANNEL_ID, HIDDEN_SUBSCRIBERS_CHANNEL_ID], credential=CREDENTIAL, request_id="r1"
    )
    assert [p.profile_id for p in profiles] == [DEMO_CHANNEL_ID, HIDDEN_SUBSCRIBERS_CHANNEL_ID]
    demo = world.channel(DEMO_CHANNEL_ID)
    assert demo is not None
    assert profiles[0].metrics == {
        "video_count": demo.video_count,
        "subscriber_count": demo.subscriber_count,
        "hidden_subscriber_count": 0,
        "view_count": demo.view_count,
    }
    assert profiles[0].handle == demo.custom_url and profiles[0].source == EVENT_SOURCE
    assert profiles[0].dimensions["uploads_playlist_id"] == demo.uploads_playlist_id
    assert profiles[0].dimensions["taken_at_timestamp"] == demo.published_at
    assert profiles[1].metrics["subscriber_count"] is None and profiles[1].metrics["hidden_subscriber_count"] == 1
    assert await youtube.channels([MISSING_CHANNEL_ID], credential=CREDENTIAL) == []
    # The ytapi label serves the Data API as well; events are labelled ytapi either way.
    [same] = await YouTubeDataClient(http, "ytapi").channels([DEMO_CHANNEL_ID], credential=CREDENTIAL)
    assert same == profiles[0]
    with pytest.raises(ValueError, match="1 to 50 ids"):
        await youtube.channels([DEMO_CHANNEL_ID] * 51, credential=CREDENTIAL)


async def test_videos_by_id(youtube: YouTubeDataClient, world: YouTubeWorld) -> None:
    uploads = world.uploads(DEMO_CHANNEL_ID, 0, 50)
    posts = await youtube.videos([video.video_id for video in uploads], credential=CREDENTIAL)
    assert [post.shortcode for post in posts] == [video.video_id for video in uploads]
    for post, video in zip(posts, uploads, strict=True):
        assert post.profile_id == DEMO_CHANNEL_ID and post.dimensions["duration"] == video.duration
        assert post.metrics["view_count"] == video.view_count and post.metrics["likes"] == video.like_count
        assert int(post.publish_time.timestamp()) == video.published_at  # type: ignore[union-attr]
        # Over three minutes is a video; anything shorter or live is left to the shorts probe.
        assert ("post_type" in post.dimensions) == (video.duration_seconds > 180 and not video.is_live)
    shorts = [post for post, video in zip(posts, uploads, strict=True) if video.is_short]
    assert shorts and all("post_type" not in post.dimensions for post in shorts)
    assert await youtube.videos([MISSING_VIDEO_ID], credential=CREDENTIAL) == []


async def test_playlist_items_to_the_end(youtube: YouTubeDataClient, world: YouTubeWorld) -> None:
    demo = world.channel(DEMO_CHANNEL_ID)
    assert demo is not None
    ids, pages = await every_page(
        lambda cursor: youtube.playlist_items(demo.uploads_playlist_id, cursor, credential=CREDENTIAL)
    )
    assert ids == [video.video_id for video in world.uploads(DEMO_CHANNEL_ID)]
    assert pages == -(-demo.video_count // 50) and pages > 1
    with pytest.raises(ProfileMissing, match="404 playlistNotFound"):
        await youtube.playlist_items("PLnothing", credential=CREDENTIAL)


async def test_channel_video_ids(youtube: YouTubeDataClient, world: YouTubeWorld) -> None:
    uploads = world.uploads(DEMO_CHANNEL_ID)
    every, pages = await every_page(
        lambda cursor: youtube.channel_video_ids(DEMO_CHANNEL_ID, None, None, cursor, credential=CREDENTIAL)
    )
    assert every == [video.video_id for video in uploads] and pages > 1
    # A date window covers whole days, both ends included.
    newest, oldest = uploads[3], uploads[60]
    start = datetime.fromtimestamp(oldest.published_at, UTC).date().isoformat()
    end = datetime.fromtimestamp(newest.published_at, UTC).date().isoformat()
    window, _ = await every_page(
        lambda cursor: youtube.channel_video_ids(DEMO_CHANNEL_ID, start, end, cursor, credential=CREDENTIAL)
    )
    expected = [
        video.video_id
        for video in uploads
        if start <= datetime.fromtimestamp(video.published_at, UTC).date().isoformat() <= end
    ]
    assert window == expected and newest.video_id in window and oldest.video_id in window
    assert (await youtube.channel_video_ids(MISSING_CHANNEL_ID, credential=CREDENTIAL)).items == []


async def test_genre_and_keyword_search(youtube: YouTubeDataClient, world: YouTubeWorld) -> None:
    since = datetime.now(UTC) - timedelta(days=90)
    ids, pages = await every_page(
        lambda cursor: youtube.genre_search("Music", "hi", since, cursor, credential=CREDENTIAL)
    )
    expected = world.search("Music", int(since.timestamp()))
    assert ids == [video.video_id for video in expected] and len(ids) > 50 and pages == -(-len(ids) // 50)

    after, before = datetime.now(UTC) - timedelta(days=30), datetime.now(UTC) - timedelta(days=7)
    posts, _ = await every_page(
        lambda cursor: youtube.keyword_search("street food", after, before, cursor, credential=CREDENTIAL)
    )
    found = world.search("street food", int(after.timestamp()), int(before.timestamp()))
    assert [post.shortcode for post in posts] == [video.video_id for video in found] and posts
    assert all(post.metrics == {} and post.source == EVENT_SOURCE for post in posts)
    assert all(after - timedelta(seconds=1) <= post.publish_time <= before for post in posts)  # type: ignore[operator]
    assert posts[0].profile_id == found[0].channel.channel_id
    assert posts[0].dimensions["channel_title"] == found[0].channel.title


async def test_comments(youtube: YouTubeDataClient, world: YouTubeWorld) -> None:
    # A video some of whose commenters have no channel: the API names no author for those.
    video = next(
        video
        for video in world.uploads(DEMO_CHANNEL_ID)
        if video.comment_count is not None
        and 60 < video.comment_count < MAX_COMMENTS
        and any(comment.author is None for comment in world.comments(video))
    )
    comments, pages = await every_page(lambda cursor: youtube.comments(video.video_id, cursor, credential=CREDENTIAL))
    expected = world.comments(video)
    assert [c.dimensions["comment_id"] for c in comments] == [c.comment_id for c in expected]
    assert len(comments) == video.comment_count and pages == -(-len(comments) // 50)
    assert [c.actor_profile_id for c in comments] == [c.author.channel_id if c.author else None for c in expected]
    assert [c.dimensions["text"] for c in comments if c.actor_profile_id is None]
    assert {c.shortcode for c in comments} == {video.video_id}
    with pytest.raises(CommentsDisabled, match="403 commentsDisabled"):
        await youtube.comments(COMMENTS_DISABLED_VIDEO_ID, credential=CREDENTIAL)
    with pytest.raises(PostMissing, match="404 videoNotFound"):
        await youtube.comments(MISSING_VIDEO_ID, credential=CREDENTIAL)


async def test_activities(youtube: YouTubeDataClient, world: YouTubeWorld) -> None:
    demo = world.channel(DEMO_CHANNEL_ID)
    assert demo is not None
    activities, pages = await every_page(
        lambda cursor: youtube.activities(DEMO_CHANNEL_ID, cursor, credential=CREDENTIAL)
    )
    expected = world.activities(demo)
    assert [(a.activity_id, a.activity_type) for a in activities] == [(a.activity_id, a.kind) for a in expected]
    assert {a.activity_type for a in activities} == {"upload", "subscription", "playlistItem"} and pages > 1
    subscribed = next(a for a, e in zip(activities, expected, strict=True) if e.kind == "subscription")
    assert subscribed.dimensions["subscribed_channel_id"] == next(
        e.subscribed_to.channel_id for e in expected if e.kind == "subscription" and e.subscribed_to
    )
    assert (await youtube.activities(MISSING_CHANNEL_ID, credential=CREDENTIAL)).items == []


async def test_subscriptions(youtube: YouTubeDataClient, world: YouTubeWorld) -> None:
    demo = world.channel(DEMO_CHANNEL_ID)
    assert demo is not None
    follows, pages = await every_page(
        lambda cursor: youtube.subscriptions(DEMO_CHANNEL_ID, cursor, credential=CREDENTIAL)
    )
    expected = world.subscriptions(demo)
    assert [(f.relationship_id, f.target_channel_id) for f in follows] == [
        (e.subscription_id, e.target.channel_id) for e in expected
    ]
    assert len(follows) > 50 and pages == -(-len(follows) // 50)
    assert {f.source_channel_id for f in follows} == {DEMO_CHANNEL_ID}
    assert follows[0].subscribed_on == datetime.fromtimestamp(expected[0].subscribed_at, UTC)
    with pytest.raises(SubscriptionForbidden, match="403 subscriptionForbidden"):
        await youtube.subscriptions(SUBSCRIPTIONS_HIDDEN_CHANNEL_ID, credential=CREDENTIAL)
    with pytest.raises(ProfileMissing, match="404 subscriberNotFound"):
        await youtube.subscriptions(MISSING_CHANNEL_ID, credential=CREDENTIAL)
    channels = (world.channel(channel_id_for(number)) for number in range(1000, 5000))
    loner = next(
        channel
        for channel in channels
        if channel and not channel.subscriptions_hidden and not world.subscriptions(channel)
    )
    assert await youtube.subscriptions(loner.channel_id, credential=CREDENTIAL) == Page(items=[], next_cursor=None)


async def test_key_refusals(youtube: YouTubeDataClient) -> None:
    with pytest.raises(AuthExpired, match="has no key"):
        await youtube.channels([DEMO_CHANNEL_ID], credential=Credential(id="yt-0", source="ytapitoken", secrets={}))
    invalid = Credential(id="yt-2", source="ytapitoken", secrets={"key": "invalid-key-1"})
    with pytest.raises(AuthExpired, match="400 badRequest: API key not valid"):
        await youtube.channels([DEMO_CHANNEL_ID], credential=invalid)
    spent = Credential(id="yt-3", source="ytapitoken", secrets={"key": "quota-key-1"})
    with pytest.raises(QuotaExceeded, match="403 quotaExceeded") as raised:
        await youtube.videos([LONG_VIDEO_ID], credential=spent)
    assert 0 < raised.value.retry_after <= 25 * 3600  # until midnight Pacific Time


class CannedHttp:
    """Stands in for ProviderHttp with a queue of answers, recording what the client asks for."""

    def __init__(self, *bodies: str) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self._bodies = list(bodies)

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((source, method, path, kwargs))
        return httpx.Response(200, content=self._bodies.pop(0).encode())


async def test_keyword_search_asks_again_after_an_empty_body() -> None:
    after, before = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 7, 23, 59, 59, tzinfo=UTC)
    snippet = (FIXTURES / "search_snippet.json").read_text()
    http = CannedHttp("", snippet)
    client = YouTubeDataClient(http)  # type: ignore[arg-type]
    page = await client.keyword_search("street food", after, before, "CAUQAA", credential=CREDENTIAL, request_id="r9")
    assert len(page.items) == 4 and len(http.calls) == 2
    source, method, path, kwargs = http.calls[0]
    assert (source, method, path) == ("ytapitoken", "GET", "/youtube/v3/search")
    assert kwargs == {
        "credential": CREDENTIAL,
        "request_id": "r9",
        "secrets_as_headers": False,
        "params": {
            "part": "snippet",
            "q": "street food",
            "type": "video",
            "regionCode": "IN",
            "order": "viewCount",
            "publishedAfter": "2024-05-01T00:00:00Z",
            "publishedBefore": "2024-05-07T23:59:59Z",
            "maxResults": "50",
            "pageToken": "CAUQAA",
            "key": KEY,
        },
    }
    with pytest.raises(BadResponse, match="empty body twice"):
        await YouTubeDataClient(CannedHttp(" ", "\n")).keyword_search(  # type: ignore[arg-type]
            "street food", after, before, credential=CREDENTIAL
        )
    # Only the keyword search asks twice.
    with pytest.raises(BadResponse, match="empty body"):
        await YouTubeDataClient(CannedHttp("", snippet)).channel_video_ids(  # type: ignore[arg-type]
            DEMO_CHANNEL_ID, credential=CREDENTIAL
        )


# The key stays secret


async def test_no_key_in_errors_logs_or_traces(world: YouTubeWorld, caplog: pytest.LogCaptureFixture) -> None:
    """A failing call (403, 500, timeout) and a good one: the key is in no error, log record or trace."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    config = SandboxConfig(
        fail_paths={"/ytapitoken/youtube/v3/activities": 500},
        hang_paths=["/ytapitoken/youtube/v3/subscriptions"],
        hang_seconds=5,
    )
    quota_key = "quota-3c9d-secret"
    traces: list[TraceLog] = []

    async def record(trace: TraceLog) -> None:
        traces.append(trace)

    errors: list[ProviderError] = []
    with LoopbackServer(world, config) as server:
        http = ProviderHttp(base_urls=server.base_urls(), timeout=0.5, trace_sink=record)
        youtube = YouTubeDataClient(http)
        try:
            assert await youtube.channels([DEMO_CHANNEL_ID], credential=CREDENTIAL)
            spent = Credential(id="yt-9", source="ytapitoken", secrets={"key": quota_key})
            for call, expected in (
                (youtube.videos([LONG_VIDEO_ID], credential=spent), QuotaExceeded),
                (youtube.activities(DEMO_CHANNEL_ID, credential=CREDENTIAL), ProviderUnavailable),
                (youtube.subscriptions(DEMO_CHANNEL_ID, credential=CREDENTIAL), ProviderTimeout),
                (youtube.comments(MISSING_VIDEO_ID, credential=CREDENTIAL), PostMissing),
            ):
                with pytest.raises(expected) as raised:
                    await call
                errors.append(raised.value)
        finally:
            await http.aclose()
    assert len(traces) == 5 and [t.status for t in traces] == [200, 403, 500, None, 404]
    assert traces[3].error == "timeout"
    # httpx does log every request (the URL included) when its logger is at INFO or below.
    assert any(record.name == "httpx" and "/youtube/v3/" in record.getMessage() for record in caplog.records)
    for secret in (KEY, quota_key):
        for error in errors:
            assert secret not in str(error) and secret not in repr(error.args)
        for record in caplog.records:
            assert secret not in record.getMessage(), record.name
        assert secret not in caplog.text
        for trace in traces:
            assert secret not in trace.model_dump_json()
    assert all("key=" not in str(error) for error in errors)
