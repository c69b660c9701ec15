"""GraphAPI: pure parsers on Graph-shaped fixtures, Graph's refusals as typed errors, and the client
against a canned transport and over loopback HTTP to the sandbox (which refuses retired metrics as Graph
does), and the insights flows through the stack."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from core.settings import SettingsError, load_settings
from providers.credentials import CredentialStore
from providers.errors import (
    AuthExpired,
    BadResponse,
    Forbidden,
    InputRejected,
    NotSupported,
    PostMissing,
    ProfileMissing,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.instagram import graphapi
from providers.instagram.graphapi import (
    DEFAULT_VERSION,
    MEDIA_FIELDS,
    MEDIA_INSIGHT_METRICS,
    OWN_ACCOUNT_FIELDS,
    POST_PRODUCT_TYPES,
    PROFILE_FIELDS,
    SOURCE,
    STORY_FIELDS,
    GraphApiClient,
    error_for,
    parse_audience,
    parse_error,
    parse_media_page,
    parse_post_insights,
    parse_profile,
    parse_profile_insights,
    parse_stories_and_media,
    parse_story_insights,
    parse_token_info,
    retry_after_from_usage,
    unsupported_metrics,
)
from providers.sandbox import SandboxConfig, SandboxServer
from providers.sandbox.instagram import InstagramWorld
from tests.support import SandboxHttp, load_fixture
from topics import names
from topics.models import Platform, Post, TraceLog

ANANYA = "34071474682"
ANANYA_GRAPH_ID = "17841434071474682"
ROHAN = "61827127850"
TOKEN = "EAAGm0PX4ZCpsBAKxZBq7"
CREDENTIAL = Credential(
    id="g1", source=SOURCE, secrets={"token": TOKEN, "user_id": ANANYA_GRAPH_ID}, handle="ananya.diaries"
)
AUDIENCE = ("follower_demographics", "reached_audience_demographics", "engaged_audience_demographics")
BREAKDOWNS = {"country": "country", "city": "city", "gender,age": "gender_age"}


load = partial(load_fixture, "graphapi")


def at_utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def audience_answers() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (metric, breakdown): load(f"{metric}_{suffix}.json")
        for metric in AUDIENCE
        for breakdown, suffix in BREAKDOWNS.items()
    }


# Business discovery


def test_profile_by_handle() -> None:
    payload = load("business_discovery.json")
    node = payload["business_discovery"]
    profile = parse_profile(payload, handle="ananya.diaries")

    assert (profile.platform, profile.source, profile.kind) == (Platform.INSTAGRAM, SOURCE, "profile")
    assert (profile.profile_id, profile.handle) == (ANANYA, "ananya.diaries")
    # followers_count arrived as the string "2624".
    assert profile.metrics == {"media_count": 57, "followers": 2624, "following": 2148}
    assert profile.dimensions == {
        "profile_id": ANANYA,
        "handle": "ananya.diaries",
        "profile_pic_url": node["profile_picture_url"],
        "bio": "Books, chai and long walks",
        "full_name": "Ananya Diaries",
        "external_url": None,
        "fbid": ANANYA_GRAPH_ID,
        "recent_posts_cursor": "Z3JhcGgtbWVkaWE6MzQwNzE0NzQ2ODI6MjU",
        "is_business_or_creator": True,
    }
    assert "recent_posts" not in profile.dimensions

    posts = profile.embedded_posts
    assert [post.shortcode for post in posts] == [
        "DAQIAt2ITMg",
        "DVWFJzFjhA9",
        "CqcCS4U-u1a",
        "C_h_b9kZ8p3",
        "DUn8lCz1KeU",
        "Cpt5uIDQYSx",
    ]
    assert [post.dimensions["post_type"] for post in posts] == ["image", "carousel", "reels", "image", "image", "image"]
    first = posts[0]
    assert (first.source, first.kind, first.profile_id, first.handle) == (SOURCE, "post", ANANYA, "ananya.diaries")
    assert first.publish_time == at_utc(2026, 11, 22, 22, 35, 8)
    assert first.metrics == {"comments": 0, "likes": 117}
    assert first.dimensions == {
        "profile_id": ANANYA,
        "handle": "ananya.diaries",
        "post_id": "17988675869782846",
        "post_type": "image",
        "display_url": node["media"]["data"][0]["media_url"],
        "thumbnail_src": node["media"]["data"][0]["media_url"],
        "taken_at_timestamp": int(at_utc(2026, 11, 22, 22, 35, 8).timestamp()),
        "caption": "Monsoon mood #weekend #reels",
    }


def test_media_type_drift_and_missing_fields() -> None:
    payload = load("business_discovery.json")
    posts = parse_profile(payload).embedded_posts
    reel = posts[2]
    # A /reel/ permalink with a share query still yields the code; a video's media_url is no thumbnail.
    assert reel.shortcode == "CqcCS4U-u1a"
    assert reel.dimensions["display_url"] == payload["business_discovery"]["media"]["data"][2]["media_url"]
    assert reel.dimensions["thumbnail_src"] is None
    assert posts[3].dimensions["post_id"] == "17917003080541378"  # sent as a number
    assert posts[4].metrics == {"comments": 6, "likes": None}  # like_count left out
    assert posts[4].dimensions["caption"] is None
    assert posts[5].metrics["comments"] == 5  # sent as "5"


def test_profile_identity_and_refusals() -> None:
    assert parse_profile(load("business_discovery.json"), handle="@Ananya.Diaries").handle == "ananya.diaries"
    with pytest.raises(ProfileMissing, match=r"answered for 'ananya\.diaries'"):
        parse_profile(load("business_discovery.json"), handle="ananya.diary")
    payload = load("business_discovery.json")
    del payload["business_discovery"]["ig_id"]
    with pytest.raises(BadResponse, match="no ig_id"):
        parse_profile(payload)
    with pytest.raises(BadResponse, match="no business_discovery"):
        parse_profile({"id": ANANYA_GRAPH_ID})
    payload = load("business_discovery.json")
    payload["business_discovery"]["media"]["data"][1]["timestamp"] = "19/11/2026"
    with pytest.raises(BadResponse, match=r"media\.timestamp"):
        parse_profile(payload)
    payload = load("business_discovery.json")
    del payload["business_discovery"]["media"]["data"][1]["permalink"]
    with pytest.raises(BadResponse, match="no permalink"):
        parse_profile(payload)


def test_media_pages_to_the_last() -> None:
    first = parse_media_page(load("business_discovery.json"), handle="ananya.diaries")
    assert first.next_cursor == "Z3JhcGgtbWVkaWE6MzQwNzE0NzQ2ODI6MjU"
    assert len(first.items) == 6

    last = parse_media_page(load("business_discovery_last_page.json"), handle="ananya.diaries")
    assert last.next_cursor is None  # only "before" on the last page
    assert len(last.items) == 7
    oldest = last.items[-1]
    assert (oldest.shortcode, oldest.profile_id) == ("Dddn9TV8ZF4", ANANYA)
    assert oldest.publish_time == at_utc(2026, 6, 8, 22, 35, 53)

    assert parse_media_page({"business_discovery": {"ig_id": 1, "username": "new.shop"}}).items == []
    empty = {
        "business_discovery": {
            "ig_id": 1,
            "username": "new.shop",
            "media": {"data": [], "paging": {"cursors": {"after": "QVFI"}}},
        }
    }
    assert parse_media_page(empty).next_cursor is None


def test_discovered_media_are_owned_by_the_discovered_account() -> None:
    # Discovered media serve no owner of their own (and Graph refuses user_id): the account's ig_id is theirs.
    assert "user_id" not in MEDIA_FIELDS.split(",") and "owner" not in MEDIA_FIELDS.split(",")
    payload = load("business_discovery.json")
    assert all("user_id" not in item and "owner" not in item for item in payload["business_discovery"]["media"]["data"])
    posts = parse_media_page(payload, handle="ananya.diaries").items
    assert {(post.profile_id, post.dimensions["profile_id"], post.handle) for post in posts} == {
        (ANANYA, ANANYA, "ananya.diaries")
    }
    del payload["business_discovery"]["ig_id"]
    with pytest.raises(BadResponse, match="business_discovery has no ig_id, so its media would have no owner"):
        parse_media_page(payload, handle="ananya.diaries")


def test_stories_and_media() -> None:
    payload = load("own_account_stories.json")
    stories, page = parse_stories_and_media(payload, handle="rohan.clicks")

    assert [story.shortcode for story in stories] == [
        "3152529953325326312",
        "3153244054774944084",
        "3157161144142916176",
        "3159813910599811435",
    ]
    first = stories[0]
    item = payload["stories"]["data"][0]
    assert (first.kind, first.profile_id, first.handle) == ("story", ROHAN, "rohan.clicks")
    assert first.publish_time == at_utc(2026, 11, 22, 21, 22, 24)
    assert first.metrics == {}
    assert first.dimensions == {
        "profile_id": ROHAN,  # ig_id sent as a string here
        "handle": "rohan.clicks",
        "post_id": "17861970793068574",
        "post_type": "story",
        "content_type": "image",
        "display_url": item["media_url"],
        "thumbnail_src": item["media_url"],
        "taken_at_timestamp": int(at_utc(2026, 11, 22, 21, 22, 24).timestamp()),
        "caption": None,
    }
    assert stories[1].dimensions["content_type"] == "video" and stories[1].dimensions["thumbnail_src"] is None
    # Graph leaves media_url out of stories with licensed music.
    assert stories[2].dimensions["display_url"] is None

    assert [post.kind for post in page.items] == ["post"] * 3
    assert {(post.profile_id, post.handle) for post in page.items} == {(ROHAN, "rohan.clicks")}
    assert page.next_cursor == "Z3JhcGgtbWVkaWE6NjE4MjcxMjc4NTA6MjU"
    later = {key: value for key, value in payload.items() if key != "stories"}
    assert parse_stories_and_media(later, handle="@Rohan.Clicks")[0] == []


def test_stories_of_another_account_are_refused() -> None:
    # Another account's token reads that account's own node: its stories must not go under the handle asked.
    with pytest.raises(Forbidden, match=r"belongs to 'rohan\.clicks', not to 'ananya\.diaries'"):
        parse_stories_and_media(load("own_account_stories.json"), handle="ananya.diaries")
    with pytest.raises(BadResponse, match="without its username"):
        parse_stories_and_media({"id": "17841461827127850", "ig_id": ROHAN}, handle="rohan.clicks")
    payload = load("own_account_stories.json")
    del payload["ig_id"]
    with pytest.raises(BadResponse, match="account has no ig_id, so its stories would have no owner"):
        parse_stories_and_media(payload, handle="rohan.clicks")


# Insights


@pytest.mark.parametrize(
    ("post_type", "media_id", "metrics"),
    [
        # views also fills the legacy impressions of feed posts; "saved" came as "4".
        (
            "image",
            "17988675869782846",
            {
                "views": 2352,
                "impressions": 2352,
                "reach": 1492,
                "likes": 117,
                "comments": 0,
                "saved": 4,
                "shares": 2,
                "interactions": 123,
            },
        ),
        # A reel's views leave play_count to the scrapers' public count; "shares" did not come at all.
        (
            "reels",
            "17965200221455086",
            {"views": 6289, "reach": 748, "likes": 68, "comments": 1, "saved": 3, "shares": None, "interactions": 74},
        ),
        (
            "carousel",
            "17940219014859065",
            {
                "views": 1467,
                "impressions": 1467,
                "reach": 1210,
                "likes": 176,
                "comments": 13,
                "saved": 10,
                "shares": 4,
                "interactions": 203,
            },
        ),
    ],
)
def test_post_insights(post_type: str, media_id: str, metrics: dict[str, Any]) -> None:
    product_type = POST_PRODUCT_TYPES[post_type]
    post = parse_post_insights(
        load(f"media_insights_{post_type}.json"),
        media_id=media_id,
        shortcode="Cxyz",
        metrics=MEDIA_INSIGHT_METRICS[product_type],
        product_type=product_type,
    )
    assert (post.kind, post.source, post.shortcode, post.profile_id) == ("post_insights", SOURCE, "Cxyz", None)
    assert post.metrics == metrics
    assert post.dimensions == {"post_id": media_id}


def test_insights_without_views_fill_no_legacy_key() -> None:
    # Graph refused views (the client asked again without it): impressions stays unknown, not zero.
    asked = tuple(name for name in MEDIA_INSIGHT_METRICS["FEED"] if name != "views")
    payload = load("media_insights_image.json")
    payload["data"] = [entry for entry in payload["data"] if entry["name"] != "views"]
    post = parse_post_insights(payload, media_id="17988675869782846", shortcode="C", metrics=asked, product_type="FEED")
    assert "views" not in post.metrics and "impressions" not in post.metrics
    assert post.metrics["reach"] == 1492


def test_post_insights_refusals() -> None:
    with pytest.raises(BadResponse, match="answered for 17988675869782846"):
        parse_post_insights(
            load("media_insights_image.json"),
            media_id="17900000000000001",
            shortcode="C",
            metrics=("reach",),
            product_type="FEED",
        )
    with pytest.raises(PostMissing, match="no insights"):
        parse_post_insights(
            {"data": []}, media_id="17900000000000001", shortcode="C", metrics=("reach",), product_type="FEED"
        )


def test_story_insights_expand_navigation() -> None:
    post = parse_story_insights(
        load("story_insights.json"),
        load("story_navigation.json"),
        story_id="17861970793068574",
        shortcode="3152529953325326312",
    )
    assert (post.kind, post.shortcode) == ("post_insights", "3152529953325326312")
    assert post.dimensions == {"post_id": "17861970793068574"}
    assert post.metrics == {
        "views": 137,
        "impressions": 137,
        "reach": 112,
        "replies": 6,
        "shares": 1,
        "interactions": 7,
        "follows": 2,
        "profile_visits": 1,
        "profile_activity": 2,
        "navigation": 120,
        "tap_forward": 72,
        "tap_back": 6,
        "tap_exit": 14,
        "swipe_forward": 7,
        "automatic_forward": 18,
        "swipe_back": 2,
        "swipe_up": 1,
        "swipe_down": None,  # not in the breakdown: unknown, not zero
    }


def test_story_insights_without_data_or_navigation() -> None:
    with pytest.raises(PostMissing, match="no insights"):
        parse_story_insights(
            load("story_insights_empty.json"),
            load("story_navigation.json"),
            story_id="17861970793068574",
            shortcode="3152529953325326312",
        )
    post = parse_story_insights(
        load("story_insights.json"), {"data": []}, story_id="17861970793068574", shortcode="3152529953325326312"
    )
    assert post.metrics["reach"] == 112
    assert post.metrics["navigation"] is None and post.metrics["tap_forward"] is None


def test_audience_breakdowns() -> None:
    country = parse_audience(
        load("follower_demographics_country.json"), metric="follower_demographics", breakdown="country"
    )
    assert country == {
        "IN": 1565,
        "US": 317,
        "AE": 213,
        "GB": 69,
        "BD": 132,
        "NP": 80,
        "SA": 55,
        "CA": 55,
        "AU": 35,
        "SG": 27,
        "PK": 46,
        "DE": 23,
    }
    city = parse_audience(load("follower_demographics_city.json"), metric="follower_demographics", breakdown="city")
    assert city["Delhi, Delhi"] == 684 and len(city) == 10
    gender_age = parse_audience(
        load("follower_demographics_gender_age.json"), metric="follower_demographics", breakdown="gender,age"
    )
    assert set(gender_age) == {"female", "male", "uncategorized"}
    assert gender_age["female"] == {
        "13-17": 21,
        "18-24": 381,
        "25-34": 359,
        "35-44": 105,
        "45-54": 42,
        "55-64": 17,
        "65+": 7,
    }
    assert gender_age["uncategorized"]["65+"] == 1
    engaged = parse_audience(
        load("engaged_audience_demographics_gender_age.json"),
        metric="engaged_audience_demographics",
        breakdown="gender,age",
    )
    assert engaged["uncategorized"] == {"18-24": 2, "25-34": 5, "35-44": 1}  # ages without anyone are left out


def test_audience_refusals() -> None:
    with pytest.raises(BadResponse, match="asked for reached_audience_demographics"):
        parse_audience(
            load("engaged_audience_demographics_country.json"),
            metric="reached_audience_demographics",
            breakdown="country",
        )
    with pytest.raises(BadResponse, match="answered by country"):
        parse_audience(load("follower_demographics_country.json"), metric="follower_demographics", breakdown="city")
    assert parse_audience({"data": []}, metric="follower_demographics", breakdown="city") is None


def test_profile_insights_fill_the_right_columns() -> None:
    profile = parse_profile_insights(load("business_discovery.json"), audience_answers(), handle="ananya.diaries")
    dims = profile.dimensions

    assert (profile.kind, profile.profile_id, profile.handle) == ("profile_insights", ANANYA, "ananya.diaries")
    assert profile.metrics == {}
    assert set(dims) == {
        f"{prefix}_{suffix}"
        for prefix in ("audience", "reached_audience", "engaged_audience")
        for suffix in ("country", "city", "gender_age")
    }
    assert dims["audience_country"]["IN"] == 1565
    # The legacy engine swapped these two; reached comes from reached_audience_demographics.
    assert dims["reached_audience_country"]["IN"] == 818
    assert dims["engaged_audience_country"] == {
        "IN": 130,
        "US": 7,
        "AE": 10,
        "GB": 10,
        "BD": 3,
        "NP": 4,
        "SA": 2,
        "CA": 3,
        "AU": 2,
        "SG": 2,
        "PK": 3,
        "DE": 1,
    }
    assert dims["reached_audience_city"]["Bangalore, Karnataka"] == 368
    assert dims["engaged_audience_gender_age"]["female"]["25-34"] == 51

    partial = {key: value for key, value in audience_answers().items() if key[0] == "follower_demographics"}
    dims = parse_profile_insights(load("business_discovery.json"), partial, handle="ananya.diaries").dimensions
    assert dims["audience_city"]["Mumbai, Maharashtra"] == 421
    assert dims["reached_audience_country"] is None and dims["engaged_audience_gender_age"] is None


@pytest.mark.parametrize(
    ("fixture", "asked", "dropped"),
    [
        # Named for the media's product type, several at once.
        ("error_100_metric_not_for_product_type.json", ("views", "reach", "replies"), ("views", "replies")),
        # Named for the media's type alone (as exileum/meta-mcp#120 quotes it for an image).
        ("error_100_metric_not_supported_for_media_type.json", ("views", "shares"), ("shares",)),
        # Named as retired (user insights).
        ("error_100_metric_no_longer_supported.json", ("impressions",), ("impressions",)),
        # Graph lists what it serves: whatever else was asked is what it refused.
        (
            "error_100_metric_enum.json",
            ("impressions", "reach", "plays", "views", "video_views"),
            ("impressions", "plays", "video_views"),
        ),
        # Other #100s and other codes name no metric.
        ("error_100_33_object_missing.json", ("views", "reach"), ()),
        ("error_100_nonexisting_field.json", ("views",), ()),
        ("error_10_not_enough_viewers.json", ("views",), ()),
    ],
)
def test_unsupported_metrics_named_by_a_refusal(fixture: str, asked: tuple[str, ...], dropped: tuple[str, ...]) -> None:
    assert unsupported_metrics(parse_error(load(fixture)), asked) == dropped


def test_only_metrics_meta_serves_are_asked() -> None:
    retired = {
        "impressions",
        "plays",
        "clips_replays_count",
        "ig_reels_aggregated_all_plays_count",
        "video_views",
        "engagement",
        "taps_forward",
        "taps_back",
        "exits",
    }
    assert set(MEDIA_INSIGHT_METRICS) == {"FEED", "REELS", "STORY"}
    assert all("views" in metrics and not retired & set(metrics) for metrics in MEDIA_INSIGHT_METRICS.values())
    assert "saved" not in MEDIA_INSIGHT_METRICS["STORY"]  # Graph serves saves of feed posts and reels only
    assert set(POST_PRODUCT_TYPES.items()) == {("image", "FEED"), ("carousel", "FEED"), ("reels", "REELS")}


# Tokens

NOW = at_utc(2026, 11, 23, 8, 0, 0)


def test_token_info() -> None:
    info = parse_token_info(load("debug_token.json"))
    assert info.is_valid is True
    assert info.user_id == "19933581039749891"
    assert info.missing_scopes == ()
    assert info.data_access_expires_at == datetime.fromtimestamp(1803157531, UTC)
    assert info.expires_at == datetime.fromtimestamp(1800566725, UTC)
    assert info.problem(NOW) is None

    noscope = parse_token_info(load("debug_token_noscope.json"))
    assert noscope.missing_scopes == ("instagram_manage_insights",)
    assert noscope.problem(NOW) == "token lacks scopes instagram_manage_insights"

    expired = parse_token_info(load("debug_token_expired.json"))
    assert expired.is_valid is False and expired.problem(NOW) == "token is not valid"

    never = parse_token_info(
        {"data": {"is_valid": True, "expires_at": 0, "data_access_expires_at": 0, "scopes": ["instagram_basic"]}}
    )
    assert never.expires_at is None and never.data_access_expires_at is None
    with pytest.raises(BadResponse, match="no data"):
        parse_token_info({"error": "nope"})


def test_data_access_expiry_keeps_the_legacy_week_of_grace() -> None:
    def info(expired_days_ago: float) -> Any:
        moment = int((NOW - timedelta(days=expired_days_ago)).timestamp())
        return parse_token_info(
            {
                "data": {
                    "is_valid": True,
                    "scopes": list(load("debug_token.json")["data"]["scopes"]),
                    "data_access_expires_at": moment,
                }
            }
        )

    assert info(6).problem(NOW) is None
    assert info(7).problem(NOW) is not None and "data access expired" in info(8).problem(NOW)


# Refusals


@pytest.mark.parametrize(
    ("fixture", "error", "text"),
    [
        ("error_110_invalid_user.json", ProfileMissing, "Invalid username"),
        ("error_100_33_object_missing.json", ProfileMissing, "Object does not exist"),
        (
            "error_100_2108006_pre_conversion.json",
            NotSupported,
            "Media was posted before account was converted to business account",
        ),
        ("error_100_nonexisting_field.json", InputRejected, r"nonexisting field \(user_id\)"),
        ("error_190_session_expired.json", AuthExpired, "Session has expired"),
        ("error_190_malformed_token.json", AuthExpired, "Malformed access token"),
        ("error_10_permission.json", AuthExpired, "does not have permission"),
        ("error_200_permission.json", AuthExpired, "Requires instagram_manage_insights permission"),
        ("error_10_not_enough_viewers.json", Forbidden, "Not enough viewers"),
        ("error_200_provide_app_id.json", Forbidden, "Provide valid app ID"),
        ("error_4_app_request_limit.json", QuotaExceeded, "Application request limit reached"),
        ("error_17_user_request_limit.json", QuotaExceeded, "User request limit reached"),
        ("error_32_page_request_limit.json", QuotaExceeded, "Page request limit reached"),
        ("error_613_rate_limit.json", QuotaExceeded, "exceeded the rate limit"),
        ("error_80002_instagram_rate_limit.json", QuotaExceeded, "too many calls to this Instagram account"),
        ("error_2_service_unavailable.json", ProviderUnavailable, "retry your request later"),
    ],
)
def test_graph_refusals(fixture: str, error: type[ProviderError], text: str) -> None:
    graph_error = parse_error(load(fixture))
    assert graph_error is not None
    mapped = error_for(graph_error, what="GET /v12.0/1")
    assert type(mapped) is error and mapped.source == SOURCE
    assert "GET /v12.0/1: " in mapped.message
    assert load(fixture)["error"]["fbtrace_id"] in mapped.message
    with pytest.raises(error, match=text):
        raise mapped


def test_refusal_names_the_missing_thing_and_scrubs_tokens() -> None:
    missing = error_for(
        parse_error(load("error_100_33_object_missing.json")),
        what="GET /v15.0/1/insights",
        missing=PostMissing,
        missing_text="Story ID doesn't exist",
    )
    assert type(missing) is PostMissing and missing.message.startswith("Story ID doesn't exist")
    scrubbed = parse_error(load("error_190_malformed_token.json"), redact=(TOKEN,))
    assert scrubbed is not None and TOKEN not in scrubbed.message and "***" in scrubbed.message
    assert parse_error({"data": []}) is None


def test_retry_after_from_the_usage_headers() -> None:
    business = {
        "1784140": [
            {
                "type": "instagram",
                "call_count": 100,
                "total_cputime": 8,
                "total_time": 9,
                "estimated_time_to_regain_access": 12,
            }
        ]
    }
    headers = httpx.Headers(
        {
            "x-business-use-case-usage": json.dumps(business),
            "x-app-usage": json.dumps({"call_count": 100, "total_cputime": 3, "total_time": 4}),
        }
    )
    assert retry_after_from_usage(headers) == 720.0
    assert retry_after_from_usage(httpx.Headers({"x-app-usage": '{"call_count": 100}'})) is None
    assert retry_after_from_usage(httpx.Headers({"x-business-use-case-usage": "not json"})) is None
    limited = error_for(
        parse_error(load("error_80002_instagram_rate_limit.json")),
        what="GET /v12.0/1",
        retry_after=retry_after_from_usage(headers),
    )
    assert isinstance(limited, QuotaExceeded) and limited.retry_after == 720.0


# The client against canned answers

Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


class CannedHttp:
    """Stands in for ProviderHttp: ``answer(path, params)`` gives (status, body[, headers]); calls are recorded."""

    def __init__(self, answer: Callable[[str, dict[str, str]], Answer]) -> None:
        self._answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert (source, method) == (SOURCE, "GET")
        self.calls.append((path, kwargs))
        status, body, *headers = self._answer(path, kwargs["params"])
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers[0] if headers else None)


def canned(
    answer: Callable[[str, dict[str, str]], Answer],
    app_token: str | None = None,
) -> tuple[GraphApiClient, CannedHttp]:
    http = CannedHttp(answer)
    return GraphApiClient(http, app_token=app_token), http  # type: ignore[arg-type]


def always(status: int, body: Any, headers: dict[str, str] | None = None) -> Callable[..., Answer]:
    return lambda path, params: (status, body, headers or {})


async def test_client_sends_the_legacy_requests() -> None:
    own = {"id": ANANYA_GRAPH_ID, "ig_id": ANANYA, "username": "ananya.diaries"}
    graph, http = canned(
        lambda path, params: (200, load("business_discovery.json") if "business_discovery" in params["fields"] else own)
    )
    await graph.profile_by_handle("@ananya.diaries", credential=CREDENTIAL, request_id="r1")
    await graph.posts_by_handle("ananya.diaries", "QVFIUabc", credential=CREDENTIAL)
    await graph.stories_and_media("ananya.diaries", credential=CREDENTIAL)
    await graph.stories_and_media("ananya.diaries", "QVFIUabc", credential=CREDENTIAL)

    path, kwargs = http.calls[0]
    assert path == f"/{DEFAULT_VERSION}/{ANANYA_GRAPH_ID}"
    assert kwargs == {
        "credential": CREDENTIAL,
        "request_id": "r1",
        "secrets_as_headers": False,
        "params": {
            "fields": f"business_discovery.username(ananya.diaries){{{PROFILE_FIELDS},media{{{MEDIA_FIELDS}}}}}",
            "access_token": TOKEN,
        },
    }
    assert PROFILE_FIELDS == (
        "id,ig_id,name,website,followers_count,follows_count,profile_picture_url,username,biography,media_count"
    )
    fields = [call[1]["params"]["fields"] for call in http.calls[1:]]
    assert fields[0] == (
        f"business_discovery.username(ananya.diaries){{ig_id,username,media_count,"
        f"media.after(QVFIUabc){{{MEDIA_FIELDS}}}}}"
    )
    # Stories (and their media) are read on the account's own node, not through business discovery.
    assert [call[0] for call in http.calls[2:]] == [f"/{DEFAULT_VERSION}/{ANANYA_GRAPH_ID}"] * 2
    assert fields[1] == f"{OWN_ACCOUNT_FIELDS},media{{{MEDIA_FIELDS},media_product_type}},stories{{{STORY_FIELDS}}}"
    assert fields[2] == f"{OWN_ACCOUNT_FIELDS},media.after(QVFIUabc){{{MEDIA_FIELDS},media_product_type}}"


async def test_client_insights_requests() -> None:
    def answer(path: str, params: dict[str, str]) -> Answer:
        if path.startswith("/v26.0/17965200221455086"):
            return 200, load("media_insights_reels.json")
        if params.get("metric") == "navigation":
            return 200, load("story_navigation.json")
        return 200, load("story_insights.json")

    http = CannedHttp(answer)
    graph = GraphApiClient(http, version="v26.0")  # type: ignore[arg-type]
    reel = await graph.post_insights("17965200221455086_34071474682", "reels", "CqcCS4U-u1a", credential=CREDENTIAL)
    story = await graph.story_insights("17861970793068574", "3152529953325326312", credential=CREDENTIAL)

    assert (reel.data.shortcode, reel.data.metrics["views"], reel.dropped_metrics) == ("CqcCS4U-u1a", 6289, ())
    assert story.data.metrics["tap_exit"] == 14
    # Every call names the configured version; each asks its media product type's current metrics.
    assert [(path, kwargs["params"]) for path, kwargs in http.calls] == [
        (
            "/v26.0/17965200221455086/insights",
            {
                "metric": "views,reach,likes,comments,saved,shares,total_interactions",
                "period": "lifetime",
                "access_token": TOKEN,
            },
        ),
        (
            "/v26.0/17861970793068574/insights",
            {
                "metric": "views,reach,replies,shares,total_interactions,follows,profile_visits,profile_activity",
                "period": "lifetime",
                "access_token": TOKEN,
            },
        ),
        (
            "/v26.0/17861970793068574/insights",
            {
                "metric": "navigation",
                "breakdown": "story_navigation_action_type",
                "period": "lifetime",
                "access_token": TOKEN,
            },
        ),
    ]
    with pytest.raises(NotSupported, match="'story'"):
        await graph.post_insights("17965200221455086", "story", "C", credential=CREDENTIAL)


def test_the_graph_version_is_configuration() -> None:
    assert load_settings().graph_api_version == DEFAULT_VERSION
    assert load_settings(graph_api_version="v26.0").graph_api_version == "v26.0"
    with pytest.raises(SettingsError, match="BEAT_GRAPH_API_VERSION"):
        load_settings(graph_api_version="26")
    with pytest.raises(ValueError, match="not a Graph API version"):
        GraphApiClient(CannedHttp(always(200, {})), version="latest")  # type: ignore[arg-type]


def audience_or(refusal: Answer | None) -> Callable[[str, dict[str, str]], Answer]:
    """Answers business discovery and the nine audience calls; ``refusal`` replaces the reached ones."""

    def answer(path: str, params: dict[str, str]) -> Answer:
        if "fields" in params:
            return 200, load("business_discovery.json")
        if refusal is not None and params["metric"] == "reached_audience_demographics":
            return refusal
        return 200, audience_answers()[(params["metric"], params["breakdown"])]

    return answer


async def test_profile_insights_asks_nine_breakdowns_at_once() -> None:
    graph, http = canned(audience_or(None))
    profile = await graph.profile_insights("ananya.diaries", credential=CREDENTIAL)

    assert profile.data.dimensions["reached_audience_country"]["IN"] == 818 and profile.dropped_metrics == ()
    assert http.calls[0][1]["params"]["fields"] == "business_discovery.username(ananya.diaries){id,ig_id,username}"
    audience_calls = http.calls[1:]
    assert {path for path, _ in audience_calls} == {f"/{DEFAULT_VERSION}/{ANANYA_GRAPH_ID}/insights"}
    assert sorted(
        (kwargs["params"]["metric"], kwargs["params"]["breakdown"]) for _, kwargs in audience_calls
    ) == sorted((metric, breakdown) for metric in AUDIENCE for breakdown in BREAKDOWNS)
    # Demographics are total values over one of the timeframes Graph still takes (not last_90_days).
    assert all(
        kwargs["params"] | {"metric": "", "breakdown": ""}
        == {
            "metric": "",
            "breakdown": "",
            "period": "lifetime",
            "metric_type": "total_value",
            "timeframe": "this_month",
            "access_token": TOKEN,
        }
        for _, kwargs in audience_calls
    )


async def test_profile_insights_survive_some_refusals_but_not_all() -> None:
    graph, _ = canned(audience_or((400, load("error_10_not_enough_viewers.json"))))
    dims = (await graph.profile_insights("ananya.diaries", credential=CREDENTIAL)).data.dimensions
    assert dims["reached_audience_country"] is None and dims["engaged_audience_country"]["IN"] == 130

    def every_audience_call_refused(path: str, params: dict[str, str]) -> Answer:
        return (200, load("business_discovery.json")) if "fields" in params else (400, load("error_10_permission.json"))

    graph, _ = canned(every_audience_call_refused)
    with pytest.raises(AuthExpired):
        await graph.profile_insights("ananya.diaries", credential=CREDENTIAL)
    graph, _ = canned(always(400, load("error_110_invalid_user.json")))
    with pytest.raises(ProfileMissing, match="Invalid username"):
        await graph.profile_insights("nobody.here", credential=CREDENTIAL)


def missing_media_then(debug: Answer) -> Callable[[str, dict[str, str]], Answer]:
    def answer(path: str, params: dict[str, str]) -> Answer:
        return debug if path.endswith("debug_token") else (400, load("error_100_33_object_missing.json"))

    return answer


@pytest.mark.parametrize(
    ("debug", "error", "text"),
    [
        ((200, load("debug_token_noscope.json")), AuthExpired, "lacks scopes instagram_manage_insights"),
        ((200, load("debug_token_expired.json")), AuthExpired, "token is not valid"),
        ((200, load("debug_token.json")), PostMissing, "Post missing"),
        ((400, load("error_190_session_expired.json")), Forbidden, "refused the app token"),
    ],
)
async def test_a_missing_media_is_checked_against_the_token(
    debug: Answer, error: type[ProviderError], text: str
) -> None:
    graph, http = canned(missing_media_then(debug), app_token="123|app-secret")
    with pytest.raises(error, match=text):
        await graph.post_insights("17988675869782846", "image", "DAQIAt2ITMg", credential=CREDENTIAL)
    path, kwargs = http.calls[1]
    assert path == f"/{DEFAULT_VERSION}/debug_token"
    assert kwargs["params"] == {"input_token": TOKEN, "access_token": "123|app-secret"}
    assert kwargs["secrets_as_headers"] is False


async def test_a_missing_media_without_an_app_token_is_a_missing_post() -> None:
    graph, http = canned(missing_media_then((500, "unreachable")))
    with pytest.raises(PostMissing, match="token not checked"):
        await graph.post_insights("17988675869782846", "image", "DAQIAt2ITMg", credential=CREDENTIAL)
    assert len(http.calls) == 1


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "text"),
    [
        (400, load("error_190_session_expired.json"), {}, AuthExpired, "Session has expired"),
        (
            403,
            load("error_4_app_request_limit.json"),
            {
                "x-app-usage": '{"call_count":100}',
                "x-business-use-case-usage": '{"1":[{"type":"pages","estimated_time_to_regain_access":5}]}',
            },
            QuotaExceeded,
            "Application request limit",
        ),
        (200, load("error_613_rate_limit.json"), {}, QuotaExceeded, "exceeded the rate limit"),
        (403, f"<html>blocked {TOKEN}</html>", {}, Forbidden, r"blocked \*\*\*"),
        (200, "not json", {}, BadResponse, "not JSON"),
    ],
)
async def test_client_maps_refusals(
    status: int, body: Any, headers: dict[str, str], error: type[ProviderError], text: str
) -> None:
    graph, _ = canned(always(status, body, headers))
    with pytest.raises(error, match=text) as raised:
        await graph.posts_by_handle("ananya.diaries", credential=CREDENTIAL)
    assert TOKEN not in str(raised.value)
    if isinstance(raised.value, QuotaExceeded) and headers:
        assert raised.value.retry_after == 300.0


async def test_handles_and_ids_that_cannot_be_graph_ones_are_refused_unsent() -> None:
    graph, http = canned(always(200, {}))
    with pytest.raises(ProfileMissing, match="Invalid username"):
        await graph.profile_by_handle("ana){id},media{id", credential=CREDENTIAL)
    with pytest.raises(PostMissing, match="not a Graph id"):
        await graph.post_insights("1790?x=1", "image", "C", credential=CREDENTIAL)
    with pytest.raises(PostMissing, match="not a Graph id"):
        await graph.story_insights("../me", "C", credential=CREDENTIAL)
    assert http.calls == []


async def test_a_credential_without_token_or_user_id_is_expired() -> None:
    graph, http = canned(always(200, {}))
    broken = Credential(id="g9", source=SOURCE, secrets={"token": TOKEN}, handle="ananya.diaries")
    with pytest.raises(AuthExpired, match="g9 lacks a token or user_id") as raised:
        await graph.profile_by_handle("ananya.diaries", credential=broken)
    assert TOKEN not in str(raised.value) and http.calls == []


# The client over loopback HTTP to the sandbox

APP_TOKEN = "918273645501928|sandbox-app-secret"


@pytest.fixture(scope="module")
def world() -> InstagramWorld:
    return InstagramWorld()


@pytest.fixture
def graph(sandbox_http: SandboxHttp, traces: list[TraceLog]) -> GraphApiClient:
    async def record(trace: TraceLog) -> None:
        traces.append(trace)

    return GraphApiClient(sandbox_http(SOURCE, trace_sink=record), app_token=APP_TOKEN)


def credential_for(world: InstagramWorld, handle: str, token: str = "EAAGsandbox") -> Credential:
    account = world.account(handle)
    assert account is not None
    return Credential(
        id=f"graph-{handle}", source=SOURCE, secrets={"token": token, "user_id": str(account.fbid)}, handle=handle
    )


async def own_credential(graph: GraphApiClient, world: InstagramWorld, handle: str) -> Credential:
    """The account's own credential, once the account has been looked up by handle: the sandbox can name an
    account's own node only by a handle it has been asked for."""
    credential = credential_for(world, handle)
    await graph.profile_by_handle(handle, credential=credential)
    return credential


