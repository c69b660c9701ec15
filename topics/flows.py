"""The flow catalogue, part of the contract: every legacy flow by name (legacy §2) with its platform,
parameter model, default concurrency and timeout.

Default concurrency is the legacy workers × per-process concurrency. A flow whose
provider work is not built yet says why in ``pending``: it is listed by ``beat flows``
as disabled, and a worker dead-letters its requests with the reason instead of
"completing" them with a stub. Which code runs a flow is the worker's business
(``agents/flows/registry.py``), so the facade and the sink read this without loading any flow.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from topics import export_params as e
from topics import params as p
from topics.errors import BeatError, Decision
from topics.models import Platform

IG, YT, SHOP = Platform.INSTAGRAM, Platform.YOUTUBE, Platform.SHOPIFY


@dataclass(frozen=True, slots=True)
class FlowSpec:
    name: str
    platform: Platform
    params: type[p.Params]
    concurrency: int
    pending: str = ""
    # Flows that page slowly on purpose (legacy waits) get more than the default timeout.
    timeout: float | None = None

    @property
    def enabled(self) -> bool:
        return not self.pending


# What a CSV export adds to the longest of its children's timeouts: its own reads and the writing of its files.
REPORT_MARGIN = 600.0
# The timeout of a child whose flow has no timeout of its own in the catalogue.
DEFAULT_CHILD_TIMEOUT = 120.0


def _after(child_timeout: float | None, waves: int = 1) -> float:
    """An export's timeout: ``waves`` children in turn, each at most ``child_timeout``, then the margin."""
    return waves * (child_timeout or DEFAULT_CHILD_TIMEOUT) + REPORT_MARGIN


