"""Which handler runs each flow of the catalogue (``topics/flows.py``), checked when a worker starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agents.flows import assets, exports, gpt, instagram, reports, sentiment, shopify, youtube
from agents.flows.context import FlowContext
from topics.errors import BeatError, Decision
from topics.flows import FLOWS, FlowSpec

FlowHandler = Callable[[FlowContext, Any], Awaitable[dict]]

HANDLERS: dict[str, FlowHandler] = {
    "refresh_profile_by_handle": instagram.refresh_profile_by_handle,
    "refresh_profile_by_profile_id": instagram.refresh_profile_by_profile_id,
    "refresh_profile_basic": instagram.refresh_profile_basic,
    "refresh_profile_custom": instagram.refresh_profile_custom,
    "refresh_post_by_shortcode": instagram.refresh_post_by_shortcode,
    "refresh_post_insights": instagram.refresh_post_insights,
    "refresh_profile_insights": instagram.refresh_profile_insights,
    "refresh_tagged_posts_by_profile_id": instagram.refresh_tagged_posts_by_profile_id,
    "refresh_stories_posts": instagram.refresh_stories_posts,
    "refresh_story_insights": instagram.refresh_story_insights,
    "refresh_story_posts_by_profile_id": instagram.refresh_story_posts_by_profile_id,
    "fetch_profile_followers": instagram.fetch_profile_followers,
    "fetch_profile_following": instagram.fetch_profile_following,
    "fetch_post_likes": instagram.fetch_post_likes,
    "fetch_post_comments": instagram.fetch_post_comments,
    "fetch_hashtag_posts": instagram.fetch_hashtag_posts,
    "refresh_yt_profiles": youtube.refresh_yt_profiles,
    "refresh_yt_posts": youtube.refresh_yt_posts,
    "refresh_yt_profile_insights": youtube.refresh_yt_profile_insights,
    "refresh_yt_posts_by_playlist_id": youtube.refresh_yt_posts_by_playlist_id,
    "refresh_yt_posts_by_channel_id": youtube.refresh_yt_posts_by_channel_id,
    "refresh_yt_posts_by_genre": youtube.refresh_yt_posts_by_genre,
    "refresh_yt_posts_by_search": youtube.refresh_yt_posts_by_search,
    "refresh_yt_post_type": youtube.refresh_yt_post_type,
    "fetch_yt_post_comments": youtube.fetch_yt_post_comments,
    "refresh_yt_activities": youtube.refresh_yt_activities,
    "refresh_yt_profile_relationship": youtube.refresh_yt_profile_relationship,
    "fetch_channels_csv": exports.fetch_channels_csv,
    "fetch_channel_videos_csv": exports.fetch_channel_videos_csv,
    "fetch_playlist_videos_csv": exports.fetch_playlist_videos_csv,
    "fetch_keyword_videos_csv": exports.fetch_keyword_videos_csv,
    "fetch_video_details_csv": exports.fetch_video_details_csv,
    "fetch_channel_monthly_stats_csv": exports.fetch_channel_monthly_stats_csv,
    "fetch_channel_daily_stats_csv": exports.fetch_channel_daily_stats_csv,
    "fetch_channel_demographic_csv": exports.fetch_channel_demographic_csv,
    "fetch_channel_audience_geography_csv": exports.fetch_channel_audience_geography_csv,
    "fetch_channel_engagement_csv": exports.fetch_channel_engagement_csv,
    "fetch_ad_vs_organic_csv": exports.fetch_ad_vs_organic_csv,
    "refresh_instagram_gpt_data_base_gender": gpt.refresh_instagram_gpt_data_base_gender,
    "refresh_instagram_gpt_data_base_location": gpt.refresh_instagram_gpt_data_base_location,
    "refresh_instagram_gpt_data_base_categ_lang_topics": gpt.refresh_instagram_gpt_data_base_categ_lang_topics,
    "refresh_instagram_gpt_data_audience_age_gender": gpt.refresh_instagram_gpt_data_audience_age_gender,
    "refresh_instagram_gpt_data_audience_cities": gpt.refresh_instagram_gpt_data_audience_cities,
    "refresh_instagram_gpt_data_gender_location_lang": gpt.refresh_instagram_gpt_data_gender_location_lang,
    "refresh_orders_by_store": shopify.refresh_orders_by_store,
    "asset_upload_flow": assets.upload_asset,
    "asset_upload_flow_stories": assets.upload_asset,
    "sentiment_extraction": sentiment.sentiment_extraction,
    "fetch_keyword_collection": reports.fetch_keyword_collection,
    "fetch_sentiment_report": reports.fetch_sentiment_report,
}


class HandlersMismatch(BeatError):
    """The catalogue and the handlers disagree: a built flow nobody runs, or code for no flow."""

    decision = Decision.DEFINITIVE


def check_handlers(flows: Mapping[str, FlowSpec] = FLOWS, handlers: Mapping[str, FlowHandler] = HANDLERS) -> None:
    """Every enabled flow has a handler and every handler a built flow; HandlersMismatch otherwise."""
    missing = sorted(name for name, spec in flows.items() if spec.enabled and name not in handlers)
    stray = sorted(name for name in handlers if name not in flows or not flows[name].enabled)
    if missing or stray:
        raise HandlersMismatch(
            f"flows without a handler: {', '.join(missing) or 'none'}; "
            f"handlers without a built flow: {', '.join(stray) or 'none'}"
        )


def handler_of(spec: FlowSpec) -> FlowHandler:
    return HANDLERS[spec.name]
