"""ArrayBobo's pure parsers on recorded-shape fixtures, the client's mapping of refusals to errors, and
the tagged and stories operations over loopback HTTP against the sandbox."""

from __future__ import annotations

import copy
import time
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
    ProviderUnavailable,
)
from providers.http import Credential
from providers.instagram.arraybobo import (
    SOURCE,
    ArrayBoboClient,
    parse_post,
    parse_profile,
    parse_reels_page,
    parse_stories,
    parse_tagged_page,
    parse_timeline_page,
)
from providers.sandbox.instagram import InstagramWorld
from providers.sandbox.stories import active_stories
from tests.support import OneAnswerHttp, SandboxHttp, load_fixture
from topics.models import Platform

ANANYA = "34071474682"
TARA = "60550173631"


load = partial(load_fixture, "arraybobo")


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# Profiles


def test_business_profile_by_handle() -> None:
    payload = load("info_username.json")
    profile = parse_profile(payload, handle="tara_reads")

    assert (profile.platform, profile.source, profile.kind) == (Platform.INSTAGRAM, SOURCE, "profile")
    assert (profile.profile_id, profile.handle) == ("68610512587", "tara_reads")
    assert profile.metrics == {"followers": 732, "following": 571, "media_count": 20}
    assert profile.dimensions == {
        "profile_id": "68610512587",
        "handle": "tara_reads",
        "profile_pic_url": payload["user"]["hd_profile_pic_url_info"]["url"],
        "bio": "Stories from the road",
        "full_name": "Tara Reads",
        "profile_type": "business",
        "fbid": "17841468610512587",
        "category_id": "2240",
        "category": "Photographer",
        "external_url": "https://linktr.ee/tara_reads",
        "city": "Hyderabad, Telangana",
        "location_lat": 17.385,
        "location_long": 78.4867,
        "public_email": "tara_reads@example.com",
        "contact_phone": "+91 9349695076",
        "is_private": False,
        "is_verified": False,
    }
    assert profile.embedded_posts == []


def test_profile_with_string_ids_and_counts_is_normalized_and_missing_fields_stay_none() -> None:
    profile = parse_profile(load("info.json"), profile_id="1164424396")

    assert profile.profile_id == "1164424396"
    assert profile.metrics == {"followers": 398, "following": 2176, "media_count": 71}
    assert all(type(value) is int for value in profile.metrics.values())
    dims = profile.dimensions
    assert dims["profile_type"] == "personal"
    assert dims["fbid"] == "17841401164424396"
    # A personal account carries no business fields and this answer had no HD picture.
    for key in (
        "profile_pic_url",
        "category_id",
        "category",
        "city",
        "location_lat",
        "location_long",
        "public_email",
        "contact_phone",
    ):
        assert dims[key] is None, key


def test_profile_identity_check_ignores_case_and_at_sign() -> None:
    assert parse_profile(load("info_username.json"), handle="@Tara_Reads").handle == "tara_reads"
    assert parse_profile(load("info_username.json"), profile_id=68610512587).profile_id == "68610512587"


def test_profile_answered_for_someone_else_is_missing() -> None:
    with pytest.raises(ProfileMissing, match="answered for 'tara_reads'"):
        parse_profile(load("info_username.json"), handle="tara.reads")
    with pytest.raises(ProfileMissing, match="answered for id 1164424396"):
        parse_profile(load("info.json"), profile_id="1164424397")


def test_profile_refusals() -> None:
    with pytest.raises(ProfileMissing, match="User not found") as missing:
        parse_profile(load("not_found_user.json"), handle="nobody")
    assert missing.value.source == SOURCE
    with pytest.raises(ProviderUnavailable, match="Please wait"):
        parse_profile(load("fail_wait.json"), handle="tara_reads")
    with pytest.raises(BadResponse):
        parse_profile({}, handle="tara_reads")
    with pytest.raises(BadResponse):
        parse_profile([], handle="tara_reads")  # type: ignore[arg-type]


