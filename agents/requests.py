"""Turning one raw record from a request topic into a validated request, or a reason it cannot be one."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from agents.flows.params import Params
from agents.flows.registry import FLOWS, FlowSpec
from topics.dead_letter import RawRecord
from topics.models import ErrorInfo, ScrapeRequest, deterministic_id


class Rejected(Exception):
    """The record cannot be processed at all; it goes to the dead-letter topic."""

    def __init__(self, error_type: str, message: str, request: ScrapeRequest | None = None) -> None:
        super().__init__(message)
        self.error = ErrorInfo(type=error_type, message=message)
        self.request = request


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()[:5]
    )


def decode_request(spec: FlowSpec, record: RawRecord) -> tuple[ScrapeRequest, Params]:
    """Decode, fill in the id and the flow, and validate the params against the flow's model."""
    if not record.value:
        raise Rejected("UndecodableMessage", "empty message value")
    try:
        body: Any = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected("UndecodableMessage", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Rejected("UndecodableMessage", f"expected a JSON object, got {type(body).__name__}")
    try:
        request = ScrapeRequest.model_validate(body)
    except ValidationError as exc:
        known = _partial(spec, record, body)
        raise Rejected("InvalidRequest", _short(exc), known) from None
    if request.id is None:
        # Same record, same id: a redelivery keeps it, and the record timestamp keeps
        # a restarted broker's reused offsets from colliding with old requests.
        request.id = deterministic_id(record.topic, record.partition, record.offset, record.timestamp)
    if request.flow is not None and request.flow != spec.name:
        reason = "unknown flow" if request.flow not in FLOWS else f"does not match topic flow {spec.name!r}"
        raise Rejected("UnknownFlow", f"flow {request.flow!r}: {reason}", request)
    request.flow = spec.name
    if request.platform is None:
        request.platform = spec.platform
    if request.created_at is None and record.timestamp:
        request.created_at = datetime.fromtimestamp(record.timestamp, timezone.utc)
    try:
        params = spec.params.model_validate(request.params)
    except ValidationError as exc:
        raise Rejected("InvalidParams", _short(exc), request) from None
    return request, params


def _partial(spec: FlowSpec, record: RawRecord, body: dict) -> ScrapeRequest | None:
    """A request built from whatever was valid, when the body names an id: its status can still be recorded."""
    request_id = body.get("id")
    if not isinstance(request_id, str) or not request_id:
        return None
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    return ScrapeRequest(id=request_id, flow=spec.name, platform=spec.platform, params=params)
