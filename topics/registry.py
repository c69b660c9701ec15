"""Every topic Beat writes, described once: its record model, its key, and where its records go.

One row per topic: the event model (its docstring describes the topic); what the record key is; for a log
topic, the payload a flow emits onto it and the ``kind`` values it carries; the sink table each (platform, kind)
feeds; and the legacy RabbitMQ route ``beat mirror`` republishes it on. ``FlowContext.emit``, the sink's routing
(``sinks/routing.py``), the mirror (``sinks/legacy_events.py``) and ``beat schemas`` read it, so a new
entity is added here and nowhere else in the wiring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from topics import names
from topics.errors import BeatError, Decision
from topics.models import (
    Activity,
    ActivityLog,
    Asset,
    AssetLog,
    DeadLetter,
    Model,
    Order,
    OrderLog,
    Payload,
    Platform,
    Post,
    PostLog,
    Profile,
    ProfileLog,
    Relationship,
    RelationshipLog,
    RequestStatus,
    ScrapeRequest,
    TraceLog,
    YtActivity,
    YtActivityLog,
    YtRelationship,
    YtRelationshipLog,
)
from topics.sentiment import ActivityPage, ActivityPageLog, ReportDone, ReportLog, Sentiment, SentimentLog

# The legacy engine's exchanges (legacy-beat.md §8): entity and status events, provider call traces, and
# report completions for Coffee.
LEGACY_EXCHANGE = "beat.dx"
IDENTITY_EXCHANGE = "identity.dx"
COFFEE_EXCHANGE = "coffee.dx"

IG, YT, SHOPIFY = Platform.INSTAGRAM, Platform.YOUTUBE, Platform.SHOPIFY
# A table route that holds for every platform.
ANY_PLATFORM = None


@dataclass(frozen=True, slots=True)
class LegacyRoute:
    """Where the legacy engine published a topic's events on RabbitMQ."""

    exchange: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str  # unprefixed; a configured prefix is applied by ``Settings.topic``
    event: type[Model]
    key: str  # what the record key is made of, for people (the payload's ``key`` computes it)
    # What a flow emits onto a log topic, and the ``kind`` values its events carry.
    payload: type[Payload] | None = None
    kinds: tuple[str, ...] = ()
    # (platform or ANY_PLATFORM, kind) -> the sink table its events feed; a pair not listed is not stored.
    tables: Mapping[tuple[Platform | None, str], str] = field(default_factory=dict)
    # The legacy routes its records are published on; with several, the mirror's mapper of each route picks
    # the records that are its messages (a page of activities, a keyword or a sentiment report).
    legacy: tuple[LegacyRoute, ...] = ()
    # Other payloads the topic carries, each with its own event class (a page of activities beside them).
    variants: Mapping[type[Payload], type[Model]] = field(default_factory=dict)

    def event_for(self, payload: type[Payload]) -> type[Model]:
        """The event class a payload of this topic is stamped into."""
        return self.variants.get(payload, self.event)

    @property
    def schema_file(self) -> str:
        """The file ``beat schemas`` writes its JSON Schema to."""
        return f"{self.name.removesuffix('.<flow>')}.json"


class UnknownTopic(BeatError, KeyError):
    """A topic or payload the registry does not list: this code and its contract disagree."""

    decision = Decision.DEFINITIVE


def _legacy(*routing_keys: str) -> tuple[LegacyRoute, ...]:
    return tuple(LegacyRoute(LEGACY_EXCHANGE, routing_key) for routing_key in routing_keys)


