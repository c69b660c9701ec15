"""Turning one raw record from a request topic into a validated request, or a reason it cannot be one.

Decoding is total: whatever the bytes, the answer is a request or a ``Rejected`` carrying a
clean, bounded reason, never another exception, so no record can take its agent down.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from topics.dead_letter import RawRecord, error_info
from topics.errors import BeatError, Decision
from topics.flows import FLOWS, FlowSpec
from topics.limits import clean_json, text_problem
from topics.models import ScrapeRequest, deterministic_id
from topics.params import Params

log = logging.getLogger(__name__)


class Rejected(BeatError):
    """The record cannot be processed at all; it goes to the dead-letter topic.

    ``request`` is set when the record names a request whose status can be stored (DEAD_LETTERED).
    """

    decision = Decision.POISON

    def __init__(self, error_type: str, message: str, request: ScrapeRequest | None = None) -> None:
        self.error = error_info(error_type, message)
        super().__init__(self.error.message)
        self.request = request


def decode_request(spec: FlowSpec, record: RawRecord, max_bytes: int) -> tuple[ScrapeRequest, Params]:
    """Decode, fill in the id and the flow, and validate the params against the flow's model."""
    try:
        return _decode(spec, record, max_bytes)
    except Rejected:
        raise
    except Exception as exc:  # a case the checks miss must cost its record, not the agent
        log.exception("decoding %s[%d]@%d failed unexpectedly", record.topic, record.partition, record.offset)
        raise Rejected("UndecodableMessage", f"{type(exc).__name__}: {exc}") from None


def refuse_request(spec: FlowSpec, record: RawRecord, max_bytes: int, reason: str) -> Rejected:
    """The rejection of a record on a disabled flow's topic, with its request when the record names one."""
    try:
        request: ScrapeRequest | None = decode_request(spec, record, max_bytes)[0]
    except Rejected as rejected:
        request = rejected.request
    return Rejected("DisabledFlow", reason, request)


def _decode(spec: FlowSpec, record: RawRecord, max_bytes: int) -> tuple[ScrapeRequest, Params]:
    value = record.value
    if not value:
        raise Rejected("UndecodableMessage", "empty message value")
    if len(value) > max_bytes:
        # Before parsing: an oversized record costs no parse, and its dead letter carries it cut.
        raise Rejected("MessageTooLarge", f"{len(value)} bytes, over the {max_bytes}-byte message limit")
    try:
        body: Any = json.loads(value)
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of thousands of digits
        raise Rejected("UndecodableMessage", f"not JSON: {exc}") from None
    except RecursionError:
        raise Rejected("UndecodableMessage", "not JSON a request can be: nested too deep") from None
    if not isinstance(body, dict):
        raise Rejected("UndecodableMessage", f"expected a JSON object, got {type(body).__name__}")
    try:
        request = ScrapeRequest.model_validate(body)
    except ValidationError as exc:
        raise Rejected("InvalidRequest", _short(exc), _partial(spec, body)) from None
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
    request.created_at = request.created_at or _record_time(record.timestamp)
    try:
        params = spec.params.model_validate(request.params)
    except ValidationError as exc:
        raise Rejected("InvalidParams", _short(exc), request) from None
    return request, params


def _short(exc: ValidationError) -> str:
    # Locations can quote the record's own keys: error_info cleans and bounds the whole message.
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()[:5]
    )


def _record_time(timestamp: float | None) -> datetime | None:
    """The record's timestamp as a time, unless the producer set one no calendar holds."""
    if not timestamp:
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _partial(spec: FlowSpec, body: dict) -> ScrapeRequest | None:
    """A request built from whatever was valid, when the body names a storable id: its status can still be recorded."""
    request_id = body.get("id")
    if not isinstance(request_id, str) or not request_id or text_problem(request_id):
        return None
    params = clean_json(body["params"]) if isinstance(body.get("params"), dict) else {}
    return ScrapeRequest(id=request_id, flow=spec.name, platform=spec.platform, params=params)