def graph_get(server: SandboxServer, user_id: int, fields: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/{SOURCE}/{DEFAULT_VERSION}/{user_id}", params={"fields": fields, "access_token": "EAAGsandbox"}
    )


async def test_sandbox_profile_and_every_page_of_posts(
    graph: GraphApiClient, world: InstagramWorld, traces: list[TraceLog]
) -> None:
    credential = credential_for(world, "ananya.diaries")
    profile = await graph.profile_by_handle("ananya.diaries", credential=credential, request_id="r-graph")
    account = world.account("ananya.diaries")
    assert (profile.profile_id, profile.handle) == (account.profile_id, "ananya.diaries")
    assert profile.metrics == {
        "media_count": account.media_count,
        "followers": account.followers,
        "following": account.following,
    }
    assert profile.dimensions["fbid"] == str(account.fbid)

    pages: list[list[Post]] = []
    cursors: list[str | None] = [None]
    while True:
        page = await graph.posts_by_handle("ananya.diaries", cursors[-1], credential=credential)
        pages.append(page.items)
        if page.next_cursor is None:
            break
        cursors.append(page.next_cursor)
    posts = [post for page in pages for post in page]
    assert [len(page) for page in pages] == [25, 25, 7]
    # The sandbox refuses user_id on discovered media as Graph does; each post's owner is the account asked about.
    assert {(post.profile_id, post.dimensions["profile_id"], post.handle) for post in posts} == {
        (account.profile_id, account.profile_id, "ananya.diaries")
    }
    assert [post.shortcode for post in posts] == [post.shortcode for post in world.timeline(account, 0, 100)]
    assert pages[0] == profile.embedded_posts
    assert cursors[1] == profile.dimensions["recent_posts_cursor"]
    # The token went as a query parameter and stays out of every trace.
    assert traces and all("EAAGsandbox" not in repr(trace) and trace.credential_id == credential.id for trace in traces)


