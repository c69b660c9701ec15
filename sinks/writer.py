"""One decoded batch into Postgres, in one transaction, and what follows from it.

The common case is one statement per table, the derived account columns of the
accounts the batch changed, the upload requests for the pictures it changed, the
statuses, the batch's events in the stored-events ledger and the recount of the
requests it touched (``sinks.stored``), one commit. When Postgres refuses a value
(a data or constraint error), that transaction is rolled back and the batch is
written again with each table's rows split in halves under savepoints until the
refused rows stand alone: they are returned as poison, counted as refused on
their request, and everything else is committed. Connection failures are not
handled here; they propagate, and the caller retries the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from core.requests import record_requests
from sinks import derived, instagram, stored
from sinks.dead_letters import write_letters
from sinks.pictures import changed_pictures
from sinks.routing import Decoded, error_info
from sinks.status import write_statuses
from sinks.upsert import UpsertTable, upsert
from topics.models import ErrorInfo, ScrapeRequest, Status

log = logging.getLogger(__name__)

# What a single row can cause: a value out of range or not representable, a violated constraint, a key too
# long for its index.
POISON_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, asyncpg.ProgramLimitExceededError)

# The statements' plans depend on the arrays' sizes: a cached generic plan (Postgres switches to one after five
# runs of a prepared statement) guesses them and runs several times slower. JIT compiling them costs more than
# running them: batch statements look expensive to the planner but touch a few thousand rows.
BATCH_SETTINGS = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL jit = off"

Write = Callable[[asyncpg.Connection, list[Any]], Awaitable[list[asyncpg.Record]]]


@dataclass
class Written:
    poison: list[tuple[int, ErrorInfo]]
    asset_requests: list[ScrapeRequest]


@dataclass
class _Group:
    name: str
    write: Write
    items: list[tuple[int, Any]]


async def _write_statuses(conn: asyncpg.Connection, events: list[Any]) -> list[asyncpg.Record]:
    await write_statuses(conn, events)
    return []


def _table_writer(table: UpsertTable) -> Write:
    async def write(conn: asyncpg.Connection, rows: list[Any]) -> list[asyncpg.Record]:
        return await upsert(conn, table, rows)

    return write


def _table_groups(decoded: Decoded) -> list[_Group]:
    groups = [_Group(table.name, _table_writer(table), rows) for table, rows in decoded.rows.items() if rows]
    if decoded.letters:
        groups.append(_Group("dead_letter", write_letters, decoded.letters))
    return groups


def touched_accounts(accounts: Iterable[asyncpg.Record], posts: Iterable[asyncpg.Record]) -> set[str]:
    """Accounts whose derived columns may have moved: changed accounts, and owners of changed feed posts."""
    touched = {row["profile_id"] for row in accounts}
    feed = (derived.REELS, *derived.STATIC)
    touched.update(row["profile_id"] for row in posts if row["profile_id"] and row["post_type"] in feed)
    return touched


async def _isolating(
    conn: asyncpg.Connection, group: _Group, items: Sequence[tuple[int, Any]]
) -> tuple[list[asyncpg.Record], list[tuple[int, ErrorInfo]]]:
    try:
        async with conn.transaction():  # a savepoint: a refused half leaves the rest of the batch intact
            return await group.write(conn, [payload for _, payload in items]), []
    except POISON_ERRORS as exc:
        if len(items) == 1:
            log.warning("%s refused a row of record %d: %s", group.name, items[0][0], exc)
            error = error_info(exc)
            return [], [(items[0][0], error.model_copy(update={"message": f"{group.name}: {error.message}"}))]
    middle = len(items) // 2
    first, first_poison = await _isolating(conn, group, items[:middle])
    second, second_poison = await _isolating(conn, group, items[middle:])
    return first + second, first_poison + second_poison


async def _run(
    conn: asyncpg.Connection, group: _Group, isolate: bool
) -> tuple[list[asyncpg.Record], list[tuple[int, ErrorInfo]]]:
    if isolate:
        # The halves keep arrival order, which is the order the single statement merges rows in.
        return await _isolating(conn, group, group.items)
    return await group.write(conn, [payload for _, payload in group.items]), []


def _ledger(decoded: Decoded, poison: list[tuple[int, ErrorInfo]]) -> list[tuple[stored.Counted, str | None]]:
    """Each counted event with its outcome: the reason it was refused, or None when it is stored (an event of
    a kind without a table included: there is nothing more to store)."""
    refused = {origin: stored.reason(error.type, error.message) for origin, error in (*decoded.poison, *poison)}
    return [(event, refused.get(origin)) for origin, event in decoded.counted.items()]


async def _write(conn: asyncpg.Connection, decoded: Decoded, *, isolate: bool) -> Written:
    poison: list[tuple[int, ErrorInfo]] = []
    returned: dict[str, list[asyncpg.Record]] = {}
    async with conn.transaction():
        await conn.execute(BATCH_SETTINGS)
        for group in _table_groups(decoded):
            returned[group.name], refused = await _run(conn, group, isolate)
            poison += refused
        accounts = returned.get(instagram.ACCOUNT.name, [])
        posts = returned.get(instagram.POST.name, [])
        await derived.refresh_accounts(conn, touched_accounts(accounts, posts))
        requests = await record_requests(conn, changed_pictures(accounts, posts))
        # The statuses come last, after the recount lock: a sink then never holds a request's row while it
        # waits for the lock another sink's recount of that row holds (``sinks.stored.lock``).
        completed = [event.request_id for _, event in decoded.statuses if event.status is Status.COMPLETE]
        if decoded.counted or completed:
            await stored.lock(conn)
        if decoded.statuses:
            _, refused = await _run(conn, _Group("scrape_request_log", _write_statuses, decoded.statuses), isolate)
            poison += refused
        await stored.record(conn, _ledger(decoded, poison), completed)
    return Written(poison, requests)


async def write_batch(conn: asyncpg.Connection, decoded: Decoded) -> Written:
    try:
        return await _write(conn, decoded, isolate=False)
    except POISON_ERRORS as exc:
        log.warning("the batch holds a value Postgres refuses (%s: %s); isolating it", type(exc).__name__, exc)
    return await _write(conn, decoded, isolate=True)


async def upsert_isolating(
    conn: asyncpg.Connection, table: UpsertTable, rows: Sequence[dict[str, Any]]
) -> tuple[list[asyncpg.Record], list[tuple[int, ErrorInfo]]]:
    """``rows`` upserted as the sink isolates a refused batch (``beat legacy import`` uses it too): halves under
    savepoints until each refused row stands alone. What changed, and each refused row's index and why."""
    group = _Group(table.name, _table_writer(table), list(enumerate(rows)))
    return await _isolating(conn, group, group.items)
