"""NeoTank: pure parsers on recorded-shape fixtures, and the client against the sandbox over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest

from providers.errors import AuthExpired, BadResponse, ProfileMissing
from providers.http import Credential, ProviderHttp
from providers.instagram import arraybobo
from providers.instagram.neotank import SOURCE, NeoTankClient, parse_posts_page, parse_profile
from tests.support import SandboxHttp, load_fixture
from topics.models import Platform

NEEL = "24788790792"
KEY = Credential(
    id="neo-1", source=SOURCE, secrets={"x-rapidapi-key": "neo-k1", "x-rapidapi-host": "instagram130.p.rapidapi.com"}
)


load = partial(load_fixture, "neotank")


# Profiles


def test_profile_by_handle() -> None:
    payload = load("account_info.json")
    profile = parse_profile(payload, handle="@neel.fit")

    assert (profile.platform, profile.source, profile.kind) == (Platform.INSTAGRAM, SOURCE, "profile")
    assert (profile.profile_id, profile.handle) == (NEEL, "neel.fit")
    # edge_follow.count arrived as the string "1616".
    assert profile.metrics == {"followers": 4131, "following": 1616, "media_count": 31, "reels_media_count": 12}
    assert profile.dimensions == {
        "profile_id": NEEL,
        "handle": "neel.fit",
        "full_name": "Neel Fit",
        "bio": "Colour, light and everyday faces",
        "profile_pic_url": payload["profile_pic_url_hd"],
        "external_url": "https://linktr.ee/neel.fit",
        # fbid arrived as a number.
        "fbid": "17841424788790792",
        "category": "Artist",
        "business_category": "Artist",
        "is_private": False,
        "is_verified": False,
        "is_business": True,
        "is_professional": True,
        "is_business_or_creator": True,
    }


def test_profile_carries_its_first_timeline_page_as_posts() -> None:
    payload = load("account_info.json")
    profile = parse_profile(payload)
    page = parse_posts_page(load("account_medias.json"))

    assert len(profile.embedded_posts) == 12
    assert {post.source for post in profile.embedded_posts} == {SOURCE}
    assert [post.shortcode for post in profile.embedded_posts] == [post.shortcode for post in page.items]
    assert profile.embedded_posts[0].metrics == {"comments": 2, "likes": 197, "view_count": None}


def test_profile_missing_fields_stay_missing() -> None:
    payload = load("account_info.json")
    for key in (
        "profile_pic_url_hd",
        "is_business_account",
        "is_professional_account",
        "edge_felix_video_timeline",
        "edge_owner_to_timeline_media",
    ):
        del payload[key]
    profile = parse_profile(payload)
    assert profile.metrics["media_count"] is None and profile.metrics["reels_media_count"] is None
    assert profile.dimensions["profile_pic_url"] == payload["profile_pic_url"]
    assert profile.dimensions["is_business_or_creator"] is None
    assert profile.embedded_posts == []


def test_profile_refusals() -> None:
    with pytest.raises(ProfileMissing, match=r"answered for 'neel\.fit'"):
        parse_profile(load("account_info.json"), handle="neel.fitt")
    with pytest.raises(ProfileMissing, match="Page not found"):
        parse_profile(load("not_found.json"))
    with pytest.raises(BadResponse, match="no id or username: Invalid username"):
        parse_profile(load("invalid_username.json"))
    with pytest.raises(BadResponse, match="no id or username"):
        parse_profile({"id": NEEL, "username": None})
    payload = load("account_info.json")
    payload["edge_followed_by"]["count"] = "many"
    with pytest.raises(BadResponse, match=r"edge_followed_by\.count"):
        parse_profile(payload)


# Timeline pages


def test_posts_page() -> None:
    payload = load("account_medias.json")
    page = parse_posts_page(payload, profile_id=NEEL)
    node = payload["edges"][0]["node"]

    assert page.next_cursor == "bWVkaWFzOjI0Nzg4NzkwNzkyOjEy"
    assert len(page.items) == 12
    first = page.items[0]
    assert (first.source, first.kind, first.shortcode) == (SOURCE, "post", "DIs5ZWtf0aA")
    assert first.publish_time == datetime(2024, 5, 18, 6, 59, 27, tzinfo=UTC)
    assert first.dimensions == {
        "profile_id": NEEL,
        "handle": "neel.fit",
        "post_type": "carousel",
        "display_url": node["display_url"],
        "thumbnail_src": node["thumbnail_src"],
        "taken_at_timestamp": 1716015567,
        "user_tags": [],
        "user_sponsors": [],
        "is_sponsor": False,
        "caption": "Golden hour never disappoints #explore #foodie #india",
    }


def test_posts_last_page_with_a_numeric_owner_id() -> None:
    page = parse_posts_page(load("account_medias_last_page.json"), profile_id=int(NEEL))  # type: ignore[arg-type]
    assert page.next_cursor is None and len(page.items) == 7
    assert page.items[1].profile_id == NEEL
    assert page.items[-1].publish_time == datetime(2024, 2, 17, 14, 52, 2, tzinfo=UTC)


def test_posts_refusals() -> None:
    with pytest.raises(ProfileMissing, match="answered with posts of"):
        parse_posts_page(load("account_medias.json"), profile_id="1164424396")
    with pytest.raises(BadResponse, match="no edges"):
        parse_posts_page(load("account_info.json"))
    payload = load("account_medias.json")
    payload["edges"][2] = {"cursor": "x"}
    with pytest.raises(BadResponse, match="no node"):
        parse_posts_page(payload)
    empty = {"count": 0, "page_info": {"has_next_page": False, "end_cursor": None}, "edges": []}
    assert parse_posts_page(empty, profile_id=NEEL).items == []


# Over loopback HTTP


@pytest.fixture
def http(sandbox_http: SandboxHttp) -> ProviderHttp:
    return sandbox_http(SOURCE, arraybobo.SOURCE)


async def test_profile_and_timeline_to_the_end(http: ProviderHttp) -> None:
    neo = NeoTankClient(http)
    profile = await neo.profile_by_handle("rohan.clicks", credential=KEY, request_id="r1")
    bobo = await arraybobo.ArrayBoboClient(http).profile_by_handle("rohan.clicks", credential=KEY)
    assert (profile.profile_id, profile.metrics["followers"], profile.metrics["media_count"]) == (
        bobo.profile_id,
        bobo.metrics["followers"],
        bobo.metrics["media_count"],
    )

    posts, cursor, pages = [], None, 0
    while True:
        page = await neo.posts_by_id(profile.profile_id, cursor, credential=KEY)
        posts.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # 80 asked per page, 50 served: Instagram's cap.
    assert pages == 2 and len(posts) == profile.metrics["media_count"] > 50
    assert len({post.shortcode for post in posts}) == len(posts)
    assert [post.shortcode for post in profile.embedded_posts] == [post.shortcode for post in posts[:12]]
    assert profile.metrics["reels_media_count"] == sum(post.dimensions["post_type"] == "reels" for post in posts)


async def test_refusals_over_http(http: ProviderHttp) -> None:
    neo = NeoTankClient(http)
    with pytest.raises(ProfileMissing, match="404"):
        await neo.profile_by_handle("missing_person", credential=KEY)
    with pytest.raises(ProfileMissing, match="422"):
        await neo.profile_by_handle("not a handle!", credential=KEY)
    with pytest.raises(ProfileMissing, match="422"):
        await neo.posts_by_id("not-a-number", credential=KEY)
    keyless = Credential(id="neo-2", source=SOURCE, secrets={})
    with pytest.raises(AuthExpired, match="Invalid API key"):
        await neo.profile_by_handle("rohan.clicks", credential=keyless)
