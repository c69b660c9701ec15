"""Submitting requests: record PENDING in Postgres, then hand the request and its PENDING event to Kafka.

Used by the facade, the CLI and the reconciler, so a request Beat accepted is
always in ``scrape_request_log`` before it is on a topic; one recorded but never
handed over (``enqueued`` false) is produced later by the reconciler.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from agents.flows.registry import require_enabled
from app.settings import Settings
from topics import names
from topics.dead_letter import record_size
from topics.errors import BeatError, Decision
from topics.limits import status_budget
from topics.models import RequestStatus, ScrapeRequest, Status, utcnow

ENTITY_KEYS = ("handle", "profile_id", "shortcode", "channel_id", "store", "entity_id", "post_id", "hashtag")


def entity_key(params: dict[str, Any]) -> str | None:
    """The record key of a request: its entity, so one entity's requests stay in order on a partition."""
    for name in ENTITY_KEYS:
        value = params.get(name)
        if isinstance(value, (str, int)) and str(value):
            return str(value)
    data = params.get("data")
    if isinstance(data, dict) and data.get("handle"):
        return str(data["handle"])
    return None


class Refused(BeatError, ValueError):
    """A request Beat will not record; the message says why."""

    decision = Decision.POISON


class TooLarge(Refused):
    """A request whose record or PENDING status would not fit a message."""


class InvalidParams(Refused):
    """Params the flow's model refuses; ``errors`` are pydantic's, located from the request (``params.…``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in errors))


def prepare(flow: str, params: dict[str, Any], *, disabled: Iterable[str] = (), **fields: Any) -> ScrapeRequest:
    """A complete request for an enabled flow, validated now so bad input fails at the door.

    Raises FlowRefused (unknown or disabled flow), pydantic's ValidationError (fields a record cannot
    hold) or InvalidParams.
    """
    spec = require_enabled(flow, disabled)
    request = ScrapeRequest(flow=flow, params=params, **fields)
    try:
        spec.params.model_validate(params)
    except ValidationError as exc:
        raise InvalidParams([{**error, "loc": ("params", *error["loc"])}
                             for error in exc.errors(include_url=False)]) from None
    request.id = request.id or str(uuid.uuid4())
    request.platform = request.platform or spec.platform
    request.created_at = request.created_at or utcnow()
    return request


def check_fits(request: ScrapeRequest, max_bytes: int) -> None:
    """TooLarge unless the request's record fits ``max_bytes`` and its statuses leave the worker the room
    it needs (``status_budget``), keys included: a row written for a record that cannot be produced would
    stay PENDING forever, and one the worker must refuse would be dead-lettered."""
    assert request.id is not None
    key = entity_key(request.params) or ""
    # PROCESSING is the longest name a status repeating the params carries.
    status = RequestStatus.of(request, Status.PROCESSING)
    sizes = {
        "request": (record_size(key.encode(), request.to_bytes()), max_bytes),
        "status": (record_size(request.id.encode(), status.to_bytes()), status_budget(max_bytes)),
    }
    for what, (size, limit) in sizes.items():
        if size > limit:
            raise TooLarge(f"the {what} record would be {size} bytes, over the {limit} bytes it may have "
                           f"within the {max_bytes}-byte message limit")


async def record_pending(pool: asyncpg.Pool, request: ScrapeRequest) -> str:
    """Insert the PENDING row; an idempotency key already seen returns the existing request's id."""
    row = await pool.fetchrow(
        """
        INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, priority, retry_count,
                                        account_id, idempotency_key, created_at, expires_at, status_at)
        VALUES ($1, $2, $3, $4::jsonb, 'PENDING', $5, $6, $7, $8, $9, $10, $11, now())
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        request.id, request.flow, request.platform.value if request.platform else None,
        json.dumps(request.params), request.attempt, request.priority, request.retry_count,
        request.account_id, request.idempotency_key, request.created_at, request.expires_at,
    )
    if row is not None:
        return row["id"]
    existing = await pool.fetchval(
        "SELECT id FROM scrape_request_log WHERE id = $1 OR ($2::text IS NOT NULL AND idempotency_key = $2)",
        request.id, request.idempotency_key,
    )
    return existing


async def produce_request(producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> None:
    """Produce the request's record to its flow's topic, keyed by its entity."""
    key = entity_key(request.params)
    await producer.send_and_wait(
        settings.topic(names.scrape_topic(request.flow or "")),
        request.to_bytes(),
        key=key.encode() if key else None,
    )


async def enqueue(producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> None:
    """Produce the request, then its PENDING event (the request first, so a PENDING event implies it)."""
    await produce_request(producer, settings, request)
    status = RequestStatus.of(request, Status.PENDING)
    await producer.send_and_wait(settings.topic(names.STATUS), status.to_bytes(), key=request.id.encode())


async def submit(pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> str:
    """Record the request PENDING and hand it to the broker; TooLarge, before any write, when it cannot be."""
    check_fits(request, settings.max_message_bytes)
    request_id = await record_pending(pool, request)
    if request_id != request.id:
        return request_id  # a duplicate submission: the first one is already on its way
    await enqueue(producer, settings, request)
    await pool.execute("UPDATE scrape_request_log SET enqueued = true WHERE id = $1", request.id)
    return request.id