FLOWS: dict[str, FlowSpec] = {
    spec.name: spec
    for spec in (
        # Instagram
        FlowSpec("refresh_profile_by_handle", IG, p.HandleParams, 50),
        FlowSpec("refresh_profile_by_profile_id", IG, p.ProfileIdParams, 5),
        FlowSpec("refresh_profile_basic", IG, p.ProfileBasicParams, 25),
        FlowSpec("refresh_profile_custom", IG, p.ProfileCustomParams, 2, timeout=600),
        FlowSpec("refresh_post_by_shortcode", IG, p.ShortcodeParams, 5),
        FlowSpec("refresh_post_insights", IG, p.PostInsightsParams, 5),
        FlowSpec("refresh_profile_insights", IG, p.HandleParams, 5),
        FlowSpec("refresh_tagged_posts_by_profile_id", IG, p.TaggedPostsParams, 5, timeout=600),
        FlowSpec("refresh_stories_posts", IG, p.HandleParams, 5, timeout=300),
        FlowSpec("refresh_story_insights", IG, p.StoryInsightsParams, 5, timeout=300),
        FlowSpec("refresh_story_posts_by_profile_id", IG, p.StoryPostsParams, 5),
        FlowSpec("fetch_profile_followers", IG, p.ProfileIdParams, 15, timeout=900),
        FlowSpec("fetch_profile_following", IG, p.FollowingParams, 15, timeout=300),
        FlowSpec("fetch_post_likes", IG, p.PostLikesParams, 5, timeout=300),
        FlowSpec("fetch_post_comments", IG, p.PostCommentsParams, 5, timeout=300),
        FlowSpec("fetch_hashtag_posts", IG, p.HashtagPostsParams, 5, timeout=900),
        # YouTube
        FlowSpec("refresh_yt_profiles", YT, p.YtProfilesParams, 50),
        FlowSpec("refresh_yt_posts", YT, p.YtPostsParams, 5),
        FlowSpec("refresh_yt_profile_insights", YT, p.ChannelIdParams, 5),
        FlowSpec("refresh_yt_posts_by_playlist_id", YT, p.YtPlaylistParams, 5, timeout=900),
        FlowSpec("refresh_yt_posts_by_channel_id", YT, p.YtChannelPostsParams, 25, timeout=900),
        FlowSpec("refresh_yt_posts_by_genre", YT, p.YtGenreParams, 5),
        FlowSpec("refresh_yt_posts_by_search", YT, p.YtSearchParams, 5, timeout=3600),
        FlowSpec("refresh_yt_post_type", YT, p.YtPostTypeParams, 5),
        FlowSpec("fetch_yt_post_comments", YT, p.PostCommentsParams, 5, timeout=300),
        FlowSpec("refresh_yt_activities", YT, p.YtActivitiesParams, 5, timeout=300),
        FlowSpec("refresh_yt_profile_relationship", YT, p.YtRelationshipParams, 5, timeout=900),
        # YouTube CSV exports: each waits for its children, so its timeout covers theirs (REPORT_MARGIN).
        FlowSpec("fetch_channels_csv", YT, e.ChannelIdsParams, 5, timeout=_after(None)),
        FlowSpec("fetch_channel_videos_csv", YT, e.ChannelVideosParams, 5, timeout=_after(900)),
        FlowSpec("fetch_playlist_videos_csv", YT, e.PlaylistParams, 5, timeout=_after(900)),
        FlowSpec("fetch_keyword_videos_csv", YT, e.KeywordVideosParams, 5, timeout=_after(3600)),
        FlowSpec("fetch_video_details_csv", YT, e.VideoIdsParams, 5, timeout=_after(None)),
        FlowSpec("fetch_channel_monthly_stats_csv", YT, e.ChannelRangeParams, 5, timeout=_after(None)),
        FlowSpec("fetch_channel_daily_stats_csv", YT, e.ChannelRangeParams, 5, timeout=_after(None)),
        FlowSpec("fetch_channel_demographic_csv", YT, e.ChannelIdsParams, 5, timeout=_after(None)),
        FlowSpec("fetch_channel_audience_geography_csv", YT, e.ChannelIdsParams, 5, timeout=_after(None)),
        FlowSpec("fetch_channel_engagement_csv", YT, e.EngagementParams, 5, timeout=_after(None)),
        # Two waves of children: the videos, then their channels.
        FlowSpec("fetch_ad_vs_organic_csv", YT, e.VideoIdsParams, 5, timeout=_after(None, waves=2)),
        # GPT enrichment
        FlowSpec("refresh_instagram_gpt_data_base_gender", IG, p.GptParams, 15, timeout=300),
        FlowSpec("refresh_instagram_gpt_data_base_location", IG, p.GptParams, 15, timeout=300),
        FlowSpec("refresh_instagram_gpt_data_base_categ_lang_topics", IG, p.GptParams, 15, timeout=300),
        FlowSpec("refresh_instagram_gpt_data_audience_age_gender", IG, p.GptAudienceAgeGenderParams, 15, timeout=300),
        FlowSpec("refresh_instagram_gpt_data_audience_cities", IG, p.GptParams, 15, timeout=300),
        FlowSpec("refresh_instagram_gpt_data_gender_location_lang", IG, p.GptParams, 25, timeout=300),
        # Other
        FlowSpec("refresh_orders_by_store", SHOP, p.OrdersParams, 5, timeout=600),
        FlowSpec("asset_upload_flow", IG, p.AssetParams, 75, timeout=180),
        FlowSpec("asset_upload_flow_stories", IG, p.AssetParams, 15, timeout=180),
        # Sentiment and the collection reports (legacy §8 listeners, run as flows over Kafka)
        FlowSpec("sentiment_extraction", IG, p.SentimentParams, 5),
        FlowSpec("fetch_keyword_collection", IG, p.KeywordCollectionParams, 5, timeout=900),
        FlowSpec("fetch_sentiment_report", IG, p.SentimentReportParams, 5, timeout=600),
    )
}


def timeout_of(spec: FlowSpec, overrides: dict[str, float], default: float) -> float:
    """A flow's timeout: configured per flow, else the flow's own, else the configured default."""
    return overrides.get(spec.name, spec.timeout or default)


class UnknownFlow(BeatError, LookupError):
    decision = Decision.POISON