def test_profile_without_identity_or_with_garbled_counts_is_a_bad_response() -> None:
    payload = load("info_username.json")
    del payload["user"]["pk"]
    with pytest.raises(BadResponse, match="no pk or username"):
        parse_profile(payload)

    payload = load("info_username.json")
    payload["user"]["follower_count"] = "lots"
    with pytest.raises(BadResponse, match=r"user\.follower_count"):
        parse_profile(payload)


def test_profile_counts_that_are_null_stay_null() -> None:
    payload = load("info_username.json")
    payload["user"]["follower_count"] = None
    del payload["user"]["media_count"]
    assert parse_profile(payload).metrics == {"followers": None, "following": 571, "media_count": None}


# Timeline


def test_timeline_page() -> None:
    payload = load("posts.json")
    page = parse_timeline_page(payload)

    assert page.next_cursor == "cG9zdHM6MzQwNzE0NzQ2ODI6MTI"
    assert [post.shortcode for post in page.items] == [
        "DAQIAt2ITMg",
        "DVWFJzFjhA9",
        "CqcCS4U-u1a",
        "C_h_b9kZ8p3",
        "DUn8lCz1KeU",
        "Cpt5uIDQYSx",
        "C-z23NSrmHO",
        "DT50ASiGz7r",
        "Co_xJXxiBwI",
        "C-FuSdA9Pkl",
        "DTLrbiQYdZC",
        "CoRoknfzrNf",
    ]
    assert [post.dimensions["post_type"] for post in page.items] == [
        "image",
        "carousel",
        "reels",
        "image",
        "image",
        "image",
        "carousel",
        "reels",
        "reels",
        "reels",
        "carousel",
        "reels",
    ]
    node = payload["data"]["user"]["edge_owner_to_timeline_media"]["edges"][0]["node"]
    first = page.items[0]
    assert (first.platform, first.source, first.kind) == (Platform.INSTAGRAM, SOURCE, "post")
    assert (first.profile_id, first.handle) == (ANANYA, "ananya.diaries")
    assert first.publish_time == datetime(2024, 5, 19, 22, 35, 8, tzinfo=UTC)
    assert first.metrics == {"comments": 0, "likes": 117, "view_count": None}
    assert first.dimensions == {
        "profile_id": ANANYA,
        "handle": "ananya.diaries",
        "post_type": "image",
        "display_url": node["display_url"],
        "thumbnail_src": node["thumbnail_src"],
        "taken_at_timestamp": 1716158108,
        "user_tags": [],
        "user_sponsors": [],
        "is_sponsor": False,
        "caption": "Monsoon mood #weekend #reels",
    }


def test_timeline_video_sponsors_and_tags() -> None:
    payload = load("posts.json")
    page = parse_timeline_page(payload)
    video = page.items[8]
    assert video.metrics == {"comments": 0, "likes": 123, "view_count": 799}
    assert video.dimensions["user_sponsors"] == [{"profile_id": "63481570752", "handle": "kettleandcrumb"}]
    assert video.dimensions["is_sponsor"] is True
    tag_nodes = payload["data"]["user"]["edge_owner_to_timeline_media"]["edges"][8]["node"]
    assert video.dimensions["user_tags"] == [edge["node"] for edge in tag_nodes["edge_media_to_tagged_user"]["edges"]]
    assert [tag["user"]["username"] for tag in video.dimensions["user_tags"]] == [
        "vikram.studio",
        "tara.style",
        "rohan.style",
    ]
    assert page.items[3].dimensions["user_sponsors"] == [{"profile_id": "47773710203", "handle": "urbanloom"}]