TOPICS: tuple[TopicSpec, ...] = (
    # One request topic per flow.
    TopicSpec(
        f"{names.SCRAPE_PREFIX}<flow>",
        ScrapeRequest,
        key="chosen by the producer; Beat's API keys by the entity the params name (a handle, an id)",
    ),
    TopicSpec(names.STATUS, RequestStatus, key="request_id", legacy=_legacy("scrape_request_log_events")),
    TopicSpec(
        names.PROFILE_LOG,
        ProfileLog,
        key="PLATFORM:profile_id",
        payload=Profile,
        kinds=("profile", "profile_insights", "gpt_enrichment"),
        tables={
            (IG, "profile"): "instagram_account",
            (IG, "profile_insights"): "instagram_profile_insights",
            # GPT answers are keyed by handle and never create an instagram_account row (contract §5).
            (IG, "gpt_enrichment"): "instagram_gpt_enrichment",
            (YT, "profile"): "youtube_account",
            (YT, "profile_insights"): "youtube_profile_insights",
        },
        legacy=_legacy("profile_log_events"),
    ),
    TopicSpec(
        names.POST_LOG,
        PostLog,
        key="PLATFORM:shortcode",
        payload=Post,
        kinds=("post", "story", "post_insights"),
        tables={
            (IG, "post"): "instagram_post",
            (IG, "story"): "instagram_post",
            (IG, "post_insights"): "instagram_post",
            (YT, "post"): "youtube_post",
        },
        legacy=_legacy("post_log_events"),
    ),
    TopicSpec(
        names.POST_ACTIVITY_LOG,
        ActivityLog,
        key="PLATFORM:shortcode:activity_type:actor (or the comment id)",
        payload=Activity,
        # A page event (legacy post_activity_log_bulk) decodes as an activity too; no table stores it.
        kinds=("activity", "activity_page"),
        tables={(ANY_PLATFORM, "activity"): "post_activity_log"},
        legacy=_legacy("post_activity_log_events", "post_activity_log_bulk"),
        variants={ActivityPage: ActivityPageLog},
    ),
    TopicSpec(
        names.PROFILE_RELATIONSHIP_LOG,
        RelationshipLog,
        key="PLATFORM:source_profile_id:target_profile_id",
        payload=Relationship,
        kinds=("relationship",),
        tables={(ANY_PLATFORM, "relationship"): "profile_relationship_log"},
        legacy=_legacy("profile_relationship_log_events"),
    ),
    TopicSpec(
        names.ORDER_LOG,
        OrderLog,
        key="PLATFORM:platform_order_id",
        payload=Order,
        kinds=("order",),
        tables={(SHOPIFY, "order"): "order"},
        legacy=_legacy("order_log_events"),
    ),
    TopicSpec(
        names.YT_ACTIVITY_LOG,
        YtActivityLog,
        key="PLATFORM:activity_id",
        payload=YtActivity,
        kinds=("yt_activity",),
        legacy=_legacy("yt_activity_log_events"),
    ),
    TopicSpec(
        names.YT_PROFILE_RELATIONSHIP_LOG,
        YtRelationshipLog,
        key="PLATFORM:relationship_id",
        payload=YtRelationship,
        kinds=("yt_relationship",),
        legacy=_legacy("yt_profile_relationship_log_events"),
    ),
    TopicSpec(
        names.ASSET_LOG,
        AssetLog,
        key="PLATFORM:entity_id",
        payload=Asset,
        kinds=("asset",),
        tables={(ANY_PLATFORM, "asset"): "asset_log"},
    ),
    TopicSpec(
        names.SENTIMENT_LOG,
        SentimentLog,
        key="PLATFORM:comment_id",
        payload=Sentiment,
        kinds=("sentiment",),
        tables={(ANY_PLATFORM, "sentiment"): "sentiment_log"},
        legacy=_legacy("sentiment_log_events"),
    ),
    TopicSpec(
        names.REPORT_LOG,
        ReportLog,
        key="PLATFORM:report:job or collection id",
        payload=ReportDone,
        kinds=("report",),
        legacy=(
            LegacyRoute(COFFEE_EXCHANGE, "keyword_collection_report_completion"),
            LegacyRoute(COFFEE_EXCHANGE, "sentiment_collection_report_out_rk"),
        ),
    ),
    TopicSpec(names.DEAD_LETTER, DeadLetter, key="the original record's key, cut to a bounded length"),
    TopicSpec(names.TRACE_LOG, TraceLog, key="none", legacy=(LegacyRoute(IDENTITY_EXCHANGE, "trace_log"),)),
)

BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}
_BY_PAYLOAD: dict[type[Payload], TopicSpec] = {
    payload: spec
    for spec in TOPICS
    for payload in ((spec.payload,) if spec.payload is not None else ()) + tuple(spec.variants)
}


def topic(name: str) -> TopicSpec:
    """The spec of an (unprefixed) topic; a topic the registry does not list raises, naming the ones it does."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownTopic(f"no topic {name!r}; known: {', '.join(BY_NAME)}") from None


def for_payload(payload: Payload) -> TopicSpec:
    """The log topic a payload is emitted onto."""
    try:
        return _BY_PAYLOAD[type(payload)]
    except KeyError:
        known = ", ".join(cls.__name__ for cls in _BY_PAYLOAD)
        raise UnknownTopic(f"no topic takes a {type(payload).__name__}; payloads: {known}") from None
