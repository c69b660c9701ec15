"""JoTucker: pure parsers on recorded-shape fixtures, the client's reading of refusals, and every
operation over real loopback HTTP against the sandbox."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
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
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential
from providers.instagram.jotucker import (
    SOURCE,
    JoTuckerClient,
    hashtags_of,
    parse_comments_page,
    parse_followers_page,
    parse_following_page,
    parse_hashtag_page,
    parse_likers_page,
    parse_post,
    parse_posts_page,
    parse_profile,
)
from providers.paging import Page
from tests.support import OneAnswerHttp, SandboxHttp, SandboxKnobs, all_pages, load_fixture
from topics.models import Activity, Platform, Relationship

MEERA = "32333248704"
KABIR = "1164424396"
CREDENTIAL = Credential(
    id="jt-1",
    source=SOURCE,
    secrets={"x-rapidapi-key": "jt-k1", "x-rapidapi-host": "instagram-scraper2.p.rapidapi.com"},
)


load = partial(load_fixture, "jotucker")


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# Profiles


def test_creator_profile_by_handle() -> None:
    payload = load("user_info_by_name.json")
    profile = parse_profile(payload, handle="Vikram.Studio")

    assert (profile.platform, profile.source, profile.kind) == (Platform.INSTAGRAM, SOURCE, "profile")
    assert (profile.profile_id, profile.handle) == ("37384621941", "vikram.studio")
    assert profile.metrics == {"followers": 1309519, "following": 2414, "media_count": 38}
    assert profile.dimensions == {
        "profile_id": "37384621941",
        "handle": "vikram.studio",
        "profile_pic_url": payload["user"]["hd_profile_pic_url_info"]["url"],
        "bio": "Stories from the road",
        "full_name": "Vikram Studio",
        "profile_type": "creator",
        "fbid": "17841437384621941",
        "category_id": "1602",
        "category": "Artist",
        "external_url": "https://linktr.ee/vikram.studio",
        "city": "Chennai, Tamil Nadu",
        "location_lat": 13.0827,
        "location_long": 80.2707,
        "public_email": "vikramstudio@example.com",
        "contact_phone": "+91 9781569547",
        "is_private": False,
        "is_verified": True,
    }


def test_profile_with_string_ids_and_counts_keeps_missing_fields_missing() -> None:
    profile = parse_profile(load("user_info_by_id.json"), profile_id=KABIR)

    assert (profile.profile_id, profile.handle) == (KABIR, "kabir.fit")
    assert profile.metrics == {"followers": 398, "following": 2176, "media_count": 71}
    assert all(type(value) is int for value in profile.metrics.values())
    assert profile.dimensions["profile_type"] == "personal"
    for key in ("profile_pic_url", "bio", "category_id", "category", "city", "location_lat", "public_email"):
        assert profile.dimensions[key] is None, key


def test_profile_refusals() -> None:
    with pytest.raises(ProfileMissing, match=r"answered for 'vikram\.studio'"):
        parse_profile(load("user_info_by_name.json"), handle="vikram_studio")
    with pytest.raises(ProfileMissing, match="answered for id 1164424396"):
        parse_profile(load("user_info_by_id.json"), profile_id="1164424397")
    with pytest.raises(ProfileMissing, match="User not found") as missing:
        parse_profile(load("user_not_found.json"), handle="nobody")
    assert missing.value.source == SOURCE
    with pytest.raises(QuotaExceeded, match="Too many requests"):
        parse_profile(load("too_many_requests.json"), handle="vikram.studio")
    with pytest.raises(ProviderUnavailable, match="Please wait"):
        parse_profile({"message": "Please wait a few minutes before you try again.", "status": "fail"})
    with pytest.raises(BadResponse):
        parse_profile({"status": "ok"})
    with pytest.raises(BadResponse):
        parse_profile([])  # type: ignore[arg-type]
    payload = load("user_info_by_name.json")
    payload["user"]["follower_count"] = "many"
    with pytest.raises(BadResponse, match=r"user\.follower_count"):
        parse_profile(payload)


# Timeline and single posts


def test_timeline_page() -> None:
    payload = load("medias.json")
    page = parse_posts_page(payload)

    assert page.next_cursor == payload["next_max_id"]
    assert [post.shortcode for post in page.items] == [
        "DexzOw9RxwA",
        "Cz3wX2Ms_kd",
        "DI9tg7cINY6",
        "DeDqqArjbNX",
        "CzJnzF6-pB0",
        "DIPk8LKZ22R",
        "DdViFQZ1Equ",
        "CybfOVpQSfL",
        "DHhcXa4rgTo",
        "DcnZggIGuIF",
        "CxtWplXh78i",
        "DGzTyqm9Jw_",
    ]
    assert [post.dimensions["post_type"] for post in page.items] == [
        "image",
        "reels",
        "carousel",
        "image",
        "image",
        "carousel",
        "image",
        "reels",
        "reels",
        "image",
        "reels",
        "reels",
    ]
    first, item = page.items[0], payload["items"][0]
    assert (first.platform, first.source, first.kind) == (Platform.INSTAGRAM, SOURCE, "post")
    assert (first.profile_id, first.handle, first.publish_time) == (MEERA, "meera.makeup", utc(1716188086))
    assert first.metrics == {"comments": 28, "likes": 859, "view_count": None, "play_count": None}
    picture = item["image_versions2"]["candidates"][0]["url"]
    assert first.dimensions == {
        "profile_id": MEERA,
        "handle": "meera.makeup",
        "post_type": "image",
        "display_url": picture,
        "thumbnail_src": picture,
        "taken_at_timestamp": 1716188086,
        "caption": "Monsoon mood #reels",
        "location": None,
        "location_lat": None,
        "location_long": None,
        "user_tags": None,
        "user_sponsors": None,
        "is_sponsor": None,
    }


def test_timeline_type_drift_tags_sponsors_and_places() -> None:
    payload = load("medias.json")
    items = parse_posts_page(payload).items
    # An owner pk sent as a string; a video's counts; its place.
    video = items[1]
    assert video.profile_id == MEERA
    assert video.metrics == {"comments": 5, "likes": 189, "view_count": 17566, "play_count": 37651}
    assert (video.dimensions["location"], video.dimensions["location_lat"], video.dimensions["location_long"]) == (
        "Koregaon Park",
        18.5204,
        73.8567,
    )
    # The timeline shows a video's cover picture, not its video.
    assert video.dimensions["display_url"] == payload["items"][1]["image_versions2"]["candidates"][0]["url"]
    # A like count sent as a string; a carousel's picture is its first item's; a paid partnership.
    carousel = items[2]
    assert carousel.metrics["likes"] == 790
    assert (
        carousel.dimensions["thumbnail_src"]
        == (payload["items"][2]["carousel_media"][0]["image_versions2"]["candidates"][0]["url"])
    )
    assert carousel.dimensions["user_sponsors"] == [{"profile_id": "63481570752", "handle": "kettleandcrumb"}]
    assert carousel.dimensions["is_sponsor"] is True
    # No like count at all: unknown, not zero.
    assert items[3].metrics["likes"] is None
    assert [tag["username"] for tag in items[7].dimensions["user_tags"]] == ["kabir.reads", "zoya.makeup", "sana.reads"]
    assert items[6].dimensions["caption"] is None


def test_timeline_last_page_and_refusals() -> None:
    last = parse_posts_page(load("medias_last_page.json"))
    assert (len(last.items), last.next_cursor) == (4, None)

    with pytest.raises(ProfileMissing, match="User not found"):
        parse_posts_page(load("user_not_found.json"))
    with pytest.raises(QuotaExceeded):
        parse_posts_page(load("too_many_requests.json"))
    payload = load("medias.json")
    del payload["items"][5]["code"]
    with pytest.raises(BadResponse, match="no code"):
        parse_posts_page(payload)
    # more_available without a cursor cannot be followed: the page is the last one.
    payload = load("medias.json")
    payload["next_max_id"] = None
    assert parse_posts_page(payload).next_cursor is None


def test_video_by_shortcode_shows_its_video() -> None:
    payload = load("media_info_video.json")
    post = parse_post(payload, shortcode="Cz3wX2Ms_kd")
    media = payload["items"][0]

    assert (post.shortcode, post.profile_id, post.handle, post.publish_time) == (
        "Cz3wX2Ms_kd",
        MEERA,
        "meera.makeup",
        utc(1715895703),
    )
    assert post.metrics == {"comments": 5, "likes": 189, "view_count": 17566, "play_count": 37651}
    assert post.dimensions["display_url"] == media["video_versions"][0]["url"]
    assert post.dimensions["thumbnail_src"] == media["image_versions2"]["candidates"][0]["url"]
    assert post.dimensions["caption"] == "Swipe for the full look #love #explore #weekend"


def test_carousel_by_shortcode_and_refusals() -> None:
    payload = load("media_info_carousel.json")
    post = parse_post(payload, shortcode="DI9tg7cINY6")
    first_item = payload["items"][0]["carousel_media"][0]["image_versions2"]["candidates"][0]["url"]
    assert post.dimensions["display_url"] == post.dimensions["thumbnail_src"] == first_item
    assert post.metrics == {"comments": 10, "likes": 790, "view_count": None, "play_count": None}

    with pytest.raises(PostMissing, match="answered for 'DI9tg7cINY6'"):
        parse_post(payload, shortcode="DI9tg7cINY7")
    with pytest.raises(PostMissing, match="Media not found"):
        parse_post(load("media_not_found.json"), shortcode="missing1")
    with pytest.raises(PostMissing, match="no media"):
        parse_post({"items": [], "num_results": 0, "status": "ok"}, shortcode="Cxyz")
    with pytest.raises(BadResponse):
        parse_post({"items": ["not a media"], "status": "ok"})


# Relationships


def test_followers_page() -> None:
    payload = load("followers.json")
    page = parse_followers_page(payload, KABIR)

    assert page.next_cursor == "Zm9sbG93ZXJzOjExNjQ0MjQzOTY6NQ"
    node = payload["data"]["user"]["edge_followed_by"]["edges"][0]["node"]
    assert page.items[0] == Relationship(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        source_profile_id="60176246291",
        target_profile_id=KABIR,
        source_dimensions={
            "handle": "private.farah.miles0",
            "full_name": "Private Farah Miles",
            "profile_pic_url": node["profile_pic_url"],
            "is_private": True,
            "is_verified": False,
        },
    )
    # An id sent as a number.
    assert page.items[1].source_profile_id == str(payload["data"]["user"]["edge_followed_by"]["edges"][1]["node"]["id"])
    assert [item.source_dimensions["handle"] for item in page.items] == [
        "private.farah.miles0",
        "kiran.notes11",
        "priya.eats18",
        "nisha.journal25",
        "priya.miles28",
    ]


def test_following_last_page() -> None:
    page = parse_following_page(load("following_last_page.json"), KABIR)
    assert page.next_cursor is None
    assert {item.source_profile_id for item in page.items} == {KABIR}
    assert [item.target_dimensions["handle"] for item in page.items] == [
        "pooja.corner15215",
        "yash.clicks15221",
        "farah.notes15229",
    ]
    assert all(item.source_dimensions == {} for item in page.items)


def test_relationship_refusals() -> None:
    with pytest.raises(ProfileMissing, match="no such user"):
        parse_followers_page(load("user_null.json"), "1")
    with pytest.raises(ProfileMissing, match="User not found"):
        parse_following_page(load("user_not_found.json"), "1")
    payload = load("followers.json")
    del payload["data"]["user"]["edge_followed_by"]["edges"][2]["node"]["id"]
    with pytest.raises(BadResponse, match="has no id"):
        parse_followers_page(payload, KABIR)


# Likes and comments


def test_likers_page() -> None:
    payload = load("likers.json")
    page = parse_likers_page(payload, "DexzOw9RxwA")
    edges = payload["data"]["shortcode_media"]["edge_liked_by"]["edges"]

    assert page.next_cursor == "bGlrZXJzOkRleHpPdzlSeHdBOjU"
    assert page.items[0] == Activity(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        activity_type="LIKE",
        shortcode="DexzOw9RxwA",
        actor_profile_id="48004500619",
        dimensions={
            "handle": "leela.world6",
            "full_name": "Leela World",
            "profile_pic_url": edges[0]["node"]["profile_pic_url"],
            "is_private": False,
            "is_verified": False,
        },
    )
    assert page.items[2].actor_profile_id == str(edges[2]["node"]["id"])
    assert page.items[3].dimensions["full_name"] is None
    assert {item.activity_type for item in page.items} == {"LIKE"}


def test_comments_page() -> None:
    payload = load("comments.json")
    page = parse_comments_page(payload, "DEU18C9_5Jn")
    edges = payload["data"]["shortcode_media"]["edge_media_to_parent_comment"]["edges"]

    assert page.next_cursor == "Y29tbWVudHM6REVVMThDOV81Sm46NDA"
    assert page.items[0] == Activity(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        activity_type="COMMENT",
        shortcode="DEU18C9_5Jn",
        actor_profile_id="59769834295",
        publish_time=utc(1715486130),
        metrics={"likes": 2, "comments": 1, "comments_thread": 1},
        dimensions={
            "comment_id": "17871401763900000",
            "text": "Amazing shot #goals",
            "taken_at_timestamp": 1715486130,
            "profile_pic_url": edges[0]["node"]["owner"]["profile_pic_url"],
            "handle": "kiran.beats3",
            "is_verified": False,
        },
    )
    # No thread at all: neither count is known.
    assert page.items[1].metrics == {"likes": 1, "comments": None, "comments_thread": None}
    # A like count sent as a string, an owner id sent as a number.
    assert page.items[2].metrics["likes"] == 7
    assert page.items[3].actor_profile_id == str(edges[3]["node"]["owner"]["id"])
    assert page.items[3].metrics == {"likes": 1, "comments": 2, "comments_thread": 2}


def test_comments_of_a_missing_post() -> None:
    with pytest.raises(PostMissing, match="Post is missing"):
        parse_comments_page(load("comments_post_missing.json"), "missing1")
    with pytest.raises(PostMissing, match="Post is missing"):
        parse_likers_page(load("comments_post_missing.json"), "missing1")
    payload = load("comments.json")
    del payload["data"]["shortcode_media"]["edge_media_to_parent_comment"]["edges"][0]["node"]["owner"]
    with pytest.raises(BadResponse, match="no owner id"):
        parse_comments_page(payload, "DEU18C9_5Jn")


# Hashtags


def test_hashtag_page() -> None:
    payload = load("hashtag.json")
    page = parse_hashtag_page(payload)
    edges = payload["data"]["hashtag"]["edge_hashtag_to_ranked_media"]["edges"]

    assert page.next_cursor == "aGFzaHRhZzp0cmF2ZWw6NQ"
    first = page.items[0]
    assert (first.shortcode, first.profile_id, first.handle, first.publish_time) == (
        "DN6FI0f44sg",
        "59009379706",
        None,
        utc(1716201780),
    )
    assert first.metrics == {"comments": 18, "likes": 1143, "view_count": None}
    assert first.dimensions == {
        "profile_id": "59009379706",
        "post_type": "image",
        "display_url": edges[0]["node"]["display_url"],
        "thumbnail_src": edges[0]["node"]["thumbnail_src"],
        "taken_at_timestamp": 1716201780,
        "caption": "Saved the best for last #travel #india #weekend #love",
        "hashtags": "#travel,#india,#weekend,#love",
    }
    assert page.items[1].metrics["likes"] == int(edges[1]["node"]["edge_liked_by"]["count"])
    assert (page.items[2].dimensions["caption"], page.items[2].dimensions["hashtags"]) == (None, None)
    assert [post.dimensions["post_type"] for post in page.items] == ["image", "image", "carousel", "image", "reels"]


def test_hashtag_words_and_an_unknown_tag() -> None:
    assert hashtags_of("Sunday reset #travel and #food_love") == "#travel,#food_love"
    assert hashtags_of("no tags here") == ""
    assert hashtags_of(None) is None
    assert parse_hashtag_page(load("hashtag_unknown.json")) == Page(items=[], next_cursor=None)
    with pytest.raises(BadResponse):
        parse_hashtag_page({"data": {"hashtag": {"name": "travel"}}, "status": "ok"})


# The client's requests and its reading of HTTP statuses


def canned(status: int, body: Any, headers: dict[str, str] | None = None) -> tuple[JoTuckerClient, OneAnswerHttp]:
    http = OneAnswerHttp(status, body, headers)
    return JoTuckerClient(http), http  # type: ignore[arg-type]


async def test_client_sends_the_legacy_parameters() -> None:
    calls: list[tuple[str, dict[str, str]]] = []

    async def record(name: str, fixture: str, call: Callable[[JoTuckerClient], Awaitable[object]]) -> None:
        client, http = canned(200, load(fixture))
        await call(client)
        source, method, path, kwargs = http.calls[0]
        assert (source, method, kwargs["credential"], kwargs["request_id"]) == (SOURCE, "GET", CREDENTIAL, "r1"), name
        calls.append((path, kwargs["params"]))

    await record(
        "by handle",
        "user_info_by_name.json",
        lambda c: c.profile_by_handle("vikram.studio", credential=CREDENTIAL, request_id="r1"),
    )
    await record(
        "by id", "user_info_by_id.json", lambda c: c.profile_by_id(KABIR, credential=CREDENTIAL, request_id="r1")
    )
    await record(
        "posts", "medias.json", lambda c: c.posts_by_id(MEERA, "max-1", credential=CREDENTIAL, request_id="r1")
    )
    await record(
        "post",
        "media_info_video.json",
        lambda c: c.post_by_shortcode("Cz3wX2Ms_kd", credential=CREDENTIAL, request_id="r1"),
    )
    await record("followers", "followers.json", lambda c: c.followers(KABIR, credential=CREDENTIAL, request_id="r1"))
    await record(
        "following",
        "following_last_page.json",
        lambda c: c.following(KABIR, "c-2", credential=CREDENTIAL, request_id="r1"),
    )
    await record("likers", "likers.json", lambda c: c.likers("DexzOw9RxwA", credential=CREDENTIAL, request_id="r1"))
    await record(
        "comments", "comments.json", lambda c: c.comments("DEU18C9_5Jn", "c-3", credential=CREDENTIAL, request_id="r1")
    )
    await record(
        "hashtag", "hashtag.json", lambda c: c.hashtag_posts("#travel", credential=CREDENTIAL, request_id="r1")
    )
    assert calls == [
        ("/user_info_by_id", {"user_name": "vikram.studio"}),
        ("/user_info_by_id", {"user_id": KABIR}),
        ("/medias_v2", {"user_id": MEERA, "batch_size": "50", "max_id": "max-1"}),
        ("/media_info_v2", {"short_code": "Cz3wX2Ms_kd"}),
        ("/followers", {"user_id": KABIR, "batch_size": "50"}),
        ("/following", {"user_id": KABIR, "batch_size": "50", "next_cursor": "c-2"}),
        ("/media_likers", {"short_code": "DexzOw9RxwA", "batch_size": "50"}),
        ("/media_comments", {"short_code": "DEU18C9_5Jn", "batch_size": "50", "next_cursor": "c-3"}),
        ("/hash_tag_medias_v2", {"hash_tag": "travel", "batch_size": "50"}),
    ]


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (403, load("forbidden.json"), Forbidden, "You are not subscribed to this API."),
        (
            401,
            {"message": "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info."},
            AuthExpired,
            "Invalid API key",
        ),
        (404, load("user_not_found.json"), ProfileMissing, "User not found"),
        (
            400,
            {"message": "You have exceeded the rate limit per second for your plan, BASIC"},
            QuotaExceeded,
            "rate limit",
        ),
        (400, "<html>Bad Request</html>", InputRejected, "<html>Bad Request</html>"),
        (200, "not json", BadResponse, "not JSON"),
        (200, load("user_not_found.json"), ProfileMissing, "User not found"),
        (200, load("too_many_requests.json"), QuotaExceeded, "Too many requests"),
    ],
)
async def test_client_maps_refusals(status: int, body: Any, error: type[Exception], text: str) -> None:
    client, _ = canned(status, body)
    with pytest.raises(error, match=text):
        await client.profile_by_handle("vikram.studio", credential=CREDENTIAL)


async def test_a_quota_refusal_carries_the_providers_wait() -> None:
    client, _ = canned(
        403,
        {"message": "You have exceeded the MONTHLY quota for Requests on your current plan"},
        {"Retry-After": "120"},
    )
    with pytest.raises(QuotaExceeded) as refused:
        await client.likers("DexzOw9RxwA", credential=CREDENTIAL)
    assert refused.value.retry_after == 120.0


# Every operation against the sandbox, over loopback HTTP


@pytest.fixture
def jotucker(sandbox_http: SandboxHttp) -> JoTuckerClient:
    return JoTuckerClient(sandbox_http(SOURCE))


async def test_sandbox_profiles(jotucker: JoTuckerClient) -> None:
    by_handle = await jotucker.profile_by_handle("Kabir.Fit", credential=CREDENTIAL)
    assert (by_handle.source, by_handle.handle, by_handle.dimensions["profile_type"]) == (
        SOURCE,
        "kabir.fit",
        "personal",
    )
    assert await jotucker.profile_by_id(by_handle.profile_id, credential=CREDENTIAL) == by_handle
    with pytest.raises(ProfileMissing, match="User not found"):
        await jotucker.profile_by_handle("missing_person", credential=CREDENTIAL)
    with pytest.raises(ProfileMissing):
        await jotucker.profile_by_id("not-a-number", credential=CREDENTIAL)


async def test_sandbox_timeline_to_the_end_and_single_posts(jotucker: JoTuckerClient) -> None:
    profile = await jotucker.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    pages = await all_pages(lambda cursor: jotucker.posts_by_id(profile.profile_id, cursor, credential=CREDENTIAL))

    posts = [post for page in pages for post in page.items]
    assert [len(page.items) for page in pages] == [50, profile.metrics["media_count"] - 50]
    assert len({post.shortcode for post in posts}) == len(posts)
    assert {post.profile_id for post in posts} == {profile.profile_id}
    assert all(newer.publish_time > older.publish_time for newer, older in itertools.pairwise(posts))

    for listed in posts[:6]:
        single = await jotucker.post_by_shortcode(listed.shortcode, credential=CREDENTIAL)
        assert (single.profile_id, single.publish_time, single.metrics) == (
            listed.profile_id,
            listed.publish_time,
            listed.metrics,
        )
        if single.dimensions["post_type"] == "reels":
            assert ".mp4?" in single.dimensions["display_url"]
        else:
            assert single.dimensions["display_url"] == listed.dimensions["display_url"]
    with pytest.raises(ProfileMissing):
        await jotucker.posts_by_id("not-a-number", credential=CREDENTIAL)
    with pytest.raises(PostMissing):
        await jotucker.post_by_shortcode("missingPost1", credential=CREDENTIAL)


async def test_sandbox_followers_and_following_to_the_end(jotucker: JoTuckerClient) -> None:
    profile = await jotucker.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    followers = await all_pages(lambda cursor: jotucker.followers(profile.profile_id, cursor, credential=CREDENTIAL))
    listed = [item for page in followers for item in page.items]
    assert len(listed) == profile.metrics["followers"]
    assert len({item.source_profile_id for item in listed}) == len(listed)
    assert {item.target_profile_id for item in listed} == {profile.profile_id}

    following = await all_pages(lambda cursor: jotucker.following(profile.profile_id, cursor, credential=CREDENTIAL))
    assert sum(len(page.items) for page in following) == profile.metrics["following"]
    followee = following[-1].items[-1]
    assert followee.source_profile_id == profile.profile_id
    # A followee is an account like any other: its handle leads back to the same id.
    again = await jotucker.profile_by_handle(followee.target_dimensions["handle"], credential=CREDENTIAL)
    assert again.profile_id == followee.target_profile_id

    with pytest.raises(ProfileMissing):
        await jotucker.followers("not-a-number", credential=CREDENTIAL)
    private = await jotucker.profile_by_handle("private.diya", credential=CREDENTIAL)
    assert await jotucker.following(private.profile_id, credential=CREDENTIAL) == Page(items=[], next_cursor=None)


async def test_sandbox_likers_and_comments_to_the_end(jotucker: JoTuckerClient) -> None:
    profile = await jotucker.profile_by_handle("sana.clicks", credential=CREDENTIAL)
    posts = (await jotucker.posts_by_id(profile.profile_id, credential=CREDENTIAL)).items
    post = max(posts, key=lambda post: post.metrics["comments"])
    assert post.metrics["comments"] > 50

    likers = await all_pages(lambda cursor: jotucker.likers(post.shortcode, cursor, credential=CREDENTIAL))
    assert sum(len(page.items) for page in likers) == post.metrics["likes"]
    assert {like.shortcode for page in likers for like in page.items} == {post.shortcode}

    pages = await all_pages(lambda cursor: jotucker.comments(post.shortcode, cursor, credential=CREDENTIAL))
    comments = [comment for page in pages for comment in page.items]
    assert len(pages) > 1 and len(comments) == post.metrics["comments"]
    assert len({comment.dimensions["comment_id"] for comment in comments}) == len(comments)
    times = [comment.publish_time for comment in comments]
    assert times == sorted(times) and times[0] > post.publish_time
    assert any(comment.metrics["comments"] for comment in comments)
    assert any("#" in comment.dimensions["text"] for comment in comments)

    with pytest.raises(PostMissing, match="Post is missing"):
        await jotucker.comments("missingPost1", credential=CREDENTIAL)
    with pytest.raises(PostMissing):
        await jotucker.likers("missingPost1", credential=CREDENTIAL)


async def test_sandbox_hashtag_feed_to_the_end(jotucker: JoTuckerClient) -> None:
    pages = await all_pages(lambda cursor: jotucker.hashtag_posts("travel", cursor, credential=CREDENTIAL))
    posts = [post for page in pages for post in page.items]
    assert len(pages) > 1
    assert all("#travel" in post.dimensions["hashtags"].split(",") for post in posts)
    assert len({post.shortcode for post in posts}) == len(posts)
    sample = await jotucker.post_by_shortcode(posts[0].shortcode, credential=CREDENTIAL)
    assert (sample.profile_id, sample.metrics["likes"]) == (posts[0].profile_id, posts[0].metrics["likes"])
    assert await jotucker.hashtag_posts("nobodyusesthistag", credential=CREDENTIAL) == Page(items=[], next_cursor=None)


@pytest.fixture
def rate_limited(knobs: SandboxKnobs) -> None:
    """Two requests per 30 s for this file's key during one test; ``knobs`` puts the sandbox back afterwards."""
    knobs.set(rate_limits={"jt-k1": "2/30"})


async def test_sandbox_rate_limit_is_a_quota_error(rate_limited: None, jotucker: JoTuckerClient) -> None:
    for _ in range(2):
        await jotucker.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    with pytest.raises(QuotaExceeded) as limited:
        await jotucker.profile_by_handle("kabir.fit", credential=CREDENTIAL)
    assert 29.0 < limited.value.retry_after <= 30.0
