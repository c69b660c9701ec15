"""Submitting requests: record PENDING in Postgres, then hand the request and its PENDING event to Kafka.

Used by the facade, the CLI and the reconciler, so a request Beat accepted is
always in ``scrape_request_log`` before it is on a topic; one recorded but never
handed over (``enqueued`` false) is produced later by the reconciler. Where its
record landed (partition and offset) is recorded with ``enqueued``: the reconciler
reads it back to tell a request waiting in a backlog from one a broker lost.

While Postgres is down a submission is still taken when the broker is durable: the
request and its PENDING event are produced, and the status sink records the row
from that event once Postgres is back. A memory-only broker could lose the request
before then, so the submission is refused instead (``DependencyDown``), with
nothing written anywhere. A request's id is derived from its idempotency key, so
a repeated submission names the same request without asking Postgres.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from pydantic import ValidationError

from core.metrics import REQUESTS, child
from core.outage import BROKER, POSTGRES, DependencyDown, as_outage, broker_down, is_outage, reported
from core.producing import send_batched
from core.settings import Settings
from topics import names
from topics.dead_letter import record_size
from topics.errors import BeatError, Decision
from topics.flows import require_enabled
from topics.limits import status_budget
from topics.models import RequestStatus, ScrapeRequest, Status, deterministic_id, utcnow

log = logging.getLogger(__name__)

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


class NotHandedOver(DependencyDown):
    """Recorded PENDING, but the broker did not take the request's record: the reconciler produces it once the
    broker is back."""

    def __init__(self, request_id: str, cause: BaseException) -> None:
        super().__init__(BROKER, f"{type(cause).__name__}: {cause}")
        self.request_id = request_id


class Placed(NamedTuple):
    """Where a request's record landed on its flow topic."""

    request_id: str
    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, request_id: str, metadata: RecordMetadata) -> Placed:
        return cls(request_id, metadata.topic, metadata.partition, metadata.offset)


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
        raise InvalidParams(
            [{**error, "loc": ("params", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None
    request.id = request.id or request_id_for(flow, request.idempotency_key)
    request.platform = request.platform or spec.platform
    request.created_at = request.created_at or utcnow()
    return request


def request_id_for(flow: str, idempotency_key: str | None) -> str:
    """A new request's id: the same for every submission of one idempotency key to one flow."""
    return deterministic_id("idempotency", flow, idempotency_key) if idempotency_key else str(uuid.uuid4())


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
            raise TooLarge(
                f"the {what} record would be {size} bytes, over the {limit} bytes it may have "
                f"within the {max_bytes}-byte message limit"
            )


async def record_pending(pool: asyncpg.Pool, request: ScrapeRequest) -> tuple[str, bool]:
    """Insert the PENDING row: the request's id and whether this call recorded it (an id or an idempotency key
    already seen names the existing request)."""
    row = await pool.fetchrow(
        """
        INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, priority, retry_count,
                                        account_id, idempotency_key, created_at, expires_at, status_at)
        VALUES ($1, $2, $3, $4::jsonb, 'PENDING', $5, $6, $7, $8, $9, $10, $11, now())
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        request.id,
        request.flow,
        request.platform.value if request.platform else None,
        json.dumps(request.params),
        request.attempt,
        request.priority,
        request.retry_count,
        request.account_id,
        request.idempotency_key,
        request.created_at,
        request.expires_at,
    )
    if row is not None:
        return row["id"], True
    existing = await pool.fetchval(
        "SELECT id FROM scrape_request_log WHERE id = $1 OR ($2::text IS NOT NULL AND idempotency_key = $2)",
        request.id,
        request.idempotency_key,
    )
    return existing, False


async def produce_request(producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> RecordMetadata:
    """Produce the request's record to its flow's topic for its priority (its lane), keyed by its entity; where it
    landed."""
    key = entity_key(request.params)
    return await producer.send_and_wait(
        settings.request_topic(request.flow or "", request.priority),
        request.to_bytes(),
        key=key.encode() if key else None,
    )


def pending_event(request: ScrapeRequest) -> RequestStatus:
    """The PENDING event, to be built before the request is produced: a worker can take the request and send
    PROCESSING before the producer's acknowledgement returns, and the timeline orders events by their time."""
    return RequestStatus.of(request, Status.PENDING)


async def produce_pending(producer: AIOKafkaProducer, settings: Settings, pending: RequestStatus) -> None:
    await producer.send_and_wait(settings.topic(names.STATUS), pending.to_bytes(), key=pending.request_id.encode())


async def enqueue(producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> Placed:
    """Produce the request, then its PENDING event (the request first, so a PENDING event implies it)."""
    assert request.id is not None
    pending = pending_event(request)
    metadata = await produce_request(producer, settings, request)
    await produce_pending(producer, settings, pending)
    return Placed.of(request.id, metadata)


_RECORD_ENQUEUED = """
UPDATE scrape_request_log AS l
SET enqueued = true, enqueued_topic = p.topic, enqueued_partition = p.part, enqueued_offset = p.off
FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) AS p(id, topic, part, off)
WHERE l.id = p.id
"""


async def record_enqueued(db: asyncpg.Pool | asyncpg.Connection, placed: Sequence[Placed]) -> None:
    """Mark the requests handed to the broker, with where each landed."""
    if placed:
        await db.execute(
            _RECORD_ENQUEUED,
            [p.request_id for p in placed],
            [p.topic for p in placed],
            [p.partition for p in placed],
            [p.offset for p in placed],
        )


async def submit(pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest) -> str:
    """Record the request PENDING and hand it to the broker; its id.

    Raises TooLarge before any write when it cannot be produced; DependencyDown when it cannot be taken now
    (nothing is written), or NotHandedOver when it is recorded but not yet on the broker.
    """
    check_fits(request, settings.max_message_bytes)
    assert request.id is not None
    try:
        request_id, recorded = await record_pending(pool, request)
    except Exception as exc:
        if not is_outage(exc):
            raise
        return await _submit_without_postgres(producer, settings, request, exc)
    if not recorded:
        return request_id  # a duplicate submission: the first one is already on its way
    pending = pending_event(request)
    try:
        metadata = await produce_request(producer, settings, request)
    except Exception as exc:
        if broker_down(exc):
            raise NotHandedOver(request.id, exc) from exc
        raise
    try:
        await produce_pending(producer, settings, pending)
    except Exception as exc:
        if not broker_down(exc):
            raise
        # The request is on the broker, so it is accepted: the PENDING event adds only a line to its timeline.
        log.warning(
            "request %s is on the broker without its PENDING event: %s: %s", request.id, type(exc).__name__, exc
        )
    try:
        await record_enqueued(pool, [Placed.of(request.id, metadata)])
    except Exception as exc:
        if not is_outage(exc):
            raise
        # Accepted all the same; left not enqueued, the reconciler produces it once more unless a worker took it.
        log.warning(
            "request %s is on the broker but Postgres did not record it so: %s: %s", request.id, type(exc).__name__, exc
        )
    child(REQUESTS, request.flow or "unknown", "PENDING").inc()
    return request.id


async def _submit_without_postgres(
    producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest, down: BaseException
) -> str:
    if not settings.durable_broker:
        # A memory-only broker could lose the request before Postgres has it: refused, and nothing written.
        raise as_outage(POSTGRES, down) from down
    with reported(BROKER, broker_down):
        await enqueue(producer, settings, request)
    log.info(
        "Postgres is unreachable (%s): request %s went to the durable broker alone; the status sink records "
        "it when Postgres is back",
        type(down).__name__,
        request.id,
    )
    assert request.id is not None
    return request.id


_RECORD_SQL = """
INSERT INTO scrape_request_log (id, flow, platform, params, status, attempt, priority, retry_count, created_at,
                                status_at)
SELECT u.id, u.flow, u.platform, u.params, 'PENDING', 1, u.priority, 0, u.created_at, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::int[], $6::timestamptz[])
    AS u(id, flow, platform, params, priority, created_at)
ON CONFLICT DO NOTHING
RETURNING id
"""


async def record_requests(conn: asyncpg.Connection, requests: Sequence[ScrapeRequest]) -> list[ScrapeRequest]:
    """Record the requests PENDING; returns those not recorded before (the ones to produce)."""
    if not requests:
        return []
    rows = await conn.fetch(
        _RECORD_SQL,
        [r.id for r in requests],
        [r.flow for r in requests],
        [r.platform.value if r.platform else None for r in requests],
        [json.dumps(r.params) for r in requests],
        [r.priority for r in requests],
        [r.created_at for r in requests],
    )
    recorded = {row["id"] for row in rows}
    return [r for r in requests if r.id in recorded]


async def produce_requests(
    producer: AIOKafkaProducer, settings: Settings, requests: Sequence[ScrapeRequest]
) -> list[Placed]:
    """Every request, then every PENDING event (a PENDING event implies its request is on the broker); where
    each request landed."""
    pending = [pending_event(r) for r in requests]
    by_topic: dict[str, list[ScrapeRequest]] = {}
    for request in requests:
        by_topic.setdefault(settings.request_topic(request.flow or "", request.priority), []).append(request)
    placed = []
    for topic, batch in by_topic.items():
        landed = await send_batched(
            producer,
            topic,
            [((entity_key(r.params) or r.id or "").encode(), r.to_bytes()) for r in batch],
        )
        placed += [
            Placed(r.id or "", topic, partition, offset) for r, (partition, offset) in zip(batch, landed, strict=True)
        ]
    await send_batched(
        producer,
        settings.topic(names.STATUS),
        [(event.request_id.encode(), event.to_bytes()) for event in pending],
    )
    return placed
