"""Records on Beat's topics (contract §2). Every event Beat produces carries ``schema_version``."""

from __future__ import annotations

import enum
import uuid
from abc import abstractmethod
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from topics.limits import INT32_MAX, INT32_MIN, PARAM_INT_MAX, PARAM_INT_MIN, check_json, text_problem

SCHEMA_VERSION = 1

# Namespace for every deterministic id Beat derives (request ids, event ids).
BEAT_NAMESPACE = uuid.UUID("6f1c8e0a-57a4-4c1e-9a39-5f0b2f4e8b11")


def utcnow() -> datetime:
    return datetime.now(UTC)


def deterministic_id(*parts: object) -> str:
    return str(uuid.uuid5(BEAT_NAMESPACE, "\x1f".join(str(part) for part in parts)))


class Platform(str, enum.Enum):
    INSTAGRAM = "INSTAGRAM"
    YOUTUBE = "YOUTUBE"
    SHOPIFY = "SHOPIFY"


class Status(str, enum.Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    DEAD_LETTERED = "DEAD_LETTERED"
    # A transient failure waiting for its next attempt (``due_at``); not terminal.
    RETRYING = "RETRYING"
    # An operator's re-drive of a terminal request: it opens the next attempt with a fresh budget.
    REDRIVEN = "REDRIVEN"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def rank(self) -> int:
        return _RANK[self]


TERMINAL = frozenset({Status.COMPLETE, Status.FAILED, Status.EXPIRED, Status.DEAD_LETTERED})
# Within an attempt: opened (PENDING, or REDRIVEN by an operator), picked up, waiting to retry, ended.
_RANK = {Status.PENDING: 0, Status.REDRIVEN: 0, Status.PROCESSING: 1, Status.RETRYING: 2} | dict.fromkeys(TERMINAL, 3)


def supersedes(new_status: Status, new_attempt: int, old_status: Status | None, old_attempt: int) -> bool:
    """Whether a status event may replace the stored one (``sinks/status.py`` applies the same rule in SQL).

    A terminal status is final, but for an operator's re-drive (REDRIVEN of a later attempt). A terminal
    status ends any open attempt it is not older than; a stale one (a replay of an attempt a re-drive or
    a retry has moved past) changes nothing. Otherwise an event moves forward by (attempt, rank): attempt
    n+1's PROCESSING outranks attempt n's RETRYING, while a replayed PROCESSING of the same attempt after
    RETRYING changes nothing.
    """
    if old_status is None:
        return True
    if old_status.is_terminal:
        return new_status is Status.REDRIVEN and new_attempt > old_attempt
    if new_status.is_terminal:
        return new_attempt >= old_attempt
    return (new_attempt, new_status.rank) > (old_attempt, old_status.rank)


class Model(BaseModel):
    """A record on a topic. Its readers ignore fields they do not know: a producer one version ahead may
    add a field (never drop or retype one without a new ``schema_version``) during a rolling upgrade."""

    model_config = ConfigDict(extra="ignore", use_enum_values=False)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


class ScrapeRequest(Model):
    """A request on ``beat.scrape.<flow>``. Upstream producers may omit everything but ``params``."""

    id: str | None = None
    flow: str | None = None
    platform: Platform | None = None
    params: dict[str, Any]
    priority: int = Field(1, ge=INT32_MIN, le=INT32_MAX)
    retry_count: int = Field(0, ge=0, le=INT32_MAX - 1)
    account_id: str | None = None
    idempotency_key: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    schema_version: int | None = Field(None, ge=INT32_MIN, le=INT32_MAX)
    # Retries (contract §2): attempts counted against BEAT_RETRY_MAX_ATTEMPTS (a wait with a known ready
    # time counts none), and when the first transient failure happened (BEAT_RETRY_MAX_WAIT runs from it).
    retries_spent: int = Field(0, ge=0, le=INT32_MAX)
    first_failed_at: datetime | None = None

    @field_validator("id", "flow", "account_id", "idempotency_key")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        # Values the status table cannot hold are refused here, so no later write meets them.
        problem = None if value is None else text_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("created_at", "expires_at", "first_failed_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        # A naive time is read as UTC: expiry and the status sink compare aware times only.
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("lies outside the UTC calendar") from None

    @field_validator("params")
    @classmethod
    def _storable_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_json(value, "params", int_range=(PARAM_INT_MIN, PARAM_INT_MAX))

    @property
    def attempt(self) -> int:
        return self.retry_count + 1


class ErrorInfo(Model):
    """Why something failed: the error's class name and a bounded message."""

    type: str
    message: str


class RequestStatus(Model):
    """A change of a request's status (PENDING to a terminal status), with the request it is about."""

    schema_version: int = SCHEMA_VERSION
    request_id: str
    status: Status
    attempt: int = 1
    source: str | None = None
    error: ErrorInfo | None = None
    result: dict[str, Any] | None = None
    due_at: datetime | None = Field(None, description="RETRYING: when the next attempt is due")
    retries_spent: int = Field(
        0, ge=0, le=INT32_MAX, description="the request's attempts counted against BEAT_RETRY_MAX_ATTEMPTS so far"
    )
    at: datetime = Field(default_factory=utcnow)
    flow: str
    platform: Platform | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = 1
    account_id: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def of(cls, request: ScrapeRequest, status: Status, **fields: Any) -> RequestStatus:
        assert request.id is not None and request.flow is not None
        return cls(
            request_id=request.id,
            status=status,
            attempt=request.attempt,
            flow=request.flow,
            platform=request.platform,
            params=request.params,
            priority=request.priority,
            account_id=request.account_id,
            created_at=request.created_at,
            expires_at=request.expires_at,
            retries_spent=request.retries_spent,
            **fields,
        )


# Payloads: what a provider (or a flow) said about one entity. Parsers return them; ``FlowContext.emit``
# stamps one into its log event (``topics/registry.py`` says which topic each goes to).


class Payload(Model):
    """What an event says, before Beat stamps it. Built by Beat's own code: an unknown field is a bug."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    platform: Platform

    @property
    @abstractmethod
    def key(self) -> str:
        """The record key: events of one entity share it, so they stay in order on one partition."""

    @property
    def event_key(self) -> str:
        """What the event id is derived from, beside the request, attempt, kind and ordinal."""
        return self.key

    def carried(self) -> dict[str, Any]:
        """The fields its event carries (not those a flow only reads, such as embedded posts)."""
        fields = type(self).model_fields
        return {name: value for name, value in self.__dict__.items() if not fields[name].exclude}


Metrics = dict[str, float | int | None]


class Observation(Payload):
    """One entity as a source saw it: the legacy metrics (numbers) and dimensions (anything else)."""

    source: str = Field(description="the provider that answered")
    metrics: Metrics = Field(default_factory=dict, description="numbers, by legacy metric name")
    dimensions: dict[str, Any] = Field(default_factory=dict, description="everything else, by legacy name")

    @field_validator("metrics")
    @classmethod
    def _no_bools_in_metrics(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, number in value.items():
            if isinstance(number, bool):
                raise ValueError(f"metric {key} is a boolean; booleans are dimensions")  # what pydantic expects
        return value


class TwoSided(Payload):
    """Something between two accounts: metrics and dimensions for each side (legacy relationship events)."""

    source: str = Field(description="the provider that answered")
    source_metrics: Metrics = Field(default_factory=dict)
    source_dimensions: dict[str, Any] = Field(default_factory=dict)
    target_metrics: Metrics = Field(default_factory=dict)
    target_dimensions: dict[str, Any] = Field(default_factory=dict)


class Post(Observation):
    """A post, reel, video or story (``kind`` story), or its insights (``kind`` post_insights)."""

    kind: str = "post"
    profile_id: str | None = None
    handle: str | None = None
    shortcode: str
    publish_time: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.shortcode}"


class Profile(Observation):
    """A profile, its insights (``kind`` profile_insights) or a GPT enrichment of it (``kind`` gpt_enrichment)."""

    kind: str = "profile"
    profile_id: str
    handle: str | None = None
    # Posts that arrived embedded in the profile's answer: a flow emits each as its own post event.
    embedded_posts: SkipJsonSchema[list[Post]] = Field(default_factory=list, exclude=True)

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.profile_id}"


class Activity(Observation):
    """A like or a comment (legacy post_activity_log): ``actor_profile_id`` did it to ``shortcode``."""

    kind: str = "activity"
    activity_type: str = Field(description="LIKE or COMMENT")
    actor_profile_id: str | None = Field(description="null: a YouTube comment whose author has no channel")
    shortcode: str
    publish_time: datetime | None = None

    @property
    def key(self) -> str:
        # Without an actor the comment id stands in, so such comments keep distinct, stable keys.
        actor = self.actor_profile_id if self.actor_profile_id is not None else self.dimensions.get("comment_id")
        return f"{self.platform.value}:{self.shortcode}:{self.activity_type}:{actor}"

    @property
    def event_key(self) -> str:
        # Ids were always derived from the actor as it is, "None" included; a replay must keep them.
        return f"{self.platform.value}:{self.shortcode}:{self.activity_type}:{self.actor_profile_id}"


class Relationship(TwoSided):
    """``source_profile_id`` FOLLOWS ``target_profile_id`` (legacy profile_relationship_log)."""

    kind: str = "relationship"
    relationship_type: str = "FOLLOWS"
    source_profile_id: str
    target_profile_id: str

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.source_profile_id}:{self.target_profile_id}"


class Order(Observation):
    """A Shopify order with the legacy order dimensions (legacy order_log_events: platform_order_id, store)."""

    kind: str = "order"
    platform_order_id: str
    store: str | None = None

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.platform_order_id}"


class YtActivity(Observation):
    """One entry of a channel's activity feed: ``actor_channel_id`` subscribed, uploaded or added to a playlist."""

    kind: str = "yt_activity"
    activity_id: str
    activity_type: str = Field(description="subscription, upload, playlistItem, …")
    actor_channel_id: str

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.activity_id}"


class YtRelationship(TwoSided):
    """``source_channel_id`` subscribes to ``target_channel_id`` (one subscriptions item)."""

    kind: str = "yt_relationship"
    relationship_id: str
    relationship_type: str = "subscription"
    source_channel_id: str | None
    target_channel_id: str
    subscribed_on: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.relationship_id}"