def get_flow(name: str) -> FlowSpec:
    try:
        return FLOWS[name]
    except KeyError:
        raise UnknownFlow(f"unknown flow {name!r}") from None


@dataclass(frozen=True, slots=True)
class FlowSelection:
    """What a worker runs: the selected flows it processes, and the selected disabled ones it refuses."""

    enabled: list[FlowSpec]
    disabled: list[FlowSpec]


def is_enabled(spec: FlowSpec, disabled: Iterable[str] = ()) -> bool:
    """Whether a flow runs: it is built and the configuration does not switch it off."""
    return spec.enabled and spec.name not in set(disabled)


def enabled_flows(disabled: Iterable[str] = ()) -> list[str]:
    disabled = set(disabled)
    return [spec.name for spec in FLOWS.values() if is_enabled(spec, disabled)]


# Enough names to show what exists without a reason outgrowing an error column.
_LISTED_FLOWS = 12


def disabled_reason(name: str, disabled: Iterable[str] = ()) -> str:
    """Why a request for a disabled flow is refused, naming (the first of) the flows that run."""
    enabled = enabled_flows(disabled)
    listed = ", ".join(enabled[:_LISTED_FLOWS])
    if len(enabled) > _LISTED_FLOWS:
        listed += f", … ({len(enabled)} in all; see `beat flows`)"
    return f"flow {name} is disabled; enabled flows: {listed or 'none'}"


def select_flows(globs: Iterable[str] | None, disabled: Iterable[str] = ()) -> FlowSelection:
    """The flows matching any glob (every flow when none is given), less those matching a ``!glob``, split into
    enabled and disabled. ``!`` lets one deployment run its long flows in a worker of their own and
    everything else in another (``--flows 'fetch_*_csv'`` beside ``--flows '!fetch_*_csv'``).

    A glob that matches no flow at all is an error, so a typo never starts an idle worker. A selected
    disabled flow is refused rather than ignored: its records are dead-lettered with the reason.
    """
    disabled = set(disabled)
    patterns = list(globs or [])
    included = [pattern for pattern in patterns if not pattern.startswith("!")] or ["*"]
    excluded = {name for pattern in patterns if pattern.startswith("!") for name in _matching(pattern)}
    chosen: dict[str, FlowSpec] = {}
    for pattern in included:
        chosen.update((name, FLOWS[name]) for name in _matching(pattern) if name not in excluded)
    specs = list(chosen.values())
    return FlowSelection(
        enabled=[spec for spec in specs if is_enabled(spec, disabled)],
        disabled=[spec for spec in specs if not is_enabled(spec, disabled)],
    )


def _matching(pattern: str) -> list[str]:
    glob = pattern.removeprefix("!")
    matched = [name for name in FLOWS if fnmatch.fnmatchcase(name, glob)]
    if not matched:
        raise UnknownFlow(f"--flows {pattern!r} matches no flow")
    return matched


class FlowRefused(BeatError, LookupError):
    """A submission for a flow that does not run here (unknown, or disabled), naming the flows that do."""

    decision = Decision.POISON

    def __init__(self, reason: str, enabled: list[str]) -> None:
        super().__init__(f"{reason}; enabled flows: {', '.join(enabled) or 'none'}")
        self.reason = reason
        self.enabled = enabled


def require_enabled(name: str, disabled: Iterable[str] = ()) -> FlowSpec:
    """The spec of a flow requests may be submitted for; FlowRefused otherwise.

    A request for a flow no worker runs would stay PENDING forever, so the door refuses it.
    """
    disabled = set(disabled)
    enabled = enabled_flows(disabled)
    spec = FLOWS.get(name)
    if spec is None:
        # Bounded: the name is the caller's input and goes back to them in the answer.
        raise FlowRefused(f"unknown flow {name[:100]!r}", enabled)
    if not is_enabled(spec, disabled):
        raise FlowRefused(f"flow {name!r} is disabled ({spec.pending or 'BEAT_DISABLED_FLOWS'})", enabled)
    return spec