async def test_sandbox_refuses_fields_discovered_media_do_not_have(
    sandbox_server: SandboxServer, world: InstagramWorld
) -> None:
    asker, rohan = world.account("ananya.diaries"), world.account("rohan.clicks")
    legacy = "business_discovery.username(rohan.clicks){ig_id,username,media{id,user_id,username,like_count}}"
    refused = graph_get(sandbox_server, asker.fbid, legacy)
    recorded = load("error_100_nonexisting_field.json")["error"]
    assert refused.status_code == 400
    assert {key: refused.json()["error"][key] for key in ("message", "type", "code")} == {
        key: recorded[key] for key in ("message", "type", "code")
    }
    # Read by its owner a medium is an IGMedia, which has no user_id either.
    own = graph_get(sandbox_server, rohan.fbid, "username,media{id,user_id}")
    assert own.status_code == 400
    assert own.json()["error"]["message"] == (
        "(#100) Tried accessing nonexisting field (user_id) on node type (IGMedia)"
    )
    # Fields only the owner is given are left out of another account's media, not refused.
    discovered = graph_get(
        sandbox_server, asker.fbid, "business_discovery.username(rohan.clicks){media{owner,like_count}}"
    )
    items = discovered.json()["business_discovery"]["media"]["data"]
    assert items and all(set(item) == {"id", "like_count"} for item in items)
    owned = graph_get(sandbox_server, rohan.fbid, "username,media{owner}").json()
    assert owned["username"] == "rohan.clicks"
    assert [item["owner"] for item in owned["media"]["data"]] == [{"id": str(rohan.fbid)}] * len(items)
    # Business discovery has no stories edge.
    stories = graph_get(sandbox_server, asker.fbid, "business_discovery.username(rohan.clicks){stories{id}}")
    assert stories.status_code == 400 and stories.json()["error"]["code"] == 10