class Asset(Payload):
    """One stored asset: what it is of, where it lives, where it came from (contract §2, §5)."""

    kind: str = "asset"
    entity_type: str
    entity_id: str
    asset_type: str
    asset_url: str = Field(description="the storage key, relative (legacy layout assets/{type}s/{platform}/{id}.{ext})")
    original_url: str
    content_type: str
    size: int

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.entity_id}"


# Log events: a payload with Beat's stamps. A consumer built for an older schema reads a newer event
# whose only change is an added field, so events ignore fields they do not know (Model's default).


class Stamps(Model):
    """What Beat adds to a payload when a flow emits it."""

    # An event lists its payload first and Stamps last, so this setting wins over the payload's "forbid".
    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(
        description="deterministic: the same request, attempt, entity and position in the "
        "flow's output give the same id, so a consumer can drop a replayed event"
    )
    schema_version: int = Field(SCHEMA_VERSION, description="bumped whenever a field is dropped or retyped")
    request_id: str = Field(description="the scrape request that produced the event")
    attempt: int = Field(
        1,
        description="the request's attempt that produced the event; the sink counts "
        "what it stored of the COMPLETE attempt's events",
    )
    observed_at: datetime = Field(description="when Beat saw the answer (UTC)")


class ProfileLog(Profile, Stamps):
    """A profile (or its insights, or a GPT enrichment of it) as a source saw it."""


