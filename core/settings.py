"""Beat's configuration: one pydantic-settings class read from ``BEAT_*`` variables.

Every service URL is optional: an absent one means "use the embedded default"
(see ``app/embedded.py``). An invalid value stops start-up with the setting's name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from core.api_keys import parse_env_keys
from topics import names
from topics.errors import BeatError, Decision
from topics.flows import FlowSpec, timeout_of

SECRET_MASK = "***"  # noqa: S105 - what a secret is shown as, not a secret


class Settings(BaseSettings):
    # An empty variable (docker-compose `${VAR:-}`) means unset.
    model_config = SettingsConfigDict(env_prefix="BEAT_", extra="ignore", env_ignore_empty=True)

    # Services. None = embedded default started by `beat up`.
    kafka_url: str | None = Field(None, description="Kafka bootstrap servers, host:port[,host:port]")
    database_url: str | None = Field(None, description="PostgreSQL URL, postgresql://user:pass@host:port/db")
    redis_url: str | None = None
    amqp_url: SecretStr | None = None

    data_dir: Path = Path(".beat")
    topic_prefix: str = ""
    request_partitions: int = Field(8, ge=1)
    log_partitions: int = Field(8, ge=1)
    # Priority lanes (beat.scrape.<flow>.priority). Legacy gave every request priority 1 and ordered by
    # nothing, so 1 is bulk; the facade's own submissions default to the on-demand level.
    bulk_priority: int = Field(1, description="requests with a priority above this go to their flow's priority lane")
    on_demand_priority: int = Field(10, description="the priority POST /requests gives a request that names none")
    priority_partitions: int = Field(2, ge=1, description="partitions of each priority lane (on-demand is light)")
    bulk_pacing: bool = Field(
        True, description="space bulk calls window/limit apart, so a saturated limit frees a slot that often"
    )

    # Tansu holds a group join for half the session timeout, so keep it short.
    broker_session_timeout: float = Field(10.0, ge=6.0, le=300.0)
    broker_heartbeat_interval: float = Field(1.0, gt=0.0)

    drain_timeout: float | None = Field(
        None,
        gt=0,
        description="seconds a worker drains on SIGTERM before handing its unfinished requests back (same attempt); "
        "unset: its flows' longest timeout",
    )

    # Kafka security (core/kafka_security.py), applied to every Kafka client Beat creates.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers' certificates")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (PEM), for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="the client certificate's private key (PEM)")
    kafka_ssl_check_hostname: bool = True
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None

    # Topics (core/topic_admin.py, `beat topics`). Retention by kind of topic: requests, priority, retry,
    # status, logs, dead_letter, trace; a kind not named keeps the broker's default.
    topic_replication: int = Field(1, ge=1, description="replication factor of every topic Beat creates")
    topic_min_insync_replicas: int | None = Field(None, ge=1, description="min.insync.replicas of every topic")
    topic_retention_ms: dict[str, int] = Field(default_factory=dict, description="retention.ms by kind of topic")

    # Embedded services and the facade; 0 = pick a free port.
    broker_port: int = Field(0, ge=0, le=65535)
    postgres_port: int = Field(0, ge=0, le=65535)
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    sandbox_port: int = Field(0, ge=0, le=65535)
    # API keys (core/api_keys.py, app/auth.py): by environment, and how stale the facade's copy of the
    # Postgres ones (`beat keys`) may be, so a revoke takes effect within this many seconds.
    api_keys: SecretStr | None = Field(None, description="name:scope,scope:key entries separated by ;")
    api_key_refresh: float = Field(5.0, gt=0, le=300, description="seconds between reloads of the Postgres keys")

    # Flows.
    flow_concurrency: dict[str, int] = Field(default_factory=dict, description="per-flow concurrency overrides")
    flow_timeout: dict[str, float] = Field(default_factory=dict, description="per-flow timeout overrides, seconds")
    default_flow_timeout: float = Field(120.0, gt=0)
    flow_wait_scale: float = Field(1.0, ge=0.0, description="multiplies every wait between pages and retry sleep")
    disabled_flows: list[str] = Field(default_factory=list)
    worker_processes: int | None = Field(
        None, ge=1, description="processes `beat worker` and `beat up` run; unset: the usable CPU count"
    )

    # Providers.
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    http_timeout: float = Field(30.0, gt=0)
    source_rate_limits: dict[str, str | None] = Field(
        default_factory=dict,
        description='per source label, e.g. {"rocketapi": "100/30s"}; null lifts the legacy default',
    )
    credential_rate_limits: dict[str, str] = Field(
        default_factory=dict, description="per source label: the limit each of its credentials has on its own"
    )
    rate_limit_processes: int = Field(
        1,
        ge=1,
        description="without BEAT_REDIS_URL, how many processes split the in-process rate limits: each takes "
        "1/N of every limit (`beat worker --processes N` sets it for its children); with Redis they share them",
    )
    # Cost and budget guards (providers/costs.py, providers/budgets.py).
    source_costs: dict[str, float | dict[str, float]] = Field(
        default_factory=dict,
        description='cost per call, per source label: a number, or {operation: cost} with "*" for the rest; '
        "unset: 0, and Google's quota units for the YouTube Data API",
    )
    budgets: dict[str, float] = Field(
        default_factory=dict,
        description='per day, e.g. {"source:ytapitoken": 10000, "flow:refresh_yt_posts_by_search": 5000}',
    )
    budget_mode: Literal["retry", "fail"] = Field(
        "retry", description="at a budget's limit: retry once it resets, or fail with BudgetExhausted"
    )
    credential_cooldown: dict[str, float] = Field(
        default_factory=dict, description="seconds a credential rests after a 429/quota answer without a reset time"
    )
    default_credential_cooldown: float = Field(900.0, ge=0)
    credential_first_rest: float = Field(
        5.0,
        gt=0,
        description="a credential's first rest after a quota answer without a reset time; each "
        "consecutive one doubles it, up to the cooldown",
    )
    breaker_failures: int = Field(5, ge=1, description="consecutive transient failures that open a source's circuit")
    breaker_cooldown: float = Field(30.0, gt=0, description="seconds an open circuit waits before one probe call")
    source_priorities: dict[str, list[str]] = Field(
        default_factory=dict, description="per fetch type, the sources to try in order (legacy lists by default)"
    )
    graph_app_token: SecretStr | None = Field(None, description="Facebook app token for debug_token")
    graph_api_version: str = Field(
        "v25.0",
        pattern=r"^v[0-9]{1,3}\.[0-9]{1,2}$",
        description="the Graph API version every Instagram Graph call names",
    )
    ray_url: str | None = Field(
        None, description="RAY model endpoint for categorisation and comment sentiment; unset = skip them"
    )
    environment: str = Field(
        "local",
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="the deployment's name; the sentiment report's path names it (legacy ENVIRONMENT)",
    )
    shopify_api: Literal["graphql", "rest"] = Field(
        "graphql", description="Shopify orders through the GraphQL Admin API, or REST (legacy; older private apps)"
    )
    shopify_api_version: str = Field(
        "2026-10",
        pattern=r"^(\d{4}-(01|04|07|10)|unstable)$",
        description="Shopify Admin API version, REST and GraphQL alike",
    )

    # GPT enrichment: any OpenAI-compatible endpoint, or Azure OpenAI with openai_api_type=azure.
    openai_base_url: str | None = Field(None, description="e.g. https://api.openai.com/v1; unset = the GPT flows fail")
    openai_api_key: SecretStr | None = None
    openai_model: str | None = Field(None, description="overrides the prompt file's model (an Azure deployment name)")
    openai_api_type: Literal["openai", "azure"] = "openai"
    openai_api_version: str = Field("2024-02-01", description="Azure only")
    prompt_version: str = Field("v0.12", description="the prompts file agents/flows/prompts/<version>.yaml")

    # Assets (asset_upload_flow). Without an S3 bucket, a local directory stands in.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = Field(None, description="an S3-compatible endpoint (MinIO, moto); AWS when unset")
    s3_region: str = "ap-south-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    asset_dir: Path | None = Field(
        None, description="local asset store when no bucket is set; default <data dir>/assets"
    )
    asset_max_bytes: int = Field(50 * 1024 * 1024, ge=1)
    asset_timeout: float = Field(60.0, gt=0)
    asset_dedupe_window: float = Field(86400.0, ge=0, description="seconds within which one URL is fetched once")
    cdn_base_urls: dict[str, str] = Field(
        default_factory=dict, description="CDN host -> base URL that serves it instead (the sandbox, a proxy)"
    )
    cdn_base_url: str | None = Field(
        None, description="where stored assets are served (legacy CDN_BASE_URL); unset = answer the original URLs"
    )

    # Retries (contract §2). The backoff of attempt k is retry_schedule[k-1] (the last one repeats), times a
    # random factor in [1 - jitter, 1 + jitter]; a delayed request waits on the longest tier not exceeding its
    # remaining wait.
    retry_schedule: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0], min_length=1, description="seconds before each retry"
    )
    retry_jitter: float = Field(0.2, ge=0, le=1)
    retry_max_attempts: int = Field(4, ge=1, description="attempts a request may spend on transient failures")
    retry_max_wait: float = Field(3600.0, gt=0, description="longest time a request waits on known ready times")
    retry_tiers: dict[str, float] = Field(
        default_factory=lambda: {"5s": 5.0, "30s": 30.0, "2m": 120.0, "10m": 600.0},
        min_length=1,
        description="delay tiers: topic suffix -> seconds",
    )

    # CSV exports (issue Reports): the daily history they read, and the ad-vs-organic model.
    history_retention_days: int = Field(
        800, ge=1, description="days of youtube_account_daily / youtube_post_daily the reconciler keeps"
    )
    ad_vs_organic_url: str | None = Field(
        None, description="the ad-vs-organic model's base URL (legacy AD_VS_ORGANIC); unset = that export fails"
    )
    report_poll_max: float = Field(5.0, gt=0, description="longest pause between a report's checks on its children")

    @field_validator("ad_vs_organic_url")
    @classmethod
    def _check_model_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/") if value else value

    # Reconciler (runs in `beat sink`).
    reconcile_interval: float = Field(15.0, gt=0)
    reconcile_grace: float = Field(60.0, ge=0)
    reconcile_max_redrives: int = Field(2, ge=0)
    reconcile_pending_after: float = Field(30.0, ge=0, description="PENDING rows never handed to the broker, seconds")

    # Outages (contract §2): a dependency that does not answer pauses the worker, it never ends a request.
    broker_durable: bool | None = Field(
        None,
        description="whether the broker keeps what it acknowledged across a restart; unset: true unless "
        "the broker is the embedded one (memory only). Decides whether the facade accepts "
        "requests while Postgres is down",
    )
    credential_refresh_interval: float = Field(
        30.0,
        gt=0,
        description="seconds between full reloads of a worker's credential cache (changes arrive "
        "sooner, by LISTEN/NOTIFY)",
    )
    credential_max_age: float = Field(
        300.0,
        gt=0,
        description="while Postgres is down, how long a worker keeps picking from its cached "
        "credentials before it pauses",
    )
    outage_retry_after: int = Field(5, ge=1, description="Retry-After seconds the facade sends with a 503")
    api_refresh_timeout: float = Field(
        30.0, gt=0, description="how long a legacy route that refreshes waits for its request to be stored"
    )
    # Legacy §5's stacked limits on the facade's refresh routes, as "N/Ws" rates: every refresh must fit under
    # the global daily and per-minute limits and under the limit of its handle or id. Shared through Redis
    # when BEAT_REDIS_URL is set, counted in the facade's process otherwise.
    api_refresh_daily_limit: str = Field("20000/86400s", description="refreshes a day, every handle together")
    api_refresh_minute_limit: str = Field("60/60s", description="refreshes a minute, every handle together")
    api_refresh_each_limit: str = Field("1/1s", description="refreshes of one handle or id")

    # Tansu enforces no size: Beat refuses larger records itself, at the facade and in the worker, and
    # cuts a dead letter's copy of the original to fit.
    max_message_bytes: int = Field(1024 * 1024, ge=4096, description="the largest record Beat accepts or produces")

    # Sink batching.
    sink_batch_size: int = Field(5000, ge=1)
    sink_batch_timeout: float = Field(0.2, ge=0)
    # Tansu holds a fetch for about half this long even when records arrive meanwhile (bench/README.md), so it
    # is most of the time between an event and its row; each idle fetch costs the broker and the sink a little.
    sink_fetch_wait_ms: int = Field(50, ge=0, description="how long the sink's broker fetches wait for records")

    # Legacy RabbitMQ (legacy-beat.md §8): `beat mirror` publishes to these exchanges, `beat listen` reads
    # queues bound to them. Production has them already (as direct exchanges), so they are only checked.
    amqp_beat_exchange: str = Field("beat.dx", min_length=1, description="the legacy events' exchange")
    amqp_identity_exchange: str = Field("identity.dx", min_length=1, description="trace_log and new tokens")
    amqp_coffee_exchange: str = Field("coffee.dx", min_length=1, description="report completions for Coffee")
    amqp_declare: Literal["passive", "direct", "topic"] = Field(
        "passive", description="passive: the exchanges must exist; direct|topic: create them (a fresh broker)"
    )
    legacy_timezone: str = Field(
        "UTC", description="the zone of the legacy events' naive timestamps, e.g. Asia/Kolkata (the legacy's)"
    )
    identity_url: str | None = Field(None, description="identity service, for a new-token message without its token")
    listen_max_attempts: int = Field(5, ge=1, description="attempts `beat listen` gives a message before its DLQ")

    log_level: str = "INFO"

    # Observability (README "Metrics and health"): each process's metrics port, logs, traces, drift alarms.
    metrics_host: str = Field("127.0.0.1", description="where every process's /metrics, /healthz, /readyz listen")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="this process's metrics port; unset: its role's default; 0: a free one"
    )
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per log line")
    otel_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint (http://host:4318/v1/traces); unset: no traces"
    )
    drift_failure_rate: float = Field(
        0.5, gt=0, le=1, description="share of a source's recent answers that drifted or did not parse that opens it"
    )
    drift_window: int = Field(20, ge=2, description="the recent answers per source that rate is taken over")

    @field_validator("kafka_url")
    @classmethod
    def _strip_kafka_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        for scheme in ("kafka://", "tcp://"):
            value = value.removeprefix(scheme)
        if not value or any(":" not in part for part in value.split(",")):
            raise ValueError("expected host:port[,host:port]")
        return value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"BEAT_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs BEAT_KAFKA_SASL_USERNAME "
                "and BEAT_KAFKA_SASL_PASSWORD"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("BEAT_KAFKA_SSL_KEYFILE is the key of BEAT_KAFKA_SSL_CERTFILE, which is not set")
        unknown = set(self.topic_retention_ms) - set(names.TOPIC_KINDS)
        if unknown:
            raise ValueError(
                f"BEAT_TOPIC_RETENTION_MS: unknown kinds {sorted(unknown)}; known: {', '.join(names.TOPIC_KINDS)}"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a postgresql:// URL")
        return value

    @field_validator("legacy_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_env_keys(value.get_secret_value())  # its errors name the entry, never the key
        return value

    @field_validator("ray_url", "openai_base_url", "identity_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("provider_base_urls")
    @classmethod
    def _check_base_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for label, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{label}: expected an http(s) URL, got {url!r}")
        return {label: url.rstrip("/") for label, url in value.items()}

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def drain_bound(self, flows: Iterable[FlowSpec]) -> float:
        """How long a draining worker lets its in-flight flows run before it hands their requests back to their
        topics: ``BEAT_DRAIN_TIMEOUT``, else the flows' longest timeout (so nothing is cut short) plus 5 s."""
        if self.drain_timeout is not None:
            return self.drain_timeout
        return max((self.timeout_of(spec) for spec in flows), default=0.0) + 5.0

    def timeout_of(self, spec: FlowSpec) -> float:
        """The flow's timeout: its BEAT_FLOW_TIMEOUT override, else the catalogue's, else the default."""
        return timeout_of(spec, self.flow_timeout, self.default_flow_timeout)

    def concurrency_of(self, spec: FlowSpec) -> int:
        """The flow's concurrency: its BEAT_FLOW_CONCURRENCY override, else the catalogue's default."""
        return self.flow_concurrency.get(spec.name, spec.concurrency)

    def is_on_demand(self, priority: int) -> bool:
        """Whether a request of this priority goes to its flow's priority lane."""
        return priority > self.bulk_priority

    def request_topic(self, flow: str, priority: int) -> str:
        """The (prefixed) topic a request of ``flow`` at ``priority`` is produced to: its lane."""
        return self.topic(names.priority_topic(flow) if self.is_on_demand(priority) else names.scrape_topic(flow))

    def group(self, role: str) -> str:
        return f"{self.topic_prefix}beat-{role}"

    @property
    def durable_broker(self) -> bool:
        # `beat up` tells its children when the broker is its embedded one; a broker named by URL is
        # taken to be a real, durable one unless configured otherwise.
        return self.broker_durable if self.broker_durable is not None else self.kafka_url is not None

    def masked(self) -> dict[str, Any]:
        """The effective configuration with every secret replaced by ``***``."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = SECRET_MASK if value.get_secret_value() else ""
            elif isinstance(value, str) and "://" in value:
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def mask_url(url: str) -> str:
    """Hide the password of a URL's userinfo, keep the rest readable."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{SECRET_MASK}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class SettingsError(BeatError):
    """Start-up stops on invalid configuration; the message names each bad setting (the CLI exits 1 with it)."""

    decision = Decision.DEFINITIVE


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            problems.append(f"BEAT_{field.upper()}: {error['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
    except PydanticSettingsError as exc:
        # A map or list setting that is not JSON fails while pydantic-settings reads the environment, before
        # validation; its message is the only place that names the field.
        named = re.search(r'field "(\w+)"', str(exc))
        setting = f"BEAT_{named.group(1).upper()}" if named else "a BEAT_* setting"
        raise SettingsError(f"invalid configuration: {setting}: not valid JSON ({exc.__cause__ or exc})") from None


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
