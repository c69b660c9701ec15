"""Drift alarms: a provider answer with a renamed field is counted, kept with its field names, and opens
the source's circuit once most recent answers drifted; the declared shapes fit the providers' real answers."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from core.metrics import PARSER_DRIFT, REGISTRY
from providers.breaker import Breaker, MemoryBreakerStore, State, source_scope
from providers.crawler import AllSourcesFailed, Crawler
from providers.credential_cache import CredentialCache
from providers.credentials import CredentialPolicy, CredentialStore
from providers.drift import FINDINGS, SHAPES, ParseRate, check
from providers.http import ProviderHttp
from providers.operations import FETCH_YT_PROFILES
from providers.sandbox.seeds import SANDBOX_CREDENTIALS, sandbox_base_urls
from providers.sandbox.youtube import DEMO_CHANNEL_ID
from providers.youtube.youtube_data import YouTubeDataClient
from tests.support import PROVIDER_FIXTURES, migrated_database

SOURCE = "ytapitoken"
CHANNELS = f"/{SOURCE}/youtube/v3/channels"


def drift_count(kind: str, operation: str = "fetch_yt_profiles") -> float:
    return (
        REGISTRY.get_sample_value("beat_parser_drift_total", {"source": SOURCE, "operation": operation, "kind": kind})
        or 0.0
    )


# Every provider answer fixture for a (source, fetch type) with a declared shape.
_YT_DATA_ANSWERS = [
    ("fetch_yt_profiles", "channels.json"),
    ("fetch_yt_profiles", "channels_none.json"),
    ("fetch_yt_posts", "videos.json"),
    ("fetch_yt_posts", "videos_none.json"),
    ("fetch_yt_playlist_items", "playlist_items.json"),
    ("fetch_yt_playlist_items", "playlist_items_last_page.json"),
    ("fetch_yt_activities", "activities.json"),
    ("fetch_yt_activities", "activities_none.json"),
    ("fetch_yt_subscriptions", "subscriptions.json"),
    ("fetch_yt_subscriptions", "subscriptions_none.json"),
    ("fetch_yt_comments", "comment_threads.json"),
    ("fetch_yt_search", "search_snippet.json"),
    ("fetch_yt_genre_search", "search_snippet.json"),
    ("fetch_yt_channel_posts", "search_channel_ids.json"),
]
ANSWERS: list[tuple[str, str, str]] = [
    *(
        (source, operation, f"youtube_data/{name}")
        for source in ("ytapitoken", "ytapi")
        for operation, name in _YT_DATA_ANSWERS
    ),
    ("yt-v31", "fetch_yt_profiles", "ytv31/channels.json"),
    ("yt-v31", "fetch_yt_posts", "ytv31/videos.json"),
    ("yt-v31", "fetch_yt_playlist_items", "ytv31/playlist_items.json"),
    ("yt-v31", "fetch_yt_channel_posts", "ytv31/search_channel_ids.json"),
    ("rapidapi-yt-search", "fetch_yt_search", "youtube_v311/search.json"),
    ("rapidapi-yt-search", "fetch_yt_comments", "youtube_v311/comment_threads.json"),
    ("rapidapi-yt", "fetch_yt_profiles", "youtube138/channel_details.json"),
    ("rapidapi-yt", "fetch_yt_profiles", "youtube138/channel_details_no_banner.json"),
    ("rapidapi-yt", "fetch_yt_posts", "youtube138/video_details.json"),
    ("rapidapi-yt", "fetch_yt_posts", "youtube138/video_details_long.json"),
    ("rapidapi-yt", "fetch_yt_posts", "youtube138/video_details_v1.json"),
    ("rapidapi-yt", "fetch_yt_channel_posts", "youtube138/channel_videos.json"),
    ("rapidapi-yt", "fetch_yt_channel_posts", "youtube138/channel_videos_last_page.json"),
    ("rapidapi-arraybobo", "fetch_profile_by_id", "arraybobo/info.json"),
    ("rapidapi-arraybobo", "fetch_profile_by_handle", "arraybobo/info_username.json"),
    ("rapidapi-arraybobo", "fetch_profile_posts_by_id", "arraybobo/posts.json"),
    ("rapidapi-arraybobo", "fetch_profile_posts_by_id", "arraybobo/posts_last_page.json"),
    ("rapidapi-arraybobo", "fetch_profile_posts_by_id", "arraybobo/posts_missing_user.json"),
    ("rapidapi-arraybobo", "fetch_post_by_shortcode", "arraybobo/post_info_sidecar.json"),
    ("rapidapi-arraybobo", "fetch_post_by_shortcode", "arraybobo/post_info_video.json"),
    ("rapidapi-arraybobo", "fetch_reels_posts", "arraybobo/reels.json"),
    ("rapidapi-arraybobo", "fetch_tagged_posts_by_profile_id", "arraybobo/tagged.json"),
    ("rapidapi-arraybobo", "fetch_tagged_posts_by_profile_id", "arraybobo/tagged_last_page.json"),
    ("rapidapi-arraybobo", "fetch_story_posts_by_profile_id", "arraybobo/stories.json"),
    ("rapidapi-arraybobo", "fetch_story_posts_by_profile_id", "arraybobo/stories_none.json"),
    ("rapidapi-bestsolutions", "fetch_profile_by_handle", "bestsolutions/profile.json"),
    ("rapidapi-bestsolutions", "fetch_profile_by_id", "bestsolutions/profile_by_id.json"),
    ("rapidapi-bestsolutions", "fetch_profile_posts_by_id", "bestsolutions/feed.json"),
    ("rapidapi-bestsolutions", "fetch_profile_posts_by_id", "bestsolutions/feed_last_page.json"),
    ("rapidapi-igapi", "fetch_followers", "igapi/web_followers.json"),
    ("rapidapi-igapi", "fetch_followers", "igapi/web_followers_last_page.json"),
    ("rapidapi-igapi", "fetch_followers", "igapi/web_followers_stopped_early.json"),
    ("rapidapi-jotucker", "fetch_profile_by_id", "jotucker/user_info_by_id.json"),
    ("rapidapi-jotucker", "fetch_profile_by_handle", "jotucker/user_info_by_name.json"),
    ("rapidapi-jotucker", "fetch_profile_by_handle", "jotucker/user_null.json"),
    ("rapidapi-jotucker", "fetch_profile_posts_by_id", "jotucker/medias.json"),
    ("rapidapi-jotucker", "fetch_profile_posts_by_id", "jotucker/medias_last_page.json"),
    ("rapidapi-jotucker", "fetch_post_by_shortcode", "jotucker/media_info_carousel.json"),
    ("rapidapi-jotucker", "fetch_post_by_shortcode", "jotucker/media_info_video.json"),
    ("rapidapi-jotucker", "fetch_followers", "jotucker/followers.json"),
    ("rapidapi-jotucker", "fetch_following", "jotucker/following_last_page.json"),
    ("rapidapi-jotucker", "fetch_post_likes", "jotucker/likers.json"),
    ("rapidapi-jotucker", "fetch_post_comments", "jotucker/comments.json"),
    ("rapidapi-jotucker", "fetch_post_comments", "jotucker/comments_post_missing.json"),
    ("rapidapi-jotucker", "fetch_hashtag_posts", "jotucker/hashtag.json"),
    ("rapidapi-jotucker", "fetch_hashtag_posts", "jotucker/hashtag_unknown.json"),
    ("lama", "fetch_profile_by_handle", "lama/a1_user.json"),
    ("lama", "fetch_profile_by_id", "lama/user_by_id.json"),
    ("lama", "fetch_profile_by_id", "lama/user_by_id_personal.json"),
    ("lama", "fetch_post_by_shortcode", "lama/a1_media_carousel.json"),
    ("lama", "fetch_post_by_shortcode", "lama/a1_media_video.json"),
    ("rapidapi-neotank", "fetch_profile_by_handle", "neotank/account_info.json"),
    ("rapidapi-neotank", "fetch_profile_posts_by_id", "neotank/account_medias.json"),
    ("rapidapi-neotank", "fetch_profile_posts_by_id", "neotank/account_medias_last_page.json"),
    ("rocketapi", "fetch_reels_posts", "rocketapi/clips.json"),
    ("rocketapi", "fetch_followers", "rocketapi/followers.json"),
    ("rocketapi", "fetch_followers", "rocketapi/followers_last_page.json"),
    ("rocketapi", "fetch_post_by_shortcode", "rocketapi/media_info_carousel.json"),
    ("rocketapi", "fetch_post_by_shortcode", "rocketapi/media_info_video.json"),
    ("rocketapi", "fetch_story_posts_by_profile_id", "rocketapi/stories.json"),
    ("rocketapi", "fetch_story_posts_by_profile_id", "rocketapi/stories_none.json"),
    ("shopify", "fetch_orders", "shopify/orders.json"),
    ("shopify", "fetch_orders", "shopify/orders_empty.json"),
    ("shopify", "fetch_orders", "shopify/graphql_orders.json"),
    ("shopify", "fetch_orders", "shopify/graphql_orders_empty.json"),
    ("shopify", "fetch_orders", "shopify/graphql_order_line_items.json"),
    ("yt-analytics", "fetch_yt_profile_insights", "youtube_analytics/report_city.json"),
    ("yt-analytics", "fetch_yt_profile_insights", "youtube_analytics/report_country.json"),
    ("yt-analytics", "fetch_yt_profile_insights", "youtube_analytics/report_gender_age.json"),
    ("graphapi", "fetch_profile_by_handle", "graphapi/business_discovery.json"),
    ("graphapi", "fetch_profile_posts_by_handle", "graphapi/business_discovery_last_page.json"),
    ("graphapi", "fetch_stories_by_handle", "graphapi/own_account_stories.json"),
    ("graphapi", "fetch_post_insights", "graphapi/media_insights_carousel.json"),
    ("graphapi", "fetch_post_insights", "graphapi/media_insights_image.json"),
    ("graphapi", "fetch_post_insights", "graphapi/media_insights_reels.json"),
    ("graphapi", "fetch_story_insights", "graphapi/story_insights.json"),
    ("graphapi", "fetch_story_insights", "graphapi/story_insights_empty.json"),
    ("graphapi", "fetch_story_insights", "graphapi/story_navigation.json"),
    *(
        ("graphapi", "fetch_profile_insights", f"graphapi/{who}_demographics_{by}.json")
        for who in ("follower", "engaged_audience", "reached_audience")
        for by in ("city", "country", "gender_age")
    ),
]
# Refusals and errors, in a 200 body or behind another status: no shape may see drift in them.
REFUSALS: list[tuple[str, str, str]] = [
    ("rapidapi-arraybobo", "fetch_post_by_shortcode", "arraybobo/not_found_media.json"),
    ("rapidapi-arraybobo", "fetch_profile_by_id", "arraybobo/not_found_user.json"),
    ("rapidapi-arraybobo", "fetch_profile_by_id", "arraybobo/forbidden.json"),
    ("rapidapi-arraybobo", "fetch_profile_by_id", "arraybobo/fail_wait.json"),
    ("rapidapi-bestsolutions", "fetch_profile_by_handle", "bestsolutions/not_found.json"),
    ("rapidapi-igapi", "fetch_followers", "igapi/not_found.json"),
    ("rapidapi-jotucker", "fetch_post_by_shortcode", "jotucker/media_not_found.json"),
    ("rapidapi-jotucker", "fetch_profile_by_id", "jotucker/user_not_found.json"),
    ("rapidapi-jotucker", "fetch_profile_by_id", "jotucker/forbidden.json"),
    ("rapidapi-jotucker", "fetch_profile_by_id", "jotucker/too_many_requests.json"),
    ("lama", "fetch_post_by_shortcode", "lama/not_found_media.json"),
    ("lama", "fetch_profile_by_id", "lama/not_found_user.json"),
    ("lama", "fetch_profile_by_id", "lama/insufficient_balance.json"),
    ("rapidapi-neotank", "fetch_profile_by_handle", "neotank/not_found.json"),
    ("rapidapi-neotank", "fetch_profile_by_handle", "neotank/invalid_username.json"),
    ("rocketapi", "fetch_post_by_shortcode", "rocketapi/media_not_found.json"),
    ("rocketapi", "fetch_post_by_shortcode", "rocketapi/instagram_throttled.json"),
    ("rocketapi", "fetch_post_by_shortcode", "rocketapi/invalid_token.json"),
    ("rocketapi", "fetch_post_by_shortcode", "rocketapi/plan_exhausted.json"),
    ("rapidapi-yt", "fetch_yt_profiles", "youtube138/channel_not_found.json"),
    ("rapidapi-yt", "fetch_yt_posts", "youtube138/video_not_found.json"),
    ("rapidapi-yt-search", "fetch_yt_search", "youtube_v311/error_no_key.json"),
    ("yt-v31", "fetch_yt_profiles", "ytv31/error_not_subscribed.json"),
    ("yt-v31", "fetch_yt_profiles", "ytv31/error_quota.json"),
    ("yt-analytics", "fetch_yt_profile_insights", "youtube_analytics/error_backend.json"),
    ("yt-analytics", "fetch_yt_profile_insights", "youtube_analytics/error_query_not_supported.json"),
    ("shopify", "fetch_orders", "shopify/not_found.json"),
    ("shopify", "fetch_orders", "shopify/invalid_token.json"),
    ("shopify", "fetch_orders", "shopify/missing_scope.json"),
    ("shopify", "fetch_orders", "shopify/page_info_with_filter.json"),
    ("shopify", "fetch_orders", "shopify/graphql_access_denied.json"),
    ("shopify", "fetch_orders", "shopify/graphql_internal_error.json"),
    ("shopify", "fetch_orders", "shopify/graphql_max_cost_exceeded.json"),
    ("shopify", "fetch_orders", "shopify/graphql_throttled.json"),
    # A token check made while reading insights answers a ``data`` object, not insight entries.
    ("graphapi", "fetch_post_insights", "graphapi/debug_token.json"),
    ("graphapi", "fetch_post_insights", "graphapi/debug_token_expired.json"),
    # Graph's errors, checked against the shape that reads the answer's top level.
    *(
        ("graphapi", "fetch_stories_by_handle", f"graphapi/{path.name}")
        for path in sorted((PROVIDER_FIXTURES / "graphapi").glob("error_*.json"))
    ),
]


def fixture(path: str) -> dict[str, Any]:
    answer = json.loads((PROVIDER_FIXTURES / path).read_text())
    assert isinstance(answer, dict)
    return answer


@pytest.mark.parametrize(("source", "operation", "path"), ANSWERS + REFUSALS)
def test_the_declared_shapes_fit_the_real_answers(source: str, operation: str, path: str) -> None:
    assert check(SHAPES[source, operation], fixture(path)) == (set(), set())


def test_every_shape_is_checked_against_a_real_answer() -> None:
    assert set(SHAPES) == {(source, operation) for source, operation, _ in ANSWERS}


# Answers that list nothing, and refusals: the only ones in which a shape finds no object to check.
EMPTY = {
    "youtube_data/channels_none.json",
    "youtube_data/videos_none.json",
    "youtube_data/activities_none.json",
    "youtube_data/subscriptions_none.json",
    "arraybobo/posts_missing_user.json",
    "arraybobo/stories_none.json",
    "jotucker/user_null.json",
    "jotucker/comments_post_missing.json",
    "jotucker/hashtag_unknown.json",
    "rocketapi/stories_none.json",
    "shopify/orders_empty.json",
    "shopify/graphql_orders_empty.json",
    "graphapi/story_insights_empty.json",
    *(path for _, _, path in REFUSALS),
}


@pytest.mark.parametrize(("source", "operation", "path"), ANSWERS + REFUSALS)
def test_the_checked_objects_are_found_where_the_shapes_say(source: str, operation: str, path: str) -> None:
    # A path that led nowhere would check nothing and pass any answer.
    found = [item for shape in SHAPES[source, operation] for item in shape.objects(fixture(path))]
    assert bool(found) == (path not in EMPTY)


def rename(objects: list[dict[str, Any]], old: str, new: str) -> None:
    for item in objects:
        if old in item:
            item[new] = item.pop(old)


def test_a_renamed_field_is_missing_under_its_old_name_and_unknown_under_its_new() -> None:
    answer = fixture("youtube_data/channels.json")
    rename(answer["items"], "statistics", "stats")
    assert check(SHAPES[SOURCE, "fetch_yt_profiles"], answer) == ({"statistics"}, {"stats"})


@pytest.mark.parametrize(
    ("source", "operation", "path", "old", "new"),
    [
        ("rapidapi-neotank", "fetch_profile_by_handle", "neotank/account_info.json", "edge_followed_by", "followers"),
        ("rapidapi-jotucker", "fetch_profile_by_id", "jotucker/user_info_by_id.json", "follower_count", "followers"),
        ("rapidapi-arraybobo", "fetch_profile_posts_by_id", "arraybobo/posts.json", "shortcode", "code"),
        ("rocketapi", "fetch_followers", "rocketapi/followers.json", "username", "user_name"),
        ("rapidapi-yt", "fetch_yt_posts", "youtube138/video_details.json", "videoId", "id"),
        ("shopify", "fetch_orders", "shopify/orders.json", "landing_site", "landing_page"),
        ("graphapi", "fetch_stories_by_handle", "graphapi/own_account_stories.json", "timestamp", "created_time"),
        ("shopify", "fetch_orders", "shopify/graphql_orders.json", "customerJourneySummary", "journey"),
    ],
)
def test_a_renamed_field_of_a_nested_answer_is_reported(
    source: str, operation: str, path: str, old: str, new: str
) -> None:
    answer = fixture(path)
    shapes = SHAPES[source, operation]
    rename([item for shape in shapes for item in shape.objects(answer)], old, new)
    assert check(shapes, answer) == ({old}, {new})


async def test_a_sandbox_answer_with_a_renamed_field_raises_the_alarm_and_opens_the_circuit(knobs) -> None:
    knobs.set(rename_fields={CHANNELS: {"statistics": "stats"}})
    FINDINGS.clear()
    missing, unknown = drift_count("missing"), drift_count("unknown")
    with migrated_database() as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        http = ProviderHttp(base_urls=sandbox_base_urls(knobs.url), timeout=5.0)
        await CredentialStore(pool).add(SOURCE, SANDBOX_CREDENTIALS[SOURCE])
        cache = await CredentialCache.open(pool, url, refresh_interval=30.0, max_age=300.0)
        breaker = Breaker(MemoryBreakerStore(), failures=5, cooldown=60.0)
        try:
            crawler = Crawler(
                cache,
                CredentialPolicy(cache, {}, 900.0, 5.0),
                {SOURCE: YouTubeDataClient(http)},
                breaker=breaker,
                parse_rate=ParseRate(0.5, 4),
            )
            # The answers still parse (the counts read as absent): no consecutive failure ever opens the circuit.
            for _ in range(2):
                [profile], source = await crawler.fetch(FETCH_YT_PROFILES, [DEMO_CHANNEL_ID])
                assert (profile.profile_id, source) == (DEMO_CHANNEL_ID, SOURCE)
            assert drift_count("missing") == missing + 2
            assert drift_count("unknown") == unknown + 2
            [finding] = [f for f in FINDINGS.snapshot() if f["source"] == SOURCE]
            assert finding["operation"] == "fetch_yt_profiles"
            assert finding["missing"] == {"statistics": 2} and finding["unknown"] == {"stats": 2}
            # Both of the last answers drifted, over the 0.5 rate: the circuit is open and the next fetch costs no call.
            arrivals = knobs.stats()["total"]["arrivals"]
            with pytest.raises(AllSourcesFailed, match="circuit open"):
                await crawler.fetch(FETCH_YT_PROFILES, [DEMO_CHANNEL_ID])
            assert knobs.stats()["total"]["arrivals"] == arrivals
            assert REGISTRY.get_sample_value("beat_breaker_state", {"source": SOURCE}) == 2
            admission = await breaker.admit(source_scope(SOURCE))
            assert not admission.allowed
        finally:
            await http.aclose()
            await cache.aclose()
            await breaker.aclose()
            await pool.close()
    # Field names stay out of the metric's labels.
    labels = {sample.labels.get("kind") for metric in PARSER_DRIFT.collect() for sample in metric.samples}
    assert labels <= {"missing", "unknown"}
    assert State.OPEN.value == "open"