async def test_sandbox_stories_need_the_account_s_own_credential(graph: GraphApiClient, world: InstagramWorld) -> None:
    others = await own_credential(graph, world, "ananya.diaries")
    await own_credential(graph, world, "rohan.clicks")
    with pytest.raises(Forbidden, match=r"belongs to 'ananya\.diaries', not to 'rohan\.clicks'"):
        await graph.stories_and_media("rohan.clicks", credential=others)


async def test_sandbox_stories_and_media(graph: GraphApiClient, world: InstagramWorld) -> None:
    for handle in ("rohan.clicks", "neel.beats", "meera.makeup", "tara_reads", "zoya.style", "sana.eats"):
        credential = await own_credential(graph, world, handle)
        stories, page = await graph.stories_and_media(handle, credential=credential)
        if stories:
            break
    assert stories, "no sandbox account has a live story today"
    assert {story.kind for story in stories} == {"story"}
    assert all(
        story.shortcode.isdigit() and story.dimensions["content_type"] in ("image", "video") for story in stories
    )
    profile_id = world.account(handle).profile_id
    assert {(story.profile_id, story.handle) for story in stories} == {(profile_id, handle)}
    times = [story.publish_time for story in stories]
    assert times == sorted(times, reverse=True)
    assert datetime.now(UTC) - times[-1] < timedelta(days=2)

    media = list(page.items)
    while page.next_cursor:
        later_stories, page = await graph.stories_and_media(handle, page.next_cursor, credential=credential)
        assert later_stories == []
        media.extend(page.items)
    assert len(media) == world.account(handle).media_count
    assert {(post.kind, post.profile_id) for post in media} == {("post", profile_id)}


