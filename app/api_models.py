"""What the facade answers, as pydantic models, so ``/openapi.json`` describes the real bodies.

The routes return dicts built where the data is read (``core/status_reads.py``); FastAPI validates them
against these models on the way out, so a key a model lacks would be dropped: the models list every key.
Times keep the ``isoformat()`` text the facade has always sent (``+00:00``, not ``Z``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, PlainSerializer, WithJsonSchema

Moment = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Problem(BaseModel):
    """A refusal of one of Beat's own routes: a message, or validation errors, or a structured detail."""

    detail: str | list[dict[str, Any]] | dict[str, Any]


class OutageDetail(BaseModel):
    message: str
    unavailable: str
    retry_after: int
    id: str | None = None


class Outage(BaseModel):
    """A 503: a dependency is down; try again after ``Retry-After`` seconds."""

    detail: OutageDetail


class LegacyStatus(BaseModel):
    type: Literal["SUCCESS", "ERROR"]
    message: str
    code: int | None = None


class LegacyEnvelope(BaseModel):
    """A legacy refusal: ``status.code`` says what HTTP would have (HTTP 200, but 401/403/503 as themselves)."""

    status: LegacyStatus
    scrape_id: str | None = None


class Accepted(BaseModel):
    id: str
    status: Literal["PENDING"]


class LegacySubmitted(BaseModel):
    status: LegacyStatus
    code: int
    scrape_id: str


class RequestError(BaseModel):
    type: str
    message: str | None


class RequestView(BaseModel):
    """A request's latest status (``scrape_request_log``), with what the sink stored of it."""

    id: str
    flow: str
    platform: str | None
    params: dict[str, Any]
    status: str
    attempt: int
    source: str | None
    result: Any
    error: RequestError | None
    priority: int
    retry_count: int
    account_id: str | None
    created_at: Moment
    expires_at: Moment | None
    picked_at: Moment | None
    scraped_at: Moment | None
    updated_at: Moment
    redrives: int
    stored: bool
    events_announced: int | None
    events_written: int | None
    events_refused: int | None
    refused_reason: str | None


class Redriven(BaseModel):
    id: str
    status: Literal["REDRIVEN"]
    attempt: int
    redriven_from: str


class TimelineEvent(BaseModel):
    status: str
    attempt: int
    at: Moment
    source: str | None
    error: Any
    result: Any


class Timeline(BaseModel):
    id: str
    events: list[TimelineEvent]
    stored: bool
    events_announced: int | None
    events_written: int | None
    events_refused: int | None
    refused_reason: str | None


class LegacyPost(BaseModel):
    scrape_id: str
    data: str | None
    status: str
    params: dict[str, Any]
    created_at: Moment
    flow: str
    scraped_at: Moment | None
    platform: str | None


class LegacyFound(BaseModel):
    status: LegacyStatus
    post: LegacyPost


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    down: list[str]
    checks: dict[str, str]


class Heartbeat(BaseModel):
    beat: bool


class FlowInfo(BaseModel):
    name: str
    platform: str
    enabled: bool
    concurrency: int
    params: dict[str, Any]


# What a route of each family may answer besides its success, for the document.
BEAT_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": Outage, "description": "a dependency is down; see Retry-After"},
}
LEGACY_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": LegacyEnvelope, "description": "a dependency is down; see Retry-After"},
}
