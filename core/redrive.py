"""An operator's re-drives (contract §2, REDRIVEN): list dead letters, re-drive them, re-open FAILED requests.

A terminal request reopens only here. Re-opening records nothing in the status row itself:
it claims the row (``redrives`` + 1, ``redriven_at``), then produces the REDRIVEN status of the
next attempt and, after it, the request's record to its flow topic. The status goes first so
that the sink has reopened the row before any status of the new attempt arrives (the sink
ignores anything but REDRIVEN after a terminal status). The claim is what makes a re-drive
happen at most once: a row whose ``redriven_at`` is newer than its last status change
(``status_at``) is already re-opened, and its REDRIVEN is on its way.

A dead letter is re-driven at most once in the same way (``dead_letter.redriven_at``, claimed
before anything is produced). One that names a DEAD_LETTERED request re-opens the request;
one that names none is its original record, produced again from its original bytes to its
original topic (a letter that kept only the first bytes of a too-large original cannot be).
A claim whose production fails is released, so the operator can run the command again.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from core.metrics import REDRIVES
from core.reconciler import Unproducible, stored_request
from core.requests import (
    Placed,
    TooLarge,
    check_fits,
    produce_request,
    record_enqueued,
)
from core.settings import Settings
from topics import names
from topics.errors import BeatError, Decision
from topics.models import RequestStatus, ScrapeRequest, Status

# What an operator can re-open: a definitive or spent failure, and poison (once its cause is fixed).
REOPENABLE = frozenset({Status.FAILED, Status.DEAD_LETTERED})

_ROW_COLUMNS = (
    "id, flow, platform, params, priority, retry_count, attempt, account_id, idempotency_key, "
    "created_at, expires_at, retries_spent, status, redriven_at, "
    "(redriven_at IS NULL OR redriven_at < status_at) AS unclaimed"
)


class UnknownRequest(BeatError, LookupError):
    """No request has this id."""

    decision = Decision.DEFINITIVE


class NotReopenable(BeatError):
    """The request cannot be re-opened now; the message says why (its status, an earlier re-drive)."""

    decision = Decision.DEFINITIVE


@dataclass(frozen=True, slots=True)
class Filters:
    """Which dead letters or failed requests a command takes; None matches anything."""

    flow: str | None = None
    error_type: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reopened:
    request_id: str
    attempt: int
    reopened_from: Status


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became (or, in a dry run, would become) of one dead letter or request."""

    subject: str
    done: bool
    detail: str


def _where(filters: Filters, *, time: str, id_column: str, first: int) -> tuple[str, list[Any]]:
    """The filters as SQL conditions on parameters ``$first`` onwards (column names are this module's)."""
    conditions: list[str] = []
    values: list[Any] = []
    for value, condition in (
        (filters.flow, "flow = ${}"),
        (filters.error_type, "error_type = ${}"),
        # A source column may list every source an attempt tried, comma-separated.
        (filters.source, "${} = ANY(string_to_array(source, ','))"),
        (filters.since, f"{time} >= ${{}}"),
        (filters.until, f"{time} < ${{}}"),
        (filters.request_id, f"{id_column} = ${{}}"),
    ):
        if value is not None:
            conditions.append(condition.format(first + len(values)))
            values.append(value)
    return "".join(f" AND {condition}" for condition in conditions), values


# Listing


async def list_letters(pool: asyncpg.Pool, filters: Filters, limit: int = 100) -> list[asyncpg.Record]:
    """Dead letters, newest first."""
    where, values = _where(filters, time="last_failure_at", id_column="request_id", first=2)
    return await pool.fetch(
        "SELECT id, last_failure_at, flow, error_type, error_message, request_id, source, original_topic, "
        "original_partition, original_offset, redriven_at, redriven_as, "
        "COALESCE((record->>'original_truncated')::boolean, false) AS truncated "
        f"FROM dead_letter WHERE true{where} ORDER BY last_failure_at DESC, id DESC LIMIT $1",
        limit,
        *values,
    )


# Re-opening a request


def _next_attempt(row: asyncpg.Record) -> ScrapeRequest:
    """The request's next attempt; an operator's re-drive gives it a fresh retry budget."""
    try:
        request = stored_request(row, retry_count=row["attempt"])
    except Unproducible as exc:
        raise NotReopenable(str(exc)) from None
    return request.model_copy(update={"retries_spent": 0, "first_failed_at": None})


