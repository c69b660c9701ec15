"""The sandbox's knobs: latency, injected errors, per-credential rate limits and hanging paths."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_PREFIX = "BEAT_SANDBOX_"
ANY_CREDENTIAL = "*"


class RateLimit(BaseModel):
    """At most ``limit`` requests in any ``window`` seconds; also written as text ``"N/W"`` (``"100/30"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(ge=1)
    window: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        count, slash, window = value.partition("/")
        if not slash:
            raise ValueError('expected "N/W", e.g. "100/30" for 100 requests per 30 seconds')
        return {"limit": count.strip(), "window": window.strip().removesuffix("s")}


class SandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency: float = Field(0.0, ge=0, description="seconds every provider answer waits")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of provider requests answered 500")
    seed: int = Field(0, description="seed of the generator that picks which requests fail")
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description=f"by credential key (x-rapidapi-key, 'anonymous' without one); '{ANY_CREDENTIAL}' applies to "
        "every credential without an entry of its own, each with its own window",
    )
    hang_paths: list[str] = Field(default_factory=list, description="path prefixes whose requests hang")
    fail_paths: dict[str, int] = Field(
        default_factory=dict, description="path prefix -> the error status every request under it gets (500, 429, 403…)"
    )
    fail_retry_after: float | None = Field(None, ge=0, description="Retry-After seconds sent with a failed 429")
    hang_seconds: float = Field(3600.0, ge=0, description="how long a hanging request waits before it answers")
    graph_refused_metrics: list[str] = Field(
        default_factory=list, description="Graph insights metrics refused with #100 as not served, besides the retired"
    )
    rename_fields: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="path prefix -> {old: new}: JSON answers under it carry each old field, at any depth, "
        "under its new name (a provider that changed shape; Beat's drift alarms)",
    )

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _rate_limits_from_text(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("fail_paths", "rename_fields", mode="before")
    @classmethod
    def _fail_paths_from_text(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("hang_paths", "graph_refused_metrics", mode="before")
    @classmethod
    def _hang_paths_from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [path.strip() for path in value.split(",") if path.strip()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        """Read ``BEAT_SANDBOX_<FIELD>``; rate limits as JSON, hang paths as JSON or comma-separated."""
        environ = os.environ if environ is None else environ
        values = {
            name: environ[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in environ
        }
        return cls.model_validate(values)

    def rate_limit(self, credential: str) -> RateLimit | None:
        return self.rate_limits.get(credential) or self.rate_limits.get(ANY_CREDENTIAL)

    def failure(self, path: str) -> int | None:
        return next((status for prefix, status in self.fail_paths.items() if path.startswith(prefix)), None)

    def renames(self, path: str) -> dict[str, str]:
        """The fields renamed in answers to ``path``, merged over every matching prefix."""
        found: dict[str, str] = {}
        for prefix, names in self.rename_fields.items():
            if path.startswith(prefix):
                found.update(names)
        return found

    def hangs(self, path: str) -> bool:
        return any(path.startswith(prefix) for prefix in self.hang_paths)
