"""BestSolutions: pure parsers on recorded-shape fixtures, and the client against the sandbox over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest

from providers.errors import BadResponse, ProfileMissing, QuotaExceeded
from providers.http import Credential, ProviderHttp
from providers.instagram import arraybobo
from providers.instagram.bestsolutions import (
    SOURCE,
    BestSolutionsClient,
    parse_feed_page,
    parse_profile,
)
from tests.support import SandboxHttp, SandboxKnobs, load_fixture
from topics.models import Platform

ISHAAN = "59414265247"
KEY = Credential(
    id="bs-1",
    source=SOURCE,
    secrets={"x-rapidapi-key": "bs-k1", "x-rapidapi-host": "instagram-api-cheap-best-performance.p.rapidapi.com"},
)


load = partial(load_fixture, "bestsolutions")


# Profiles


def test_profile_by_handle() -> None:
    payload = load("profile.json")
    profile = parse_profile(payload, handle="Ishaan.Diaries")

    assert (profile.platform, profile.source, profile.kind) == (Platform.INSTAGRAM, SOURCE, "profile")
    assert (profile.profile_id, profile.handle) == (ISHAAN, "ishaan.diaries")
    assert profile.metrics == {"followers": 779308, "following": 354, "media_count": 23}
    assert profile.dimensions == {
        "profile_id": ISHAAN,
        "handle": "ishaan.diaries",
        "profile_pic_url": payload["hd_profile_pic_url_info"]["url"],
        "bio": "Stories from the road",
        "full_name": "Ishaan Diaries",
        "external_url": "",
        "profile_type": "business",
        "is_private": False,
        "is_verified": False,
    }


def test_profile_by_id_with_string_pk_and_count_and_missing_fields() -> None:
    profile = parse_profile(load("profile_by_id.json"), profile_id=34071474682)  # type: ignore[arg-type]

    assert (profile.profile_id, profile.handle) == ("34071474682", "ananya.diaries")
    # follower_count arrived as "2624"; media_count as null; the HD picture not at all.
    assert profile.metrics == {"followers": 2624, "following": 2148, "media_count": None}
    assert type(profile.metrics["followers"]) is int
    assert profile.dimensions["profile_pic_url"] is None
    assert profile.dimensions["profile_type"] == "personal"


def test_profile_answered_for_someone_else_is_missing() -> None:
    with pytest.raises(ProfileMissing, match=r"answered for 'ishaan\.diaries'"):
        parse_profile(load("profile.json"), handle="ishaan.diary")
    with pytest.raises(ProfileMissing, match=f"answered for id {ISHAAN}"):
        parse_profile(load("profile.json"), profile_id="59414265248")


def test_profile_refusals() -> None:
    with pytest.raises(ProfileMissing, match="User not found") as missing:
        parse_profile(load("not_found.json"), handle="nobody")
    assert missing.value.source == SOURCE
    with pytest.raises(BadResponse, match="no pk or username"):
        parse_profile({"status": "ok"})
    with pytest.raises(BadResponse):
        parse_profile([])  # type: ignore[arg-type]
    payload = load("profile.json")
    del payload["pk"]
    with pytest.raises(BadResponse, match="profile has no pk or username"):
        parse_profile(payload)
    payload = load("profile.json")
    payload["following_count"] = "some"
    with pytest.raises(BadResponse, match="following_count"):
        parse_profile(payload)


# Feed


def test_feed_page() -> None:
    payload = load("feed.json")
    page = parse_feed_page(payload)

    assert page.next_cursor == "ZmVlZDo1OTQxNDI2NTI0NzoxMg"
    assert [post.dimensions["post_type"] for post in page.items] == [
        "reels",
        "image",
        "reels",
        "reels",
        "image",
        "carousel",
        "image",
        "image",
        "reels",
        "image",
        "image",
        "carousel",
    ]
    reel, item = page.items[2], payload["items"][2]
    assert (reel.source, reel.kind, reel.shortcode) == (SOURCE, "post", "DN374d0RA9q")
    assert (reel.profile_id, reel.handle) == (ISHAAN, "ishaan.diaries")
    assert reel.publish_time == datetime(2024, 5, 13, 15, 8, 35, tzinfo=UTC)
    # like_count arrived as the string "43724".
    assert reel.metrics == {"comments": 1324, "likes": 43724, "view_count": 831080, "play_count": 1386396}
    picture = item["image_versions2"]["candidates"][0]["url"]
    assert reel.dimensions == {
        "profile_id": ISHAAN,
        "handle": "ishaan.diaries",
        "post_type": "reels",
        # The legacy lookup yielded null here; the picture is where Instagram puts it.
        "display_url": picture,
        "thumbnail_src": picture,
        "taken_at_timestamp": 1715612915,
        "caption": "Sunday reset #explore #india #love #foodie",
        "location": "Cubbon Park",
        "location_lat": 12.9716,
        "location_long": 77.5946,
        "user_tags": item["usertags"]["in"],
        "user_sponsors": None,
        "is_sponsor": None,
    }
    assert [tag["user"]["username"] for tag in reel.dimensions["user_tags"]] == [
        "kabir.home",
        "meera.studio",
        "tara.eats",
    ]


def test_feed_carousel_shows_its_first_child_and_sponsors_are_read() -> None:
    payload = load("feed.json")
    page = parse_feed_page(payload)
    carousel = page.items[5]
    child = payload["items"][5]["carousel_media"][0]["image_versions2"]["candidates"][0]["url"]
    assert "image_versions2" not in payload["items"][5]
    assert carousel.dimensions["display_url"] == carousel.dimensions["thumbnail_src"] == child
    sponsored = page.items[10]
    assert sponsored.dimensions["user_sponsors"] == [{"profile_id": "5200198347", "handle": "lumora.skin"}]
    assert sponsored.dimensions["is_sponsor"] is True


def test_feed_type_drift_and_missing_fields() -> None:
    items = parse_feed_page(load("feed.json")).items
    # The owner's pk arrived as a string.
    assert items[4].profile_id == items[4].dimensions["profile_id"] == ISHAAN
    # No like_count at all and a null caption: unknown, not zero or empty.
    assert items[6].metrics == {"comments": 456, "likes": None, "view_count": None, "play_count": None}
    assert items[6].dimensions["caption"] is None
    assert items[1].dimensions["location"] is None and items[1].dimensions["location_lat"] is None


def test_feed_last_page_and_refusals() -> None:
    page = parse_feed_page(load("feed_last_page.json"))
    assert page.next_cursor is None and len(page.items) == 11
    assert page.items[-1].publish_time == datetime(2024, 3, 15, 18, 58, 43, tzinfo=UTC)
    assert parse_feed_page({"items": [], "more_available": False, "status": "ok"}).items == []

    with pytest.raises(ProfileMissing, match="User not found"):
        parse_feed_page(load("not_found.json"))
    with pytest.raises(BadResponse, match="no items"):
        parse_feed_page({"status": "ok"})
    payload = load("feed.json")
    del payload["items"][3]["code"]
    with pytest.raises(BadResponse, match="no code"):
        parse_feed_page(payload)


# Over loopback HTTP


@pytest.fixture
def http(sandbox_http: SandboxHttp) -> ProviderHttp:
    return sandbox_http(SOURCE, arraybobo.SOURCE)


async def test_profiles_by_handle_and_by_id_agree(http: ProviderHttp) -> None:
    best = BestSolutionsClient(http)
    by_handle = await best.profile_by_handle("sana.eats", credential=KEY, request_id="r1")
    by_id = await best.profile_by_id(by_handle.profile_id, credential=KEY)

    assert by_id == by_handle
    assert by_handle.handle == "sana.eats" and by_handle.profile_id.isdigit()
    assert all(type(value) is int for value in by_handle.metrics.values())
    # Every sandboxed provider tells the same story about the same account.
    bobo = await arraybobo.ArrayBoboClient(http).profile_by_handle("sana.eats", credential=KEY)
    assert bobo.metrics == by_handle.metrics


async def test_feed_pages_to_the_end(http: ProviderHttp) -> None:
    best = BestSolutionsClient(http)
    profile = await best.profile_by_handle("kabir.fit", credential=KEY)
    posts, cursor, pages = [], None, 0
    while True:
        page = await best.posts_by_id(profile.profile_id, cursor, credential=KEY)
        posts.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert len(posts) == profile.metrics["media_count"] and pages == -(-len(posts) // 12)
    assert len({post.shortcode for post in posts}) == len(posts)
    times = [post.publish_time for post in posts]
    assert times == sorted(times, reverse=True)
    assert all(
        post.dimensions["display_url"] and post.dimensions["display_url"] == post.dimensions["thumbnail_src"]
        for post in posts
    )
    first = await arraybobo.ArrayBoboClient(http).posts_by_id(profile.profile_id, credential=KEY)
    assert [post.shortcode for post in posts[:12]] == [post.shortcode for post in first.items]
    assert [post.metrics["likes"] for post in posts[:12]] == [post.metrics["likes"] for post in first.items]


async def test_missing_profiles(http: ProviderHttp) -> None:
    best = BestSolutionsClient(http)
    with pytest.raises(ProfileMissing, match="404"):
        await best.profile_by_handle("missing_person", credential=KEY)
    with pytest.raises(ProfileMissing):
        await best.profile_by_id("not-a-number", credential=KEY)
    with pytest.raises(ProfileMissing):
        await best.posts_by_id("not-a-number", credential=KEY)


async def test_rate_limited_key_is_quota_exceeded(knobs: SandboxKnobs, http: ProviderHttp) -> None:
    knobs.set(rate_limits={"bs-k1": "2/1"})
    best = BestSolutionsClient(http)
    for _ in range(2):
        await best.profile_by_handle("sana.eats", credential=KEY)
    with pytest.raises(QuotaExceeded) as limited:
        await best.profile_by_handle("sana.eats", credential=KEY)
    assert limited.value.source == SOURCE and 0 < limited.value.retry_after <= 1