def test_timeline_type_drift_and_missing_edges() -> None:
    items = parse_timeline_page(load("posts.json")).items
    # A count sent as a string, and an owner id sent as a number.
    assert items[2].metrics["comments"] == 1
    assert items[4].profile_id == ANANYA and items[4].dimensions["profile_id"] == ANANYA
    # An empty caption list means no caption.
    assert items[5].dimensions["caption"] is None
    # Edges missing altogether: nothing is known, so nothing is claimed.
    missing = items[9]
    assert missing.metrics == {"comments": 2, "likes": None, "view_count": 2223}
    for key in ("caption", "user_tags", "user_sponsors", "is_sponsor"):
        assert missing.dimensions[key] is None, key
    assert missing.publish_time == datetime(2024, 4, 24, 5, 2, 12, tzinfo=UTC)


def test_timeline_last_page_has_no_cursor() -> None:
    page = parse_timeline_page(load("posts_last_page.json"))
    assert len(page.items) == 9
    assert page.next_cursor is None
    assert page.items[-1].publish_time == utc(1701729353)


def test_timeline_refusals() -> None:
    with pytest.raises(ProfileMissing):
        parse_timeline_page(load("posts_missing_user.json"))
    with pytest.raises(ProfileMissing, match="User not found"):
        parse_timeline_page(load("not_found_user.json"))
    with pytest.raises(BadResponse):
        parse_timeline_page({"data": {"user": {}}, "status": "ok"})

    payload = load("posts.json")
    del payload["data"]["user"]["edge_owner_to_timeline_media"]["edges"][3]["node"]["shortcode"]
    with pytest.raises(BadResponse, match="no shortcode"):
        parse_timeline_page(payload)


def test_timeline_of_a_private_account_is_an_empty_last_page() -> None:
    payload = {
        "data": {
            "user": {
                "edge_owner_to_timeline_media": {
                    "count": 312,
                    "page_info": {"has_next_page": False, "end_cursor": None},
                    "edges": [],
                }
            }
        },
        "status": "ok",
    }
    page = parse_timeline_page(payload)
    assert (page.items, page.next_cursor) == ([], None)


# Single posts


def test_video_post_by_shortcode() -> None:
    payload = load("post_info_video.json")
    post = parse_post(payload, shortcode="DT50ASiGz7r")

    assert (post.shortcode, post.profile_id, post.handle) == ("DT50ASiGz7r", ANANYA, "ananya.diaries")
    assert post.publish_time == datetime(2024, 4, 30, 6, 37, 3, tzinfo=UTC)
    assert post.metrics == {
        "comments": 2,
        "likes": 220,
        "view_count": 3830,
        "play_count": 7573,
        "video_duration": 21.338,
    }
    assert post.dimensions == {
        "profile_id": ANANYA,
        "handle": "ananya.diaries",
        "post_type": "reels",
        "display_url": payload["video_url"],
        "thumbnail_src": payload["display_resources"][0]["src"],
        "taken_at_timestamp": 1714459023,
        "user_tags": [],
        "user_sponsors": [],
        "is_sponsor": False,
        "caption": "Golden hour never disappoints",
        "location": payload["location"],
    }
    assert post.dimensions["location"]["name"] == "Marina Beach"


def test_carousel_post_with_xdt_type_null_caption_and_string_count() -> None:
    payload = load("post_info_sidecar.json")
    post = parse_post(payload, shortcode="C-z23NSrmHO")

    assert post.dimensions["post_type"] == "carousel"
    assert post.dimensions["caption"] is None
    # No video, so the display URL is the image's, and the video metrics are unknown, not zero.
    assert post.dimensions["display_url"] == payload["display_url"]
    assert post.metrics == {"comments": 2, "likes": 185, "view_count": None, "play_count": None, "video_duration": None}
    assert post.publish_time == datetime(2024, 5, 2, 20, 16, 14, tzinfo=UTC)


def test_post_refusals() -> None:
    with pytest.raises(PostMissing, match="answered for 'DT50ASiGz7r'"):
        parse_post(load("post_info_video.json"), shortcode="DT50ASiGz7R")
    with pytest.raises(PostMissing, match="Media not found"):
        parse_post(load("not_found_media.json"), shortcode="Cxyz")
    with pytest.raises(BadResponse):
        parse_post({"status": "ok"}, shortcode="Cxyz")
    payload = load("post_info_video.json")
    payload["shortcode"] = None
    with pytest.raises(BadResponse, match="no shortcode"):
        parse_post(payload)