async def business_posts(graph: GraphApiClient, credential: Credential) -> dict[str, Post]:
    """One post of each type from the account's first page of media (the sandbox remembers their Graph ids)."""
    posts = (await graph.profile_by_handle(credential.handle or "", credential=credential)).embedded_posts
    return {
        post_type: next(post for post in posts if post.dimensions["post_type"] == post_type)
        for post_type in ("image", "carousel", "reels")
    }


async def live_story(graph: GraphApiClient, world: InstagramWorld) -> tuple[Post, Credential]:
    for handle in ("rohan.clicks", "neel.beats", "meera.makeup", "tara_reads", "zoya.style", "sana.eats"):
        credential = await own_credential(graph, world, handle)
        stories, _ = await graph.stories_and_media(handle, credential=credential)
        if stories:
            return stories[0], credential
    pytest.fail("no sandbox account has a live story today")


async def test_sandbox_post_insights_for_each_media_type(graph: GraphApiClient, world: InstagramWorld) -> None:
    credential = credential_for(world, "ananya.diaries")
    posts = await business_posts(graph, credential)
    for post_type, post in posts.items():
        insights = await graph.post_insights(
            post.dimensions["post_id"], post_type, post.shortcode, credential=credential
        )
        metrics = insights.data.metrics
        # The sandbox refuses retired metrics as Graph does: asking one would have shown as a drop.
        assert insights.dropped_metrics == (), post_type
        assert insights.data.shortcode == post.shortcode and insights.data.kind == "post_insights"
        assert all(value is not None for value in metrics.values()), post_type
        assert metrics["views"] > 0 and metrics["reach"] >= metrics["likes"] == post.metrics["likes"]
        if post_type == "reels":
            assert "impressions" not in metrics and "play_count" not in metrics
        else:
            assert metrics["impressions"] == metrics["views"]

    story, owner = await live_story(graph, world)
    insights = await graph.story_insights(story.dimensions["post_id"], story.shortcode, credential=owner)
    metrics = insights.data.metrics
    assert insights.dropped_metrics == ()
    assert metrics["impressions"] == metrics["views"] >= metrics["reach"] > 0 and "saved" not in metrics

    with pytest.raises(PostMissing, match="'DAQIAt2ITMg' is not a Graph id"):
        await graph.post_insights("DAQIAt2ITMg", "image", "DAQIAt2ITMg", credential=credential)
    # A v1 media id is no Graph object; debug_token finds the token fine, so the post is what is missing.
    with pytest.raises(
        PostMissing,
        match=rf"Post missing \(GET /{DEFAULT_VERSION}/3152529953325326312/insights: "
        "Unsupported",
    ):
        await graph.post_insights("3152529953325326312_61827127850", "image", "C", credential=credential)
    noscope = credential_for(world, "ananya.diaries", token="noscopeEAAG")
    with pytest.raises(AuthExpired, match="lacks scopes instagram_manage_insights"):
        await graph.post_insights(
            posts["image"].dimensions["post_id"], "image", posts["image"].shortcode, credential=noscope
        )