async def _load(conn: asyncpg.Connection, request_id: str) -> tuple[asyncpg.Record, ScrapeRequest]:
    row = await conn.fetchrow(f"SELECT {_ROW_COLUMNS} FROM scrape_request_log WHERE id = $1", request_id)
    if row is None:
        raise UnknownRequest(f"no request {request_id}")
    if row["status"] not in REOPENABLE:
        raise NotReopenable(
            f"request {request_id} is {row['status']}, not {' or '.join(sorted(s.value for s in REOPENABLE))}"
        )
    if not row["unclaimed"]:
        raise NotReopenable(f"request {request_id} is already re-opened (at {row['redriven_at']:%Y-%m-%d %H:%M:%S})")
    return row, _next_attempt(row)


async def _claim(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    claimed = await conn.execute(
        # Not enqueued until its record is on the broker: if this process dies between the REDRIVEN status
        # and the record, the reconciler produces the record (the status sink keeps the flag for REDRIVEN).
        "UPDATE scrape_request_log SET redrives = redrives + 1, redriven_at = now(), updated_at = now(), "
        "enqueued = false "
        "WHERE id = $1 AND status = $2 AND attempt = $3 AND (redriven_at IS NULL OR redriven_at < status_at)",
        row["id"],
        row["status"],
        row["attempt"],
    )
    if claimed != "UPDATE 1":
        raise NotReopenable(f"request {row['id']} was re-opened or changed meanwhile")


async def _release(pool: asyncpg.Pool, row: asyncpg.Record) -> None:
    await pool.execute(
        "UPDATE scrape_request_log SET redrives = redrives - 1, redriven_at = $2 WHERE id = $1",
        row["id"],
        row["redriven_at"],
    )


async def _produce_reopened(
    producer: AIOKafkaProducer, settings: Settings, request: ScrapeRequest, reopened_from: str
) -> Placed:
    assert request.id is not None
    status = RequestStatus.of(request, Status.REDRIVEN, result={"redriven_from": reopened_from})
    await producer.send_and_wait(settings.topic(names.STATUS), status.to_bytes(), key=request.id.encode())
    return Placed.of(request.id, await produce_request(producer, settings, request))


async def reopen(
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer | None,
    settings: Settings,
    request_id: str,
    *,
    allowed: frozenset[Status] = REOPENABLE,
    letter_id: int | None = None,
) -> Reopened:
    """Re-open a FAILED or DEAD_LETTERED request as its next attempt; ``producer`` None is a dry run.

    Raises UnknownRequest, or NotReopenable saying why. With ``letter_id`` the dead letter is claimed
    in the same transaction, so the letter and its request are re-driven together or not at all.
    """
    async with pool.acquire() as conn:
        row, request = await _load(conn, request_id)
        if Status(row["status"]) not in allowed:
            raise NotReopenable(f"request {request_id} is {row['status']}")
        try:
            check_fits(request, settings.max_message_bytes)
        except TooLarge as exc:
            raise NotReopenable(f"request {request_id} cannot be produced again: {exc}") from None
        reopened = Reopened(request_id, request.attempt, Status(row["status"]))
        if producer is None:
            return reopened
        async with conn.transaction():
            await _claim(conn, row)
            if letter_id is not None:
                await _claim_letter(conn, letter_id, f"{request_id}/{request.attempt}")
            # The request's other letters are settled by this re-drive too: none may re-open it again.
            letters = await conn.fetch(
                "UPDATE dead_letter SET redriven_at = now(), redriven_as = $2 "
                "WHERE request_id = $1 AND redriven_at IS NULL RETURNING id",
                request_id,
                f"{request_id}/{request.attempt}",
            )
    try:
        placed = await _produce_reopened(producer, settings, request, row["status"])
    except BaseException:
        await _release(pool, row)
        await _release_letters(pool, [*([letter_id] if letter_id is not None else []), *(r["id"] for r in letters)])
        raise
    await record_enqueued(pool, [placed])
    REDRIVES.inc()
    return reopened


async def retry_failed(
    pool: asyncpg.Pool, producer: AIOKafkaProducer | None, settings: Settings, filters: Filters
) -> list[Outcome]:
    """Re-open every FAILED request the filters match (not re-opened yet), oldest failure first."""
    where, values = _where(filters, time="COALESCE(scraped_at, status_at)", id_column="id", first=1)
    rows = await pool.fetch(
        "SELECT id FROM scrape_request_log WHERE status = 'FAILED' "
        f"AND (redriven_at IS NULL OR redriven_at < status_at){where} ORDER BY COALESCE(scraped_at, status_at), id",
        *values,
    )
    outcomes = []
    for row in rows:
        try:
            reopened = await reopen(pool, producer, settings, row["id"], allowed=frozenset({Status.FAILED}))
        except (UnknownRequest, NotReopenable) as exc:
            outcomes.append(Outcome(row["id"], False, str(exc)))
            continue
        outcomes.append(Outcome(row["id"], True, f"attempt {reopened.attempt}"))
    return outcomes


# Re-driving dead letters


async def _claim_letter(conn: asyncpg.Connection, letter_id: int, redriven_as: str | None) -> None:
    claimed = await conn.execute(
        "UPDATE dead_letter SET redriven_at = now(), redriven_as = $2 WHERE id = $1 AND redriven_at IS NULL",
        letter_id,
        redriven_as,
    )
    if claimed != "UPDATE 1":
        raise NotReopenable(f"dead letter {letter_id} was re-driven meanwhile")


async def _release_letters(pool: asyncpg.Pool, letter_ids: list[int]) -> None:
    await pool.execute(
        "UPDATE dead_letter SET redriven_at = NULL, redriven_as = NULL WHERE id = ANY($1::bigint[])", letter_ids
    )


def _original(record: dict[str, Any]) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The original record's key, value and headers, as the letter kept them."""
    key = base64.b64decode(record["original_key"], validate=True) if record.get("original_key") else None
    value = base64.b64decode(record.get("original_value") or "", validate=True)
    headers = [(str(name), str(text).encode()) for name, text in (record.get("original_headers") or {}).items()]
    return key, value, headers


async def _reproduce(pool: asyncpg.Pool, producer: AIOKafkaProducer | None, letter: asyncpg.Record) -> str:
    """Produce a letter's original record again to its original topic; what it became, for ``redriven_as``."""
    record = json.loads(letter["record"]) if isinstance(letter["record"], str) else letter["record"]
    if record.get("original_truncated"):
        raise NotReopenable(
            f"its original was {record.get('original_size')} bytes and the letter kept only the "
            "first ones: it cannot be re-driven"
        )
    try:
        key, value, headers = _original(record)
    except (binascii.Error, ValueError) as exc:
        raise NotReopenable(f"its original bytes do not decode: {exc}") from None
    topic = letter["original_topic"]
    if producer is None:
        return f"{topic} ({len(value)} bytes)"
    async with pool.acquire() as conn:
        await _claim_letter(conn, letter["id"], None)
    try:
        sent = await producer.send_and_wait(topic, value, key=key, headers=headers)
    except BaseException:
        await _release_letters(pool, [letter["id"]])
        raise
    redriven_as = f"{topic}/{sent.partition}/{sent.offset}"
    await pool.execute("UPDATE dead_letter SET redriven_as = $2 WHERE id = $1", letter["id"], redriven_as)
    return redriven_as


async def redrive_letters(
    pool: asyncpg.Pool, producer: AIOKafkaProducer | None, settings: Settings, filters: Filters
) -> list[Outcome]:
    """Re-drive every dead letter the filters match that was not re-driven yet, oldest first."""
    where, values = _where(filters, time="last_failure_at", id_column="request_id", first=1)
    letters = await pool.fetch(
        "SELECT id, request_id, original_topic, record FROM dead_letter "
        f"WHERE redriven_at IS NULL{where} ORDER BY last_failure_at, id",
        *values,
    )
    outcomes = []
    for letter in letters:
        subject = f"dead letter {letter['id']}"
        try:
            if letter["request_id"] is not None:
                reopened = await reopen(
                    pool,
                    producer,
                    settings,
                    letter["request_id"],
                    allowed=frozenset({Status.DEAD_LETTERED}),
                    letter_id=letter["id"],
                )
                detail = f"request {reopened.request_id} attempt {reopened.attempt}"
            else:
                detail = f"original record to {await _reproduce(pool, producer, letter)}"
        except (UnknownRequest, NotReopenable) as exc:
            outcomes.append(Outcome(subject, False, str(exc)))
            continue
        outcomes.append(Outcome(subject, True, detail))
    return outcomes