# Reels


def test_reels_page() -> None:
    payload = load("reels.json")
    page = parse_reels_page(payload)

    assert page.next_cursor == "cmVlbHM6MzQwNzE0NzQ2ODI6Mzg"
    assert len(page.items) == 12
    assert {post.dimensions["post_type"] for post in page.items} == {"reels"}
    first = page.items[0]
    media = payload["items"][0]["media"]
    assert (first.shortcode, first.profile_id, first.handle) == ("CqcCS4U-u1a", ANANYA, "ananya.diaries")
    assert first.publish_time == datetime(2024, 5, 13, 0, 18, 12, tzinfo=UTC)
    assert first.metrics == {"comments": 1, "likes": 68, "view_count": 2864, "play_count": 6289}
    assert first.dimensions == {
        "profile_id": ANANYA,
        "handle": "ananya.diaries",
        "post_type": "reels",
        "display_url": media["video_versions"][0]["url"],
        "thumbnail_src": media["image_versions2"]["candidates"][0]["url"],
        "taken_at_timestamp": 1715559492,
        "caption": "Monsoon mood #fitness #ootd #india",
        "user_tags": None,
        "user_sponsors": None,
        "is_sponsor": None,
    }


def test_reel_tags_sponsors_null_caption_and_string_pk() -> None:
    payload = load("reels.json")
    items = parse_reels_page(payload).items
    tagged = items[2]
    assert [tag["user"]["username"] for tag in tagged.dimensions["user_tags"]] == [
        "vikram.studio",
        "tara.style",
        "rohan.style",
    ]
    assert tagged.dimensions["user_sponsors"] == [{"profile_id": "63481570752", "handle": "kettleandcrumb"}]
    assert tagged.dimensions["is_sponsor"] is True
    assert items[5].dimensions["caption"] is None
    assert items[7].profile_id == ANANYA


def test_reels_last_page_and_refusals() -> None:
    payload = load("reels.json")
    last = copy.deepcopy(payload)
    last["paging_info"] = {"more_available": False}
    assert parse_reels_page(last).next_cursor is None

    with pytest.raises(ProfileMissing):
        parse_reels_page(load("not_found_user.json"))
    del payload["items"][4]["media"]["code"]
    with pytest.raises(BadResponse, match="no code"):
        parse_reels_page(payload)


# Tagged posts


def test_tagged_page() -> None:
    payload = load("tagged.json")
    page = parse_tagged_page(payload, profile_id=TARA)

    assert page.next_cursor == "dGFnZ2VkOjYwNTUwMTczNjMxOjEy"
    assert len(page.items) == 12
    first = page.items[0]
    node = payload["data"]["user"]["edge_user_to_photos_of_you"]["edges"][0]["node"]
    assert (first.source, first.kind, first.shortcode) == (SOURCE, "post", "DB6k7HbYNeg")
    # The post is someone else's: the owner is its author, the tag names the queried profile.
    assert (first.profile_id, first.handle) == ("52079500642", "sana.travels")
    assert first.publish_time == datetime(2024, 5, 19, 23, 45, 17, tzinfo=UTC)
    assert first.metrics == {"comments": 6675, "likes": 319757, "view_count": None}
    assert first.dimensions == {
        "profile_id": "52079500642",
        "handle": "sana.travels",
        "post_type": "image",
        "display_url": node["display_url"],
        "thumbnail_src": node["thumbnail_src"],
        "taken_at_timestamp": 1716162317,
        "user_tags": [edge["node"] for edge in node["edge_media_to_tagged_user"]["edges"]],
        "user_sponsors": [],
        "is_sponsor": False,
        "caption": "Golden hour never disappoints",
        "tagged_user_ids": TARA,
    }
    assert {post.dimensions["tagged_user_ids"] for post in page.items} == {TARA}
    assert all(
        "tara.studio" in [tag["user"]["username"] for tag in post.dimensions["user_tags"]] for post in page.items
    )