class PostLog(Post, Stamps):
    """A post, reel, video or story (or its insights) as a source saw it."""


class ActivityLog(Activity, Stamps):
    """A like or a comment on a post (legacy post_activity_log_events fields)."""


class RelationshipLog(Relationship, Stamps):
    """``source_profile_id`` FOLLOWS ``target_profile_id`` (legacy profile_relationship_log_events fields)."""


class OrderLog(Order, Stamps):
    """A Shopify order with the legacy order dimensions (legacy order_log_events fields)."""


class YtActivityLog(YtActivity, Stamps):
    """One entry of a channel's activity feed (legacy yt_activity_log_events fields); Kafka only, no table."""


class YtRelationshipLog(YtRelationship, Stamps):
    """A channel's subscription (legacy yt_profile_relationship_log_events fields); Kafka only, no table."""


class AssetLog(Asset, Stamps):
    """A stored asset (a profile picture, a thumbnail): where it lives and where it came from (contract §2,
    §5). Never mirrored: the legacy engine published no asset event."""


class DeadLetter(Model):
    """A record Beat could not process: its original bytes, where it came from, and why."""

    schema_version: int = SCHEMA_VERSION
    original_topic: str
    original_partition: int
    original_offset: int
    original_key: str | None = Field(None, description="base64 of the original key")
    original_value: str = Field(description="base64 of the original bytes, cut to fit the message size limit")
    original_size: int = Field(0, description="the original value's size in bytes")
    original_sha256: str | None = Field(None, description="hex SHA-256 of the whole original value")
    original_truncated: bool = Field(False, description="original_value holds only the first bytes")
    original_headers: dict[str, str] = Field(default_factory=dict)
    error: ErrorInfo
    flow: str | None = None
    request_id: str | None = None
    attempt: int = 1
    first_failure_at: datetime = Field(default_factory=utcnow)
    last_failure_at: datetime = Field(default_factory=utcnow)
    source: str | None = None
    credential_id: str | None = None


class TraceLog(Model):
    """One outbound provider call. Never carries a secret: no query string, no headers."""

    schema_version: int = SCHEMA_VERSION
    id: str
    request_id: str | None = None
    source: str
    method: str
    host: str
    path: str
    status: int | None = None
    latency_ms: float
    credential_id: str | None = None
    error: str | None = None
    at: datetime = Field(default_factory=utcnow)
