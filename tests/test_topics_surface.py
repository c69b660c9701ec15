"""The public surface of ``topics/``: the names other packages import from it. Adding names is free;
removing or renaming one breaks its importers, so it must be a deliberate change to this snapshot."""

from __future__ import annotations

import importlib

import pytest

SURFACE: dict[str, tuple[str, ...]] = {
    "topics.dead_letter": ("MAX_ERROR_MESSAGE", "MAX_KEY_BYTES", "RawRecord", "bounded_key", "dead_letter",
                           "error_info", "record_size"),
    "topics.errors": ("BeatError", "Decision"),
    "topics.flows": ("FLOWS", "FlowRefused", "FlowSelection", "FlowSpec", "UnknownFlow", "disabled_reason",
                     "get_flow", "is_enabled", "require_enabled", "select_flows", "timeout_of"),
    "topics.limits": ("INT32_MAX", "INT32_MIN", "INT64_MAX", "INT64_MIN", "MAX_TEXT", "PARAM_INT_MAX",
                      "PARAM_INT_MIN", "clamp", "clean_json", "clean_text", "clean_texts", "int_problem",
                      "json_problem", "status_budget", "text_problem"),
    "topics.models": ("Activity", "ActivityLog", "Asset", "AssetLog", "DeadLetter", "ErrorInfo", "Model", "Order",
                      "OrderLog", "Payload", "Platform", "Post", "PostLog", "Profile", "ProfileLog", "Relationship",
                      "RelationshipLog", "RequestStatus", "SCHEMA_VERSION", "ScrapeRequest", "Stamps", "Status",
                      "TERMINAL", "TraceLog", "TwoSided", "YtActivity", "YtActivityLog", "YtRelationship",
                      "YtRelationshipLog", "deterministic_id", "supersedes", "utcnow"),
    "topics.names": ("ASSET_LOG", "DEAD_LETTER", "LOG_TOPICS", "ORDER_LOG", "POST_ACTIVITY_LOG", "POST_LOG",
                     "PROFILE_LOG", "PROFILE_RELATIONSHIP_LOG", "RETRY_DUE_HEADER", "STATUS", "STORED_TOPICS",
                     "TRACE_LOG", "YT_ACTIVITY_LOG", "YT_PROFILE_RELATIONSHIP_LOG", "retry_topic", "scrape_topic"),
    "topics.params": ("AssetParams", "ChannelIdParams", "FollowingParams", "GptAudienceAgeGenderParams", "GptData",
                      "GptParams", "HandleParams", "HashtagPostsParams", "OrdersParams", "Params",
                      "PostCommentsParams", "PostInsightsParams", "PostLikesParams", "ProfileBasicParams",
                      "ProfileCustomParams", "ProfileIdParams", "ShortcodeParams", "StoryInsightsParams",
                      "StoryPostsParams", "TaggedPostsParams", "YtActivitiesParams", "YtChannelPostsParams",
                      "YtGenreParams", "YtPlaylistParams", "YtPostTypeParams", "YtPostsParams", "YtProfilesParams",
                      "YtRelationshipParams", "YtSearchParams", "is_shop_domain"),
    "topics.registry": ("ANY_PLATFORM", "LegacyRoute", "TOPICS", "UnknownTopic", "for_payload", "topic"),
    "topics.schemas": ("topic_schema",),
}


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_the_public_names_of_topics_are_still_there(module):
    loaded = importlib.import_module(module)
    missing = [name for name in SURFACE[module] if not hasattr(loaded, name)]
    assert not missing, (f"{module} no longer has {', '.join(missing)}: other packages import these names; "
                         f"keep them, or change their importers and this snapshot together")