def test_tagged_page_count_as_string_and_numeric_profile_id() -> None:
    page = parse_tagged_page(load("tagged.json"), profile_id=int(TARA))  # type: ignore[arg-type]
    # The second edge's comment count arrived as a string.
    assert page.items[1].metrics == {"comments": 467, "likes": 26209, "view_count": None}
    assert page.items[1].dimensions["post_type"] == "carousel"
    assert page.items[0].dimensions["tagged_user_ids"] == TARA


def test_tagged_last_page_and_refusals() -> None:
    page = parse_tagged_page(load("tagged_last_page.json"), profile_id=TARA)
    assert page.next_cursor is None
    assert [post.shortcode for post in page.items] == [
        "DFMVnGnUawu",
        "DZcYrcYfQnI",
        "DZOPCrhimaI",
        "DRPdeKdAm91",
        "CuUMLww90Ol",
        "C4CfWut-zJp",
        "CtilDGnXIOP",
    ]
    with pytest.raises(ProfileMissing):
        parse_tagged_page(load("posts_missing_user.json"), profile_id=TARA)
    with pytest.raises(ProfileMissing, match="User not found"):
        parse_tagged_page(load("not_found_user.json"), profile_id=TARA)
    with pytest.raises(BadResponse, match="edge_user_to_photos_of_you"):
        parse_tagged_page(load("posts.json"), profile_id=TARA)
    private = {
        "data": {
            "user": {
                "edge_user_to_photos_of_you": {
                    "count": 0,
                    "page_info": {"has_next_page": False, "end_cursor": None},
                    "edges": [],
                }
            }
        },
        "status": "ok",
    }
    assert parse_tagged_page(private, profile_id=TARA) == parse_tagged_page(private, profile_id="1")


# Stories


def test_stories() -> None:
    payload = load("stories.json")
    stories = parse_stories(payload, profile_id=TARA)
    items = payload["reels"][TARA]["items"]

    assert [story.shortcode for story in stories] == [
        "5142376223864704405",
        "4824443923661195625",
        "4629796858836897202",
        "4448141939264484008",
    ]
    first = stories[0]
    assert (first.source, first.kind, first.profile_id, first.handle) == (SOURCE, "story", TARA, "tara.studio")
    assert first.publish_time == datetime(2024, 5, 20, 4, 32, 3, tzinfo=UTC)
    assert first.metrics == {}
    assert first.dimensions == {
        "post_id": "5142376223864704405",
        "profile_id": TARA,
        "handle": "tara.studio",
        "post_type": "story",
        "content_type": "image",
        "display_url": items[0]["image_versions2"]["candidates"][0]["url"],
        "thumbnail_src": items[0]["image_versions2"]["candidates"][0]["url"],
        "taken_at_timestamp": 1716179523,
        "story_links": None,
        "story_hashtags": None,
        "user_sponsors": None,
        "is_sponsor": None,
    }


def test_story_video_link_hashtags_sponsor_and_string_pk() -> None:
    payload = load("stories.json")
    video, sponsored = parse_stories(payload, profile_id=TARA)[2:]
    items = payload["reels"][TARA]["items"]
    # A video story shows its video; its thumbnail stays the picture.
    assert video.dimensions["content_type"] == "video"
    assert video.dimensions["display_url"] == items[2]["video_versions"][0]["url"]
    assert video.dimensions["thumbnail_src"] == items[2]["image_versions2"]["candidates"][0]["url"]
    assert video.dimensions["story_links"] == ["linktr.ee/tara.studio"]
    # Its pk arrived as a string; post_id and shortcode are the same text either way.
    assert video.shortcode == video.dimensions["post_id"] == "4629796858836897202"
    assert sponsored.dimensions["story_hashtags"] == ["bookstagram", "ootd"]
    assert sponsored.dimensions["user_sponsors"] == [{"profile_id": "5200198347", "handle": "lumora.skin"}]
    assert sponsored.dimensions["is_sponsor"] is True