async def test_sandbox_refuses_retired_metrics_as_graph_does(
    sandbox_server: SandboxServer, graph: GraphApiClient, world: InstagramWorld
) -> None:
    posts = await business_posts(graph, credential_for(world, "ananya.diaries"))
    image, reel = posts["image"].dimensions["post_id"], posts["reels"].dimensions["post_id"]

    async def refusal(media_id: str, metrics: str) -> Any:
        async with httpx.AsyncClient(base_url=f"{sandbox_server.url}/{SOURCE}") as client:
            # The legacy version: Graph answers an expired one as its oldest, where these are retired too.
            answer = await client.get(
                f"/v12.0/{media_id}/insights", params={"metric": metrics, "period": "lifetime", "access_token": "EAAG"}
            )
        assert answer.status_code == 400
        error = parse_error(answer.json())
        assert error is not None and error.code == 100 and answer.json()["error"]["type"] == "OAuthException"
        return error

    # Beat's legacy requests, one per media type: each names retired metrics.
    for media_id, metrics, retired in (
        (reel, "plays,likes,comments,reach,total_interactions,saved,shares", ("plays",)),
        (image, "likes,reach,impressions,comments,engagement,saved,shares", ("impressions", "engagement")),
        (image, "reach,impressions,engagement,saved,video_views", ("impressions", "engagement", "video_views")),
    ):
        error = await refusal(media_id, metrics)
        assert error.message.startswith("(#100) metric[") and "must be one of the following values: " in error.message
        assert unsupported_metrics(error, metrics.split(",")) == retired
    error = await refusal(image, "views,reach,replies,navigation")
    assert error.message == (
        "(#100) The Media Insights API does not support the replies, navigation metric for this media product type."
    )


