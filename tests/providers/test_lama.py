"""Lama: pure parsers on recorded-shape fixtures, the client's reading of refusals, and every
operation over real loopback HTTP against the sandbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from providers.errors import (
    AuthExpired,
    BadResponse,
    Forbidden,
    InputRejected,
    PostMissing,
    ProfileMissing,
    QuotaExceeded,
)
from providers.http import Credential
from providers.instagram.lama import (
    SOURCE,
    LamaClient,
    parse_followers_chunk,
    parse_following_chunk,
    parse_gql_profile,
    parse_hashtag_chunk,
    parse_post,
    parse_posts_chunk,
    parse_stories,
    parse_v1_profile,
)
from providers.paging import Page
from tests.support import OneAnswerHttp, SandboxHttp, SandboxKnobs, all_pages, load_fixture
from topics.models import Platform, Relationship

ROHAN = "61827127850"
MEERA = "32333248704"
KABIR = "1164424396"
CREDENTIAL = Credential(id="lama-1", source=SOURCE, secrets={"x-access-key": "lama-k1"})


load = partial(load_fixture, "lama")


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# Profiles


def test_web_profile_by_handle() -> None:
    payload = load("a1_user.json")
    profile = parse_gql_profile(payload, handle="@Rohan.Clicks")
    user = payload["graphql"]["user"]

    assert (profile.platform, profile.source, profile.kind) == (Platform.INSTAGRAM, SOURCE, "profile")
    assert (profile.profile_id, profile.handle) == (ROHAN, "rohan.clicks")
    assert profile.metrics == {"followers": 1378, "following": 2125, "media_count": 60, "reels_media_count": 14}
    assert profile.dimensions == {
        "profile_id": ROHAN,
        "handle": "rohan.clicks",
        "full_name": "Rohan Clicks",
        "bio": "Stories from the road",
        "profile_pic_url": user["profile_pic_url_hd"],
        "fbid": "17841461827127850",
        "category": "Public figure",
        "business_category": None,
        "external_url": None,
        "is_private": False,
        "is_verified": False,
        "is_business": False,
        "is_professional": True,
        "is_business_or_creator": True,
        "seo_category_info": [["Public figure", "public_figure"]],
    }
    # No raw nested lists: the embedded posts and videos are posts of their own, each once.
    assert not {"recent_posts", "recent_videos"} & profile.dimensions.keys()
    assert [post.shortcode for post in profile.embedded_posts] == [
        "CntJV71FRog",
        "C8zGfBEgfc9",
        "DR5DoGT7tRa",
        "Cm_AxLjW7F3",
        "C7W1VghDyXr",
    ]
    first = profile.embedded_posts[0]
    node = user["edge_owner_to_timeline_media"]["edges"][0]["node"]
    assert (first.source, first.profile_id, first.handle, first.publish_time) == (
        SOURCE,
        ROHAN,
        "rohan.clicks",
        utc(1716151660),
    )
    assert first.metrics == {"comments": 0, "likes": 93, "view_count": None}
    assert first.dimensions == {
        "profile_id": ROHAN,
        "handle": "rohan.clicks",
        "post_type": "image",
        "display_url": node["display_url"],
        "thumbnail_src": node["thumbnail_src"],
        "taken_at_timestamp": 1716151660,
        "caption": "Saved the best for last",
    }
    assert profile.embedded_posts[-1].dimensions["post_type"] == "reels"


def test_web_profile_without_posts_or_type_flags() -> None:
    payload = load("a1_user.json")
    user = payload["graphql"]["user"]
    for edge in ("edge_owner_to_timeline_media", "edge_felix_video_timeline"):
        user[edge] = {"count": "0", "page_info": {"has_next_page": False, "end_cursor": None}, "edges": []}
    del user["is_business_account"], user["is_professional_account"]
    profile = parse_gql_profile(payload)
    assert (profile.metrics["media_count"], profile.embedded_posts) == (0, [])
    assert profile.dimensions["is_business_or_creator"] is None


def test_web_profile_refusals() -> None:
    with pytest.raises(ProfileMissing, match=r"answered for 'rohan\.clicks'"):
        parse_gql_profile(load("a1_user.json"), handle="rohan_clicks")
    with pytest.raises(BadResponse, match=r"graphql\.user"):
        parse_gql_profile(load("not_found_user.json"))
    payload = load("a1_user.json")
    del payload["graphql"]["user"]["id"]
    with pytest.raises(BadResponse, match="no id or username"):
        parse_gql_profile(payload)


def test_profile_by_id() -> None:
    payload = load("user_by_id.json")
    profile = parse_v1_profile(payload, profile_id="37384621941")

    assert (profile.profile_id, profile.handle) == ("37384621941", "vikram.studio")
    assert profile.metrics == {"followers": 1309519, "following": 2414, "media_count": 38}
    assert profile.dimensions == {
        "profile_id": "37384621941",
        "handle": "vikram.studio",
        "profile_pic_url": payload["profile_pic_url_hd"],
        "fbid": "17841437384621941",
        "category": "Artist",
        "business_category": None,
        "is_business": False,
        "city": "Chennai, Tamil Nadu",
        "location_lat": 13.0827,
        "location_long": 80.2707,
        "public_email": "vikramstudio@example.com",
        "contact_phone": "+91 9781569547",
    }


def test_profile_by_id_with_a_numeric_pk_string_counts_and_nulls() -> None:
    profile = parse_v1_profile(load("user_by_id_personal.json"), profile_id=KABIR)
    assert profile.profile_id == KABIR
    assert profile.metrics == {"followers": 398, "following": 2176, "media_count": 71}
    assert (profile.dimensions["profile_pic_url"], profile.dimensions["location_lat"]) == (None, None)
    with pytest.raises(ProfileMissing, match="answered for id 1164424396"):
        parse_v1_profile(load("user_by_id_personal.json"), profile_id="1164424397")
    with pytest.raises(BadResponse, match="no pk"):
        parse_v1_profile(load("not_found_user.json"))


# Posts


def test_timeline_chunk() -> None:
    payload = load("medias_chunk.json")
    page = parse_posts_chunk(payload)
    first, media = page.items[0], payload[0][0]

    assert page.next_cursor == payload[1]
    assert [post.shortcode for post in page.items] == [
        "DexzOw9RxwA",
        "Cz3wX2Ms_kd",
        "DI9tg7cINY6",
        "DeDqqArjbNX",
        "CzJnzF6-pB0",
        "DIPk8LKZ22R",
    ]
    assert (first.source, first.profile_id, first.handle, first.publish_time) == (
        SOURCE,
        MEERA,
        "meera.makeup",
        utc(1716188086),
    )
    # A photo's video fields are Lama's zero defaults, not measurements.
    assert first.metrics == {
        "comments": 28,
        "likes": 859,
        "view_count": None,
        "play_count": None,
        "video_duration": None,
    }
    assert first.dimensions == {
        "profile_id": MEERA,
        "handle": "meera.makeup",
        "short_code": "DexzOw9RxwA",
        "post_type": "image",
        "product_type": "feed",
        "display_url": media["thumbnail_url"],
        "thumbnail_src": media["thumbnail_url"],
        "taken_at_timestamp": 1716188086,
        "caption": "Monsoon mood #reels",
        "user_tags": [],
        "location": None,
        "location_lat": None,
        "location_long": None,
    }


def test_timeline_chunk_videos_carousels_and_type_drift() -> None:
    payload = load("medias_chunk.json")
    items = parse_posts_chunk(payload).items
    video = items[1]
    assert video.profile_id == MEERA  # sent as a number
    assert video.metrics == {
        "comments": 5,
        "likes": 189,
        "view_count": 17566,
        "play_count": 37651,
        "video_duration": 58.967,
    }
    assert video.dimensions["display_url"] == payload[0][1]["video_url"]
    assert (video.dimensions["location"], video.dimensions["location_lat"], video.dimensions["location_long"]) == (
        "Koregaon Park",
        18.5204,
        73.8567,
    )
    carousel = items[2]
    assert carousel.metrics["likes"] == 790  # sent as a string
    assert carousel.dimensions["thumbnail_src"] == payload[0][2]["resources"][0]["thumbnail_url"]
    assert carousel.dimensions["post_type"] == "carousel"
    assert items[3].dimensions["caption"] is None
    assert items[4].metrics["comments"] is None


def test_timeline_last_chunk_and_refusals() -> None:
    assert parse_posts_chunk(load("medias_chunk_last.json")).next_cursor is None
    payload = load("medias_chunk.json")
    # A cursor after an empty chunk leads nowhere: the list has ended.
    assert parse_posts_chunk([[], payload[1]]) == Page(items=[], next_cursor=None)
    with pytest.raises(BadResponse, match=r"\[items, cursor\]"):
        parse_posts_chunk(load("not_found_user.json"))
    with pytest.raises(BadResponse, match=r"\[items, cursor\]"):
        parse_posts_chunk([payload[0]])
    del payload[0][0]["code"]
    with pytest.raises(BadResponse, match="no code"):
        parse_posts_chunk(payload)


def test_video_by_shortcode() -> None:
    payload = load("a1_media_video.json")
    post = parse_post(payload, shortcode="Cz3wX2Ms_kd")
    media = payload["items"][0]

    assert (post.shortcode, post.profile_id, post.handle, post.publish_time) == (
        "Cz3wX2Ms_kd",
        MEERA,
        "meera.makeup",
        utc(1715895703),
    )
    assert post.metrics == {
        "comments": 5,
        "likes": 189,
        "view_count": 17566,
        "play_count": 37651,
        "video_duration": 58.967,
    }
    assert post.dimensions == {
        "profile_id": MEERA,
        "handle": "meera.makeup",
        "post_type": "reels",
        "display_url": media["video_versions"][0]["url"],
        "thumbnail_src": media["image_versions2"]["candidates"][0]["url"],
        "taken_at_timestamp": 1715895703,
        "caption": "Swipe for the full look #love #explore #weekend",
        "user_tags": None,
        "location": "Koregaon Park",
        "location_lat": 18.5204,
        "location_long": 73.8567,
    }


def test_carousel_by_shortcode_and_refusals() -> None:
    payload = load("a1_media_carousel.json")
    post = parse_post(payload, shortcode="DI9tg7cINY6")
    first_item = payload["items"][0]["carousel_media"][0]["image_versions2"]["candidates"][0]["url"]
    assert post.dimensions["display_url"] == post.dimensions["thumbnail_src"] == first_item
    assert post.metrics["view_count"] is None

    with pytest.raises(PostMissing, match="answered for 'DI9tg7cINY6'"):
        parse_post(payload, shortcode="DI9tg7cINY7")
    with pytest.raises(PostMissing, match="no media"):
        parse_post(load("not_found_media.json"))
    with pytest.raises(PostMissing, match="no media"):
        parse_post({"items": [], "num_results": 0})


def test_stories() -> None:
    payload = load("stories.json")
    stories = parse_stories(payload)

    assert [story.shortcode for story in stories] == [
        "4964872647340165379",
        "4679680634841709926",
        "4765848347990890897",
    ]
    video = stories[0]
    assert (video.kind, video.source, video.profile_id, video.handle, video.publish_time) == (
        "story",
        SOURCE,
        "55149616087",
        "diya.eats",
        datetime(2024, 5, 20, 17, 44, 11, tzinfo=UTC),
    )
    assert video.metrics == {}
    assert video.dimensions == {
        "post_id": "4964872647340165379",
        "profile_id": "55149616087",
        "handle": "diya.eats",
        "post_type": "story",
        "content_type": "video",
        "display_url": payload[0]["video_url"],
        "thumbnail_src": payload[0]["thumbnail_url"],
        "taken_at_timestamp": 1716227051,
        "story_links": [],
        "story_hashtags": [],
    }
    picture = stories[2]
    assert picture.dimensions["content_type"] == "image"
    assert picture.dimensions["display_url"] == picture.dimensions["thumbnail_src"] == payload[2]["thumbnail_url"]
    assert picture.dimensions["story_links"] == ["https://linktr.ee/diya.eats"]
    assert picture.dimensions["story_hashtags"] == ["bookstagram", "mumbai"]


def test_story_refusals() -> None:
    assert parse_stories([]) == []
    with pytest.raises(BadResponse, match="not a list"):
        parse_stories(load("private_account.json"))
    payload = load("stories.json")
    payload[1]["taken_at"] = "yesterday"
    with pytest.raises(BadResponse, match="not a time"):
        parse_stories(payload)
    payload[1]["taken_at"] = "2024-05-20T22:45:31"
    with pytest.raises(BadResponse, match="no time zone"):
        parse_stories(payload)
    payload = load("stories.json")
    del payload[0]["pk"]
    with pytest.raises(BadResponse, match="no pk"):
        parse_stories(payload)


def test_hashtag_chunk() -> None:
    payload = load("hashtag_chunk.json")
    page = parse_hashtag_chunk(payload)

    assert page.next_cursor == "aGFzaHRhZzp0cmF2ZWw6NA"
    first = page.items[0]
    assert (first.shortcode, first.profile_id, first.handle) == ("DN6FI0f44sg", "59009379706", "asha.corner")
    assert first.metrics == {
        "comments": 18,
        "likes": 1143,
        "view_count": None,
        "play_count": None,
        "video_duration": None,
    }
    assert {
        key: first.dimensions[key]
        for key in ("full_name", "is_paid_partnership", "location", "location_city", "caption")
    } == {
        "full_name": "Asha Corner",
        "is_paid_partnership": False,
        "location": "Hauz Khas Village",
        "location_city": "New Delhi, India",
        "caption": "Saved the best for last #travel #india #weekend #love",
    }
    assert (page.items[1].dimensions["location"], page.items[1].dimensions["location_city"]) == (None, None)
    assert page.items[2].profile_id == "45224519767" and page.items[2].dimensions["is_paid_partnership"] is True
    assert page.items[3].metrics["likes"] == 23


# Relationships


def test_followers_chunk() -> None:
    payload = load("followers_chunk.json")
    page = parse_followers_chunk(payload, KABIR)

    assert page.next_cursor == "Zm9sbG93ZXJzOjExNjQ0MjQzOTY6NQ"
    assert page.items[0] == Relationship(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        source_profile_id="60176246291",
        target_profile_id=KABIR,
        source_dimensions={
            "handle": "private.farah.miles0",
            "full_name": "Private Farah Miles",
            "profile_pic_url": payload[0][0]["profile_pic_url"],
            "is_private": True,
            "is_verified": False,
        },
    )
    assert page.items[1].source_profile_id == "20992201723"  # sent as a number
    assert page.items[2].source_dimensions["full_name"] is None


def test_following_last_chunk_and_refusals() -> None:
    page = parse_following_chunk(load("following_chunk_last.json"), KABIR)
    assert page.next_cursor is None
    assert [(item.source_profile_id, item.target_dimensions["handle"]) for item in page.items] == [
        (KABIR, "pooja.corner15215"),
        (KABIR, "yash.clicks15221"),
        (KABIR, "farah.notes15229"),
    ]
    with pytest.raises(BadResponse, match="no pk"):
        parse_followers_chunk([[{"username": "someone"}], None], KABIR)
    with pytest.raises(BadResponse):
        parse_following_chunk([["not a user"], None], KABIR)


# The client's requests and its reading of HTTP statuses


def canned(status: int, body: Any) -> tuple[LamaClient, OneAnswerHttp]:
    http = OneAnswerHttp(status, body)
    return LamaClient(http), http  # type: ignore[arg-type]


async def test_client_sends_the_legacy_parameters() -> None:
    calls: list[tuple[str, dict[str, str]]] = []

    async def record(fixture: str, call: Callable[[LamaClient], Awaitable[object]]) -> None:
        client, http = canned(200, load(fixture))
        await call(client)
        source, method, path, kwargs = http.calls[0]
        assert (source, method, kwargs["credential"], kwargs["request_id"]) == (SOURCE, "GET", CREDENTIAL, "r1")
        calls.append((path, kwargs["params"]))

    await record("a1_user.json", lambda c: c.profile_by_handle("rohan.clicks", credential=CREDENTIAL, request_id="r1"))
    await record("user_by_id.json", lambda c: c.profile_by_id("37384621941", credential=CREDENTIAL, request_id="r1"))
    await record("medias_chunk.json", lambda c: c.posts_by_id(MEERA, "e-1", credential=CREDENTIAL, request_id="r1"))
    await record(
        "a1_media_video.json", lambda c: c.post_by_shortcode("Cz3wX2Ms_kd", credential=CREDENTIAL, request_id="r1")
    )
    await record("followers_chunk.json", lambda c: c.followers(KABIR, credential=CREDENTIAL, request_id="r1"))
    await record(
        "following_chunk_last.json", lambda c: c.following(KABIR, "e-2", credential=CREDENTIAL, request_id="r1")
    )
    await record("stories.json", lambda c: c.stories("55149616087", credential=CREDENTIAL, request_id="r1"))
    await record(
        "hashtag_chunk.json", lambda c: c.hashtag_posts("#travel", "m-3", credential=CREDENTIAL, request_id="r1")
    )
    assert calls == [
        ("/a1/user", {"username": "rohan.clicks"}),
        ("/v1/user/by/id", {"id": "37384621941"}),
        ("/v1/user/medias/chunk", {"user_id": MEERA, "max_amount": "200", "end_cursor": "e-1"}),
        ("/a1/media", {"code": "Cz3wX2Ms_kd"}),
        ("/gql/user/followers/chunk", {"user_id": KABIR, "amount": "200"}),
        ("/gql/user/following/chunk", {"user_id": KABIR, "amount": "200", "end_cursor": "e-2"}),
        ("/v1/user/stories", {"user_id": "55149616087"}),
        ("/v1/hashtag/medias/recent/chunk", {"name": "travel", "max_amount": "24", "max_id": "m-3"}),
    ]


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (400, load("not_found_user.json"), ProfileMissing, "400"),
        (404, load("not_found_user.json"), ProfileMissing, "Target user not found"),
        (402, load("insufficient_balance.json"), QuotaExceeded, "Insufficient balance"),
        (403, load("private_account.json"), Forbidden, "Private account"),
        (401, {"detail": "Access key is missing"}, AuthExpired, "Access key is missing"),
        (422, {"detail": [{"loc": ["query", "username"], "msg": "field required"}]}, InputRejected, "field required"),
        (200, "not json", BadResponse, "not JSON"),
        (200, [[], None], BadResponse, "not an object"),
    ],
)
async def test_client_maps_refusals_of_the_web_profile(
    status: int, body: Any, error: type[Exception], text: str
) -> None:
    client, _ = canned(status, body)
    with pytest.raises(error, match=text):
        await client.profile_by_handle("rohan.clicks", credential=CREDENTIAL)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"detail": "Invalid end_cursor", "exc_type": "ValidationError"}, InputRejected),
        (404, load("not_found_user.json"), ProfileMissing),
        (402, load("insufficient_balance.json"), QuotaExceeded),
        (403, load("private_account.json"), Forbidden),
        (200, load("a1_user.json"), BadResponse),
    ],
)
async def test_client_maps_refusals_of_a_chunk(status: int, body: Any, error: type[Exception]) -> None:
    client, _ = canned(status, body)
    with pytest.raises(error):
        await client.posts_by_id(MEERA, credential=CREDENTIAL)


async def test_client_maps_a_missing_post() -> None:
    client, _ = canned(404, load("not_found_media.json"))
    with pytest.raises(PostMissing, match="Media not found"):
        await client.post_by_shortcode("missing1", credential=CREDENTIAL)


# Every operation against the sandbox, over loopback HTTP


@pytest.fixture
def lama(sandbox_http: SandboxHttp) -> LamaClient:
    return LamaClient(sandbox_http(SOURCE))


async def test_sandbox_profiles(lama: LamaClient) -> None:
    by_handle = await lama.profile_by_handle("Kabir.Fit", credential=CREDENTIAL)
    by_id = await lama.profile_by_id(by_handle.profile_id, credential=CREDENTIAL)
    assert (by_handle.handle, by_id.handle, by_id.profile_id) == ("kabir.fit", "kabir.fit", by_handle.profile_id)
    assert {key: by_id.metrics[key] for key in ("followers", "following", "media_count")} == {
        key: by_handle.metrics[key] for key in ("followers", "following", "media_count")
    }
    assert by_handle.metrics["reels_media_count"] > 0
    assert 0 < len(by_handle.embedded_posts) <= 24

    with pytest.raises(ProfileMissing, match="400"):
        await lama.profile_by_handle("missing_person", credential=CREDENTIAL)
    with pytest.raises(ProfileMissing, match="404"):
        await lama.profile_by_id("not-a-number", credential=CREDENTIAL)


async def test_sandbox_timeline_to_the_end_and_single_posts(lama: LamaClient) -> None:
    profile = await lama.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    pages = await all_pages(lambda cursor: lama.posts_by_id(profile.profile_id, cursor, credential=CREDENTIAL))

    posts = [post for page in pages for post in page.items]
    assert len(pages) == 3 and len(posts) == profile.metrics["media_count"]
    assert len({post.shortcode for post in posts}) == len(posts)
    # The profile's embedded posts are the newest of the same timeline.
    embedded = {post.shortcode: post for post in profile.embedded_posts}
    for listed in posts[:12]:
        assert embedded[listed.shortcode].metrics["likes"] == listed.metrics["likes"]

    for listed in posts[:4]:
        single = await lama.post_by_shortcode(listed.shortcode, credential=CREDENTIAL)
        assert (single.profile_id, single.publish_time, single.metrics["likes"], single.dimensions["post_type"]) == (
            listed.profile_id,
            listed.publish_time,
            listed.metrics["likes"],
            listed.dimensions["post_type"],
        )
    with pytest.raises(PostMissing):
        await lama.post_by_shortcode("missingPost1", credential=CREDENTIAL)
    private = await lama.profile_by_handle("private.diya", credential=CREDENTIAL)
    with pytest.raises(Forbidden, match="Private account"):
        await lama.posts_by_id(private.profile_id, credential=CREDENTIAL)


async def test_sandbox_followers_and_following_to_the_end(lama: LamaClient) -> None:
    profile = await lama.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    followers = await all_pages(lambda cursor: lama.followers(profile.profile_id, cursor, credential=CREDENTIAL))
    listed = [item for page in followers for item in page.items]
    assert len(followers) == 2 and len(listed) == profile.metrics["followers"]
    assert {item.target_profile_id for item in listed} == {profile.profile_id}
    assert len({item.source_profile_id for item in listed}) == len(listed)

    following = await all_pages(lambda cursor: lama.following(profile.profile_id, cursor, credential=CREDENTIAL))
    assert sum(len(page.items) for page in following) == profile.metrics["following"]
    followee = following[0].items[0]
    again = await lama.profile_by_id(followee.target_profile_id, credential=CREDENTIAL)
    assert again.handle == followee.target_dimensions["handle"]

    with pytest.raises(ProfileMissing):
        await lama.followers("not-a-number", credential=CREDENTIAL)


async def test_sandbox_stories(lama: LamaClient) -> None:
    # Whether an account has a story up depends on the hour; among a dozen some always have.
    seen = 0
    for number in range(12):
        handle = f"story.teller{number}"
        profile = await lama.profile_by_handle(handle, credential=CREDENTIAL)
        stories = await lama.stories(profile.profile_id, credential=CREDENTIAL)
        seen += len(stories)
        for story in stories:
            assert (story.kind, story.profile_id, story.handle) == ("story", profile.profile_id, handle)
            assert story.shortcode == story.dimensions["post_id"]
            assert story.dimensions["content_type"] in {"image", "video"}
            # Stories are live for a day.
            assert timedelta(0) <= datetime.now(UTC) - story.publish_time <= timedelta(days=1)
    assert seen > 0
    private = await lama.profile_by_handle("private.diya", credential=CREDENTIAL)
    with pytest.raises(Forbidden):
        await lama.stories(private.profile_id, credential=CREDENTIAL)


async def test_sandbox_hashtag_feed_to_the_end(lama: LamaClient) -> None:
    pages = await all_pages(lambda cursor: lama.hashtag_posts("foodie", cursor, credential=CREDENTIAL))
    posts = [post for page in pages for post in page.items]
    assert len(pages) > 2 and all(len(page.items) == 24 for page in pages[:-1])
    assert all("#foodie" in post.dimensions["caption"].split() for post in posts)
    assert len({post.shortcode for post in posts}) == len(posts)
    times = [post.publish_time for post in posts]
    assert times == sorted(times, reverse=True)
    assert await lama.hashtag_posts("nobodyusesthistag", credential=CREDENTIAL) == Page(items=[], next_cursor=None)


@pytest.fixture
def rate_limited(knobs: SandboxKnobs) -> None:
    """Two requests per 30 s for this file's key during one test; ``knobs`` puts the sandbox back afterwards."""
    knobs.set(rate_limits={"lama-k1": "2/30"})


async def test_sandbox_rate_limit_is_a_quota_error(rate_limited: None, lama: LamaClient) -> None:
    for _ in range(2):
        await lama.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    with pytest.raises(QuotaExceeded) as limited:
        await lama.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    assert 29.0 < limited.value.retry_after <= 30.0