def test_no_reel_means_no_stories_and_refusals() -> None:
    assert parse_stories(load("stories_none.json"), profile_id=TARA) == []
    assert parse_stories({"status": "ok"}, profile_id=TARA) == []
    # A reel keyed by another profile is not this profile's.
    assert parse_stories(load("stories.json"), profile_id="1164424396") == []
    with pytest.raises(ProfileMissing, match="User not found"):
        parse_stories(load("not_found_user.json"), profile_id=TARA)
    with pytest.raises(ProviderUnavailable, match="Please wait"):
        parse_stories(load("fail_wait.json"), profile_id=TARA)
    payload = load("stories.json")
    del payload["reels"][TARA]["items"][1]["pk"]
    with pytest.raises(BadResponse, match="no pk"):
        parse_stories(payload, profile_id=TARA)
    payload = load("stories.json")
    payload["reels"][TARA]["items"][0]["taken_at"] = "yesterday"
    with pytest.raises(BadResponse, match=r"item\.taken_at"):
        parse_stories(payload, profile_id=TARA)


# The client's reading of HTTP statuses


CREDENTIAL = Credential(id="c1", source=SOURCE, secrets={"x-rapidapi-key": "k1"})


def client(status: int, body: Any) -> tuple[ArrayBoboClient, OneAnswerHttp]:
    http = OneAnswerHttp(status, body)
    return ArrayBoboClient(http), http  # type: ignore[arg-type]


async def test_client_sends_the_legacy_parameters() -> None:
    bobo, http = client(200, load("posts.json"))
    await bobo.posts_by_id(ANANYA, "cursor-1", credential=CREDENTIAL, request_id="r1")
    bobo_reels, reels_http = client(200, load("reels.json"))
    await bobo_reels.reels(ANANYA, credential=CREDENTIAL)

    source, method, path, kwargs = http.calls[0]
    assert (source, method, path) == (SOURCE, "GET", "/ig/posts/")
    assert kwargs == {
        "credential": CREDENTIAL,
        "params": {"id_user": ANANYA, "end_cursor": "cursor-1"},
        "request_id": "r1",
    }
    assert reels_http.calls[0][2:] == (
        "/ig/reels_posts/",
        {"credential": CREDENTIAL, "params": {"id_user": ANANYA}, "request_id": None},
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (403, load("forbidden.json"), Forbidden, "You are not subscribed to this API."),
        (401, {"message": "Invalid API key."}, AuthExpired, "Invalid API key."),
        (404, load("not_found_user.json"), ProfileMissing, "User not found"),
        (400, "<html>Bad Request</html>", InputRejected, "<html>Bad Request</html>"),
        (200, "not json", BadResponse, "not JSON"),
        (200, load("not_found_user.json"), ProfileMissing, "User not found"),
    ],
)
async def test_client_maps_refusals(status: int, body: Any, error: type[Exception], text: str) -> None:
    bobo, _ = client(status, body)
    with pytest.raises(error, match=text):
        await bobo.profile_by_handle("tara_reads", credential=CREDENTIAL)


async def test_client_maps_a_missing_post() -> None:
    bobo, _ = client(200, load("not_found_media.json"))
    with pytest.raises(PostMissing):
        await bobo.post_by_shortcode("missing1", credential=CREDENTIAL)


async def test_client_sends_the_tagged_and_stories_parameters() -> None:
    tagged, tagged_http = client(200, load("tagged.json"))
    page = await tagged.tagged_posts(TARA, "cursor-2", credential=CREDENTIAL, request_id="r2")
    stories, stories_http = client(200, load("stories.json"))
    found = await stories.stories(TARA, credential=CREDENTIAL)

    assert tagged_http.calls == [
        (
            SOURCE,
            "GET",
            "/ig/tagged/",
            {"credential": CREDENTIAL, "params": {"id_user": TARA, "end_cursor": "cursor-2"}, "request_id": "r2"},
        )
    ]
    assert stories_http.calls == [
        (SOURCE, "GET", "/ig/stories/", {"credential": CREDENTIAL, "params": {"id_user": TARA}, "request_id": None})
    ]
    assert len(page.items) == 12 and len(found) == 4