@pytest.fixture
def refusing(sandbox_server: SandboxServer) -> Iterator[Callable[[list[str]], None]]:
    """Make the sandbox refuse Graph metrics Beat asks for; afterwards the knobs are back to defaults. The
    client's once-per-process record of reported drops starts empty."""

    def refuse(metrics: list[str]) -> None:
        knobs = SandboxConfig(graph_refused_metrics=metrics)
        httpx.put(f"{sandbox_server.url}/_sandbox/config", json=knobs.model_dump(mode="json")).raise_for_status()

    graphapi._reported_drops.clear()
    yield refuse
    httpx.put(f"{sandbox_server.url}/_sandbox/config", json=SandboxConfig().model_dump(mode="json")).raise_for_status()


async def test_a_refused_metric_is_dropped_and_the_call_retried_without_it(
    graph: GraphApiClient,
    world: InstagramWorld,
    traces: list[TraceLog],
    refusing: Callable[[list[str]], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    credential = credential_for(world, "ananya.diaries")
    posts = await business_posts(graph, credential)
    story, owner = await live_story(graph, world)
    refusing(["views", "reached_audience_demographics"])
    caplog.set_level(logging.WARNING, logger=graphapi.log.name)
    traces.clear()

    image = await graph.post_insights(
        posts["image"].dimensions["post_id"], "image", posts["image"].shortcode, credential=credential
    )
    reel = await graph.post_insights(
        posts["reels"].dimensions["post_id"], "reels", posts["reels"].shortcode, credential=credential
    )
    for insights in (image, reel):
        assert insights.dropped_metrics == ("views",)
        assert "views" not in insights.data.metrics and insights.data.metrics["reach"] > 0
    assert "impressions" not in image.data.metrics  # nothing to fill it from
    # Each call asked once with views, and once more without.
    asked = [posts[kind].dimensions["post_id"] for kind in ("image", "image", "reels", "reels")]
    assert [trace.path for trace in traces] == [f"/{SOURCE}/{DEFAULT_VERSION}/{media}/insights" for media in asked]

    told = await graph.story_insights(story.dimensions["post_id"], story.shortcode, credential=owner)
    assert told.dropped_metrics == ("views",) and told.data.metrics["tap_forward"] is not None

    audience = await graph.profile_insights("meera.makeup", credential=credential_for(world, "meera.makeup"))
    assert audience.dropped_metrics == ("reached_audience_demographics",)
    dims = audience.data.dimensions
    assert dims["reached_audience_country"] is None and dims["audience_country"] and dims["engaged_audience_city"]

    # Logged once per metric, however often Graph refuses it.
    logged = [record.getMessage() for record in caplog.records if record.name == graphapi.log.name]
    assert len(logged) == 2 and sum("the views metric" in line for line in logged) == 1
    assert any("the reached_audience_demographics metric" in line for line in logged)


async def test_sandbox_story_insights(graph: GraphApiClient, world: InstagramWorld) -> None:
    story, credential = await live_story(graph, world)
    insights = (await graph.story_insights(story.dimensions["post_id"], story.shortcode, credential=credential)).data
    metrics = insights.metrics
    assert (insights.shortcode, insights.dimensions) == (story.shortcode, {"post_id": story.dimensions["post_id"]})
    assert metrics["views"] >= metrics["reach"] > 0
    assert metrics["tap_forward"] > 0
    named = [
        metrics[action] or 0
        for action in (
            "automatic_forward",
            "tap_back",
            "tap_exit",
            "tap_forward",
            "swipe_back",
            "swipe_down",
            "swipe_forward",
            "swipe_up",
        )
    ]
    assert sum(named) == metrics["navigation"]
    with pytest.raises(PostMissing, match="Story ID doesn't exist: 'not-a-story'"):
        await graph.story_insights("not-a-story", "x", credential=credential)
    # Stories from RapidAPI carry the Instagram pk as their id: Graph does not know it.
    with pytest.raises(
        PostMissing, match=rf"Story ID doesn't exist \(GET /{DEFAULT_VERSION}/3152529953325326312/insights"
    ):
        await graph.story_insights("3152529953325326312", "3152529953325326312", credential=credential)


async def test_sandbox_profile_insights_in_the_right_columns(graph: GraphApiClient, world: InstagramWorld) -> None:
    credential = credential_for(world, "meera.makeup")
    insights = await graph.profile_insights("meera.makeup", credential=credential)
    profile, dims = insights.data, insights.data.dimensions
    assert profile.profile_id == world.account("meera.makeup").profile_id and insights.dropped_metrics == ()
    assert all(dims[key] for key in dims), [key for key in dims if not dims[key]]

    def total(key: str) -> int:
        return sum(dims[key].values())

    # Engaged people are a few of those reached, who are fewer than the followers.
    assert total("engaged_audience_country") < total("reached_audience_country") < total("audience_country")
    assert total("audience_country") <= world.account("meera.makeup").followers
    assert set(dims["reached_audience_gender_age"]) == {"female", "male", "uncategorized"}
    with pytest.raises(AuthExpired, match="permission"):
        await graph.profile_insights(
            "meera.makeup", credential=credential_for(world, "meera.makeup", token="noscopeEAAG")
        )


async def test_sandbox_debug_token(graph: GraphApiClient) -> None:
    info = await graph.debug_token("EAAGsandbox", APP_TOKEN)
    assert info.is_valid is True and info.problem(datetime.now(UTC)) is None
    assert (await graph.debug_token("noscopeEAAG", APP_TOKEN)).missing_scopes == ("instagram_manage_insights",)
    assert (await graph.debug_token("expiredEAAG", APP_TOKEN)).is_valid is False
    with pytest.raises(AuthExpired, match="Session has expired"):
        await graph.debug_token("EAAGsandbox", "expired-app-token")


async def test_sandbox_refusals(graph: GraphApiClient, world: InstagramWorld) -> None:
    credential = await own_credential(graph, world, "ananya.diaries")
    for call in (graph.profile_by_handle, graph.posts_by_handle, graph.profile_insights):
        with pytest.raises(ProfileMissing, match="Invalid username"):
            await call("missing.person", credential=credential)
    # Stories are read on the credential's own node, which is not the account asked for.
    with pytest.raises(Forbidden, match=r"not to 'missing\.person'"):
        await graph.stories_and_media("missing.person", credential=credential)

    expired = credential_for(world, "ananya.diaries", token="expiredEAAG")
    calls = [
        graph.profile_by_handle("ananya.diaries", credential=expired),
        graph.posts_by_handle("ananya.diaries", credential=expired),
        graph.stories_and_media("ananya.diaries", credential=expired),
        graph.post_insights("17988675869782846", "image", "DAQIAt2ITMg", credential=expired),
        graph.story_insights("17861970793068574", "3152529953325326312", credential=expired),
        graph.profile_insights("ananya.diaries", credential=expired),
    ]
    for call in calls:
        with pytest.raises(AuthExpired, match="Session has expired") as raised:
            await call
        assert "expiredEAAG" not in str(raised.value)


@pytest.fixture
def limited_token(sandbox_server: SandboxServer) -> Iterator[str]:
    """A token the sandbox lets through once per 30 s; afterwards the knobs are back to defaults."""
    token = "EAAGlimited"
    limits = SandboxConfig(rate_limits={token: "1/30"})
    httpx.put(f"{sandbox_server.url}/_sandbox/config", json=limits.model_dump(mode="json")).raise_for_status()
    yield token
    httpx.put(f"{sandbox_server.url}/_sandbox/config", json=SandboxConfig().model_dump(mode="json")).raise_for_status()
    httpx.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()


async def test_sandbox_rate_limit_is_a_quota_error(
    graph: GraphApiClient, world: InstagramWorld, limited_token: str
) -> None:
    credential = credential_for(world, "ananya.diaries", token=limited_token)
    await graph.posts_by_handle("ananya.diaries", credential=credential)
    with pytest.raises(QuotaExceeded) as limited:
        await graph.posts_by_handle("ananya.diaries", credential=credential)
    assert 29 < limited.value.retry_after <= 30


# The insights flow through the stack: the session's sandbox, worker, sink and Postgres


async def stored_insight_views(pool: Any, shortcode: str, views: int) -> Any:
    """The post's row once the sink has written its views (the COMPLETE status may land a batch earlier)."""
    for _ in range(100):
        row = await pool.fetchrow(
            "SELECT insight_views, impressions FROM instagram_post WHERE shortcode = $1", shortcode
        )
        if row is not None and row["insight_views"] == views:
            return row
        await asyncio.sleep(0.1)
    pytest.fail(f"instagram_post {shortcode} never got insight_views {views}")


async def test_post_insights_flow_reports_drops_and_stores_views(
    sandbox: SandboxServer, run_flow: Any, pool: Any
) -> None:
    handle = "ananya.diaries"
    account = InstagramWorld().account(handle)
    assert account is not None
    secrets = {"token": "EAAGflow", "user_id": str(account.fbid)}
    await CredentialStore(pool).add(SOURCE, secrets, handle=handle, idempotency_key=f"{SOURCE}:{handle}:views")
    http = ProviderHttp(base_urls={SOURCE: f"{sandbox.url}/{SOURCE}"}, timeout=5.0)
    try:
        credential = Credential(id="probe", source=SOURCE, secrets=secrets, handle=handle)
        image = (await business_posts(GraphApiClient(http), credential))["image"]
    finally:
        await http.aclose()
    params = {
        "shortcode": image.shortcode,
        "handle": handle,
        "post_id": image.dimensions["post_id"],
        "post_type": "image",
    }

    refused = SandboxConfig(graph_refused_metrics=["views"])
    httpx.put(f"{sandbox.url}/_sandbox/config", json=refused.model_dump(mode="json")).raise_for_status()
    try:
        result, [event], _ = await run_flow("refresh_post_insights", params, topic=names.POST_LOG)
    finally:
        httpx.put(f"{sandbox.url}/_sandbox/config", json=SandboxConfig().model_dump(mode="json")).raise_for_status()
    # The request completes without the refused metric, and says so.
    assert result["dropped_metrics"] == ["views"]
    assert "views" not in event["metrics"] and event["metrics"]["reach"] > 0

    result, [event], _ = await run_flow("refresh_post_insights", params, topic=names.POST_LOG)
    views = event["metrics"]["views"]
    assert result["dropped_metrics"] == [] and views > 0 and event["metrics"]["impressions"] == views
    # Graph's views get their own column; the legacy impressions are filled from them.
    row = await stored_insight_views(pool, image.shortcode, views)
    assert row["impressions"] == views
