"""Submitting requests: record PENDING in Postgres, then hand the request and its PENDING event to Kafka.

Used by the facade, the CLI and the reconciler, so a request Beat accepted is
always in ``scrape_request_log`` before it is on a topic; one recorded but never
handed over (``enqueued`` false) is produced later by the reconciler.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from agents.flows.registry import get_flow
from app.settings import Settings
from topics import names
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


def prepare(flow: str, params: dict[str, Any], **fields: Any) -> ScrapeRequest:
    """A complete request for a known flow, its params validated now so bad input fails at the door."""
    spec = get_flow(flow)
    spec.params.model_validate(params)
    request = ScrapeRequest(flow=flow, params=params, **fields)
    request.id = request.id or str(uuid.uuid4())
    request.platform = request.platform or spec.platform
    request.created_at = request.created_at or utcnow()
    return request


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


async def enqueue(producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> None:
    """Produce the request, then its PENDING event (the request first, so a PENDING event implies it)."""
    key = entity_key(request.params)
    await producer.send_and_wait(
        settings.topic(names.scrape_topic(request.flow or "")),
        request.to_bytes(),
        key=key.encode() if key else None,
    )
    status = RequestStatus.of(request, Status.PENDING)
    await producer.send_and_wait(settings.topic(names.STATUS), status.to_bytes(), key=request.id.encode())


async def submit(pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> str:
    request_id = await record_pending(pool, request)
    if request_id != request.id:
        return request_id  # a duplicate submission: the first one is already on its way
    await enqueue(producer, settings, request)
    await pool.execute("UPDATE scrape_request_log SET enqueued = true WHERE id = $1", request.id)
    return request.id