# Tagged posts and stories over loopback HTTP


@pytest.fixture
def bobo(sandbox_http: SandboxHttp) -> ArrayBoboClient:
    return ArrayBoboClient(sandbox_http(SOURCE))


async def test_tagged_posts_page_to_the_end(bobo: ArrayBoboClient) -> None:
    profile = await bobo.profile_by_handle("tara.studio", credential=CREDENTIAL)
    posts, cursor, pages = [], None, 0
    while True:
        page = await bobo.tagged_posts(profile.profile_id, cursor, credential=CREDENTIAL)
        posts.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert pages == 3 and 24 < len(posts) <= 31
    assert len({post.shortcode for post in posts}) == len(posts)
    assert {post.dimensions["tagged_user_ids"] for post in posts} == {profile.profile_id}
    assert profile.profile_id not in {post.profile_id for post in posts}
    times = [post.publish_time for post in posts]
    assert times == sorted(times, reverse=True)
    # A tagged post is its author's timeline post.
    original = await bobo.post_by_shortcode(posts[0].shortcode, credential=CREDENTIAL)
    assert (original.profile_id, original.publish_time, original.metrics["likes"]) == (
        posts[0].profile_id,
        posts[0].publish_time,
        posts[0].metrics["likes"],
    )


async def test_stories_are_the_last_day_s(bobo: ArrayBoboClient) -> None:
    now = datetime.now(UTC)
    seen = []
    for number in range(30):
        profile = await bobo.profile_by_handle(f"story{number}.teller", credential=CREDENTIAL)
        stories = await bobo.stories(profile.profile_id, credential=CREDENTIAL)
        assert len(stories) <= 8
        for story in stories:
            assert (story.kind, story.dimensions["post_type"]) == ("story", "story")
            assert story.shortcode == story.dimensions["post_id"]
            assert (story.profile_id, story.handle) == (profile.profile_id, profile.handle)
            assert now - timedelta(days=1) - timedelta(seconds=5) < story.publish_time <= now + timedelta(seconds=5)
        assert [story.publish_time for story in stories] == sorted(story.publish_time for story in stories)
        seen.extend(stories)
    assert {story.dimensions["content_type"] for story in seen} == {"image", "video"}
    assert any(story.dimensions["story_links"] for story in seen)
    assert any(story.dimensions["story_hashtags"] for story in seen)
    video = next(story for story in seen if story.dimensions["content_type"] == "video")
    assert video.dimensions["display_url"] != video.dimensions["thumbnail_src"]


async def test_private_and_unknown_profiles(bobo: ArrayBoboClient) -> None:
    private = await bobo.profile_by_handle("private.diya", credential=CREDENTIAL)
    assert await bobo.stories(private.profile_id, credential=CREDENTIAL) == []
    page = await bobo.tagged_posts(private.profile_id, credential=CREDENTIAL)
    assert (page.items, page.next_cursor) == ([], None)
    with pytest.raises(ProfileMissing, match="User not found"):
        await bobo.stories("not-a-number", credential=CREDENTIAL)
    with pytest.raises(ProfileMissing):
        await bobo.tagged_posts("not-a-number", credential=CREDENTIAL)


def test_stories_roll_off_a_day_after_they_were_posted() -> None:
    world = InstagramWorld()
    account = world.account("tara.studio")
    assert account is not None
    now = int(time.time())
    for story in active_stories(world, account, now):
        later = [other.pk for other in active_stories(world, account, story.expiring_at)]
        assert story.pk not in later
        assert story.pk in [other.pk for other in active_stories(world, account, story.expiring_at - 1)]
