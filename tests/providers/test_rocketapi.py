"""RocketAPI: pure parsers on recorded-shape fixtures, and the client against the sandbox over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest

from providers.errors import (
    AuthExpired,
    BadResponse,
    Forbidden,
    PostMissing,
    ProfileMissing,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.instagram import arraybobo
from providers.instagram.rocketapi import (
    SOURCE,
    RocketAPIClient,
    parse_followers_page,
    parse_post,
    parse_reels_page,
    parse_stories,
    refusal,
)
from providers.sandbox import SandboxConfig, SandboxServer
from tests.support import SandboxHttp, load_fixture
from topics.models import Platform, Post

MEERA = "31566076502"
SANA = "67083531415"
TARA = "60550173631"
TOKEN = Credential(id="rocket-1", source=SOURCE, secrets={"Authorization": "Token rk-1"})
BOBO_KEY = Credential(id="bobo-1", source=arraybobo.SOURCE, secrets={"x-rapidapi-key": "bobo-1"})


load = partial(load_fixture, "rocketapi")


def body(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["response"]["body"]


# Post by shortcode


def test_video_post_by_shortcode() -> None:
    payload = load("media_info_video.json")
    post = parse_post(payload, shortcode="C7vaxH0mGr9")
    item = body(payload)["items"][0]

    assert (post.platform, post.source, post.kind) == (Platform.INSTAGRAM, SOURCE, "post")
    assert (post.shortcode, post.profile_id, post.handle) == ("C7vaxH0mGr9", MEERA, "meera.beats")
    assert post.publish_time == datetime(2024, 5, 16, 10, 4, 55, tzinfo=UTC)
    assert post.metrics == {
        "comments": 6,
        "likes": 247,
        "play_count": 7818,
        "video_duration": 38.314,
        "reshare_count": 6,
    }
    picture = item["image_versions2"]["candidates"][0]["url"]
    assert post.dimensions == {
        "profile_id": MEERA,
        "handle": "meera.beats",
        "post_type": "reels",
        "display_url": picture,
        "thumbnail_src": picture,
        "taken_at_timestamp": 1715853895,
        "caption": "Behind the scenes #ootd #india #travel",
        "user_tags": None,
        "location": None,
        "is_paid_partnership": False,
    }


def test_carousel_with_string_count_owner_by_pk_and_no_caption() -> None:
    payload = load("media_info_carousel.json")
    post = parse_post(payload)
    item = body(payload)["items"][0]

    assert post.dimensions["post_type"] == "carousel"
    # user.id was absent: the owner comes from user.pk instead.
    assert post.profile_id == MEERA
    assert post.metrics == {
        "comments": 2,
        "likes": 73,
        "play_count": None,
        "video_duration": None,
        "reshare_count": None,
    }
    assert post.dimensions["display_url"] == item["carousel_media"][0]["image_versions2"]["candidates"][0]["url"]
    assert post.dimensions["caption"] is None


def test_post_refusals() -> None:
    with pytest.raises(PostMissing, match="Media not found"):
        parse_post(load("media_not_found.json"), shortcode="missing1")
    with pytest.raises(PostMissing, match="answered for 'C7vaxH0mGr9'"):
        parse_post(load("media_info_video.json"), shortcode="C7vaxH0mGr8")
    empty = load("media_info_video.json")
    body(empty)["items"] = []
    with pytest.raises(PostMissing, match="no items"):
        parse_post(empty)
    with pytest.raises(QuotaExceeded, match="request limit of your plan"):
        parse_post(load("plan_exhausted.json"))
    with pytest.raises(AuthExpired, match="token"):
        parse_post(load("invalid_token.json"))
    with pytest.raises(ProviderUnavailable, match="429"):
        parse_post(load("instagram_throttled.json"))
    with pytest.raises(BadResponse, match=r"response\.body"):
        parse_post({"status": "done", "response": {"status_code": 200, "body": None}})
    bad = load("media_info_video.json")
    body(bad)["items"][0]["location"] = "Mumbai"
    with pytest.raises(BadResponse, match="location"):
        parse_post(bad)


@pytest.mark.parametrize(
    ("payload", "http_status", "error"),
    [
        ({"status": "error", "message": "You have reached the request limit of your plan."}, 403, QuotaExceeded),
        ({"status": "error", "message": "Not enough balance"}, 200, QuotaExceeded),
        ({"status": "error", "message": "Invalid token"}, 403, AuthExpired),
        ({"status": "error", "message": "Unauthorized"}, 401, AuthExpired),
        ({"status": "error", "message": "Access denied"}, 403, Forbidden),
        ({"status": "error"}, 400, BadResponse),
    ],
)
def test_rocketapi_refusals_by_body(payload: dict[str, Any], http_status: int, error: type[Exception]) -> None:
    assert type(refusal(payload, http_status=http_status)) is error


def test_quota_refusal_carries_retry_after() -> None:
    exc = refusal(load("plan_exhausted.json"), http_status=403, retry_after=60.0)
    assert isinstance(exc, QuotaExceeded) and exc.retry_after == 60.0 and exc.source == SOURCE


# Reels


def test_reels_page() -> None:
    payload = load("clips.json")
    page = parse_reels_page(payload)
    media = body(payload)["items"][0]["media"]

    assert page.next_cursor == "Y2xpcHM6NjcwODM1MzE0MTU6NDM"
    assert len(page.items) == 12 and {post.dimensions["post_type"] for post in page.items} == {"reels"}
    first = page.items[0]
    assert (first.shortcode, first.profile_id, first.handle) == ("Cp2XcuTb7YH", SANA, "sana.studio")
    assert first.publish_time == datetime(2024, 5, 10, 10, 15, 8, tzinfo=UTC)
    assert first.metrics == {
        "comments": 8,
        "likes": 242,
        "view_count": 4161,
        "play_count": 7372,
        "video_duration": 79.01,
        "reshare_count": 6,
    }
    assert first.dimensions == {
        "profile_id": SANA,
        "handle": "sana.studio",
        "post_type": "reels",
        "display_url": media["video_versions"][0]["url"],
        "thumbnail_src": media["image_versions2"]["candidates"][0]["url"],
        "taken_at_timestamp": 1715336108,
        "caption": "Sunday reset #ootd #reels #love",
        "user_tags": media["usertags"]["in"],
        "user_sponsors": None,
        "is_sponsor": None,
    }


def test_reels_drift_and_sponsors() -> None:
    items = parse_reels_page(load("clips.json")).items
    # The owner pk arrived as a string; reshare_count not at all.
    assert items[3].profile_id == SANA
    assert items[5].metrics["reshare_count"] is None
    assert items[5].dimensions["user_sponsors"] == [{"profile_id": "47773710203", "handle": "urbanloom"}]
    assert items[4].dimensions["caption"] is None


def test_reels_last_page_and_refusals() -> None:
    payload = load("clips.json")
    body(payload)["paging_info"] = {"more_available": False, "max_id": None}
    assert parse_reels_page(payload).next_cursor is None
    with pytest.raises(ProfileMissing, match="Media not found"):
        parse_reels_page(load("media_not_found.json"))
    with pytest.raises(BadResponse, match="no items"):
        parse_reels_page({"status": "done", "response": {"status_code": 200, "body": {"status": "ok"}}})
    payload = load("clips.json")
    del body(payload)["items"][2]["media"]
    with pytest.raises(BadResponse, match="no media"):
        parse_reels_page(payload)


# Stories


def test_stories_add_mentions_location_duration_and_partnership() -> None:
    payload = load("stories.json")
    stories = parse_stories(payload, profile_id=TARA)
    items = body(payload)["reels"][TARA]["items"]

    assert [story.shortcode for story in stories] == [
        "5142376223864704405",
        "4824443923661195625",
        "4629796858836897202",
        "4448141939264484008",
    ]
    mentioned = stories[1]
    assert (mentioned.source, mentioned.kind, mentioned.handle) == (SOURCE, "story", "tara.studio")
    assert mentioned.dimensions["user_tags"] == items[1]["reel_mentions"]
    assert [tag["user"]["username"] for tag in mentioned.dimensions["user_tags"]] == ["kabir.fit"]
    assert mentioned.dimensions["location"]["name"] == "Marine Drive"
    video = stories[2]
    assert video.metrics == {"video_duration": 5.509}
    assert video.dimensions == {
        "post_id": "4629796858836897202",
        "profile_id": TARA,
        "handle": "tara.studio",
        "post_type": "story",
        "content_type": "video",
        "display_url": items[2]["video_versions"][0]["url"],
        "thumbnail_src": items[2]["image_versions2"]["candidates"][0]["url"],
        "taken_at_timestamp": 1716202687,
        "story_links": ["linktr.ee/tara.studio"],
        "story_hashtags": None,
        "user_sponsors": None,
        "is_sponsor": None,
        "user_tags": items[2]["reel_mentions"],
        "location": None,
        "is_paid_partnership": False,
    }
    assert stories[3].dimensions["is_paid_partnership"] is True
    assert stories[3].metrics == {"video_duration": None}


def test_no_stories_and_refusals() -> None:
    assert parse_stories(load("stories_none.json"), profile_id=TARA) == []
    assert parse_stories(load("stories.json"), profile_id=MEERA) == []
    with pytest.raises(ProfileMissing):
        parse_stories(load("media_not_found.json"), profile_id=TARA)
    payload = load("stories.json")
    body(payload)["reels"][TARA]["items"][0]["location"] = ["Mumbai"]
    with pytest.raises(BadResponse, match="location"):
        parse_stories(payload, profile_id=TARA)


# Followers


def test_followers_page() -> None:
    payload = load("followers.json")
    page = parse_followers_page(payload, profile_id=MEERA)
    user = body(payload)["users"][0]

    assert page.next_cursor == "12" and len(page.items) == 12
    first = page.items[0]
    assert (first.platform, first.source, first.kind, first.relationship_type) == (
        Platform.INSTAGRAM,
        SOURCE,
        "relationship",
        "FOLLOWS",
    )
    # The follower is the source of the relationship, the profile its target.
    assert (first.source_profile_id, first.target_profile_id) == ("3316649498", MEERA)
    assert first.source_dimensions == {
        "handle": "aarav.fit0",
        "full_name": "Aarav Fit",
        "profile_pic_url": user["profile_pic_url"],
        "is_private": False,
        "is_verified": False,
    }
    assert first.target_dimensions == {}
    # This follower's pk_id was missing; its numeric pk stands in.
    assert page.items[3].source_profile_id == "13329853022"


def test_followers_last_page_and_refusals() -> None:
    page = parse_followers_page(load("followers_last_page.json"), profile_id=int(MEERA))  # type: ignore[arg-type]
    assert page.next_cursor is None
    assert [follow.source_dimensions["handle"] for follow in page.items] == [
        "kabir.studio3290",
        "meera.style3291",
        "kabir.beats3292",
    ]
    assert {follow.target_profile_id for follow in page.items} == {MEERA}
    with pytest.raises(ProfileMissing):
        parse_followers_page(load("media_not_found.json"), profile_id=MEERA)
    with pytest.raises(BadResponse, match="no users"):
        parse_followers_page({"status": "done", "response": {"status_code": 200, "body": {}}}, profile_id=MEERA)
    payload = load("followers.json")
    del body(payload)["users"][1]["pk_id"], body(payload)["users"][1]["pk"]
    with pytest.raises(BadResponse, match="no pk"):
        parse_followers_page(payload, profile_id=MEERA)


# Over loopback HTTP


@pytest.fixture
def http(sandbox_http: SandboxHttp) -> ProviderHttp:
    return sandbox_http(SOURCE, arraybobo.SOURCE)


async def test_post_by_shortcode_is_arraybobo_s_post(http: ProviderHttp) -> None:
    rocket, bobo = RocketAPIClient(http), arraybobo.ArrayBoboClient(http)
    profile = await bobo.profile_by_handle("neel.beats", credential=BOBO_KEY)
    timeline = await bobo.posts_by_id(profile.profile_id, credential=BOBO_KEY)
    for listed in timeline.items[:6]:
        post = await rocket.post_by_shortcode(listed.shortcode, credential=TOKEN, request_id="r1")
        assert (post.shortcode, post.profile_id, post.handle, post.publish_time) == (
            listed.shortcode,
            listed.profile_id,
            listed.handle,
            listed.publish_time,
        )
        assert (post.metrics["likes"], post.metrics["comments"]) == (
            listed.metrics["likes"],
            listed.metrics["comments"],
        )
        assert post.dimensions["post_type"] == listed.dimensions["post_type"]
        assert post.dimensions["display_url"]


async def test_reels_page_to_the_end(http: ProviderHttp) -> None:
    rocket, bobo = RocketAPIClient(http), arraybobo.ArrayBoboClient(http)
    profile = await bobo.profile_by_handle("kabir.fit", credential=BOBO_KEY)

    async def every(client: Any, credential: Credential) -> tuple[list[Post], int]:
        reels, cursor, pages = [], None, 0
        while True:
            page = await client.reels(profile.profile_id, cursor, credential=credential)
            reels.extend(page.items)
            pages += 1
            if page.next_cursor is None:
                return reels, pages
            cursor = page.next_cursor

    reels, pages = await every(rocket, TOKEN)
    expected, _ = await every(bobo, BOBO_KEY)
    assert pages > 1
    assert [reel.shortcode for reel in reels] == [reel.shortcode for reel in expected]
    assert all(reel.metrics["video_duration"] > 0 and reel.metrics["reshare_count"] is not None for reel in reels)


async def test_stories_are_arraybobo_s_stories(http: ProviderHttp) -> None:
    rocket, bobo = RocketAPIClient(http), arraybobo.ArrayBoboClient(http)
    found = 0
    for number in range(20):
        profile = await bobo.profile_by_handle(f"story{number}.teller", credential=BOBO_KEY)
        stories = await rocket.stories(profile.profile_id, credential=TOKEN)
        expected = await bobo.stories(profile.profile_id, credential=BOBO_KEY)
        assert [story.shortcode for story in stories] == [story.shortcode for story in expected]
        assert [story.publish_time for story in stories] == [story.publish_time for story in expected]
        assert {story.source for story in stories} <= {SOURCE}
        found += len(stories)
    assert found > 0


async def test_followers_page_to_the_end(http: ProviderHttp) -> None:
    rocket = RocketAPIClient(http)
    profile = await arraybobo.ArrayBoboClient(http).profile_by_handle("kabir.fit", credential=BOBO_KEY)
    follows, cursor, pages = [], None, 0
    while True:
        page = await rocket.followers(profile.profile_id, cursor, credential=TOKEN)
        follows.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert len(follows) == profile.metrics["followers"] and pages == -(-len(follows) // 100)
    assert len({follow.source_profile_id for follow in follows}) == len(follows)
    assert {follow.target_profile_id for follow in follows} == {profile.profile_id}
    assert {follow.source_dimensions["is_private"] for follow in follows} == {True, False}


async def test_refusals_over_http(http: ProviderHttp) -> None:
    rocket = RocketAPIClient(http)
    with pytest.raises(PostMissing, match="Media not found"):
        await rocket.post_by_shortcode("missingPost1", credential=TOKEN)
    with pytest.raises(ProfileMissing, match="not an Instagram user id"):
        await rocket.reels("not-a-number", credential=TOKEN)
    exhausted = Credential(id="rocket-2", source=SOURCE, secrets={"Authorization": "Token exhausted-plan"})
    with pytest.raises(QuotaExceeded, match="request limit"):
        await rocket.followers("1164424396", credential=exhausted)
    anonymous = Credential(id="rocket-3", source=SOURCE, secrets={})
    with pytest.raises(AuthExpired):
        await rocket.stories("1164424396", credential=anonymous)


async def test_rate_limited_token_is_quota_exceeded(sandbox_server: SandboxServer, http: ProviderHttp) -> None:
    def put(config: SandboxConfig) -> None:
        httpx.put(f"{sandbox_server.url}/_sandbox/config", json=config.model_dump(mode="json")).raise_for_status()

    put(SandboxConfig(rate_limits={"Token rk-limited": "1/30"}))
    try:
        limited = Credential(id="rocket-4", source=SOURCE, secrets={"Authorization": "Token rk-limited"})
        rocket = RocketAPIClient(http)
        await rocket.post_by_shortcode("CxYz123abcD", credential=limited)
        with pytest.raises(QuotaExceeded) as exc:
            await rocket.post_by_shortcode("CxYz123abcD", credential=limited)
        assert 29 < exc.value.retry_after <= 30
    finally:
        put(SandboxConfig())
