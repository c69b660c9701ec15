"""``beat legacy import``: a legacy database (legacy §11.7) into Beat's tables, in batches.

Each table is read in legacy id order, one ``COPY (SELECT … LIMIT n) TO STDOUT`` per batch (CSV, parsed
here), the next batch read while the current one is written, so memory holds two batches whatever the
table's size. A batch is written with the sink's own code (``sinks.upsert``, ``sinks.status``), its
refused rows isolated as the sink isolates them (``sinks.writer.upsert_isolating``), and committed with
the table's progress in ``legacy_import``: an interrupted run resumes after the last committed batch,
and a run after a finished one reads everything again and, with nothing new in the legacy, writes
nothing. ``dry_run`` does all of it inside one transaction that is rolled back.

The legacy connection is read-only, and its time zone is the legacy server's, so naive legacy
timestamps (its local time) are read as the instants they were.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncpg
from pydantic import ValidationError

from sinks import derived, legacy_requests
from sinks.credential_moves import record_of_legacy, upsert_credentials
from sinks.legacy_tables import (
    BOOL,
    CONVERTERS,
    ENTITY_TABLES,
    JSON,
    TEXT,
    TIME,
    LegacyTable,
    Refused,
    select_expression,
)
from sinks.upsert import upsert
from sinks.writer import BATCH_SETTINGS, POISON_ERRORS, upsert_isolating

log = logging.getLogger(__name__)

# A caption or an order's JSON can be far longer than the csv module's default field limit (128 KiB).
csv.field_size_limit(2**31 - 1)

DEFAULT_BATCH = 5000
# A batch's commit need not wait for its WAL to reach the disk: a crash that loses it loses its progress row
# with it, and the resumed run writes the batch again, which the upserts make harmless.
IMPORT_SETTINGS = f"{BATCH_SETTINGS}; SET LOCAL synchronous_commit = off"

Rows = list[tuple[int, dict[str, Any]]]


@dataclass
class Outcome:
    written: int = 0
    merged: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One legacy table: its columns (name -> kind) and how a batch of its rows is written."""

    name: str
    columns: dict[str, str]
    # careful: under savepoints, isolating what Postgres refuses; otherwise a refusal aborts the transaction,
    # and the batch is written again carefully (a savepoint per batch costs round trips).
    write: Callable[[asyncpg.Connection, Rows, bool], Awaitable[Outcome]]


@dataclass
class TableReport:
    table: str
    read: int = 0
    written: int = 0
    merged: int = 0
    refused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    missing_columns: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def unchanged(self) -> int:
        return self.read - self.written - self.merged - self.refused

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "table": self.table,
            "read": self.read,
            "written": self.written,
            "unchanged": self.unchanged,
            "merged": self.merged,
            "refused": self.refused,
            "refused_reasons": dict(self.reasons),
        }
        if self.missing_columns:
            summary["missing_legacy_columns"] = self.missing_columns
        if self.note:
            summary["note"] = self.note
        return summary


class Bar(Protocol):
    def advance(self, steps: int = 1) -> None: ...


Track = Callable[[str, int], AbstractContextManager[Bar]]


# The writers of each kind of table.


def _entity_step(table: LegacyTable) -> Step:
    async def write(conn: asyncpg.Connection, rows: Rows, careful: bool) -> Outcome:
        outcome = Outcome()
        converted = []
        for legacy_id, row in rows:
            try:
                converted.append(table.convert(row))
            except Refused as exc:
                log.warning("legacy %s row %d refused: %s", table.name, legacy_id, exc)
                outcome.refused.append(str(exc))
        target = table.target
        outcome.merged = len(converted) - len({target.key_of(row) for row in converted})
        if not careful:
            returned = await upsert(conn, target, converted)
        else:
            returned, poison = await upsert_isolating(conn, target, converted)
            outcome.refused += [f"{error.type}: {error.message}"[:200] for _, error in poison]
        outcome.written = len(returned)
        return outcome

    return Step(table.name, table.columns, write)


async def _one_by_one(
    conn: asyncpg.Connection,
    rows: Rows,
    careful: bool,
    write: Callable[[asyncpg.Connection, Rows], Awaitable[Outcome]],
) -> Outcome:
    """``write`` for the whole batch; carefully, when Postgres refuses something, for each row alone."""
    if not careful:
        return await write(conn, rows)
    try:
        async with conn.transaction():
            return await write(conn, rows)
    except POISON_ERRORS:
        pass
    total = Outcome()
    for row in rows:
        try:
            async with conn.transaction():
                outcome = await write(conn, [row])
        except POISON_ERRORS as exc:
            log.warning("legacy row %d refused by Postgres: %s", row[0], exc)
            total.refused.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        total.written += outcome.written
        total.merged += outcome.merged
        total.refused += outcome.refused
    return total


def _rowwise(
    write: Callable[[asyncpg.Connection, Rows], Awaitable[Outcome]],
) -> Callable[[asyncpg.Connection, Rows, bool], Awaitable[Outcome]]:
    return lambda conn, rows, careful: _one_by_one(conn, rows, careful, write)


async def _write_credentials(conn: asyncpg.Connection, rows: Rows) -> Outcome:
    outcome = Outcome()
    records = []
    for legacy_id, row in rows:
        try:
            records.append(record_of_legacy(row))
        except (ValueError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            log.warning("legacy credential %d refused: %s", legacy_id, reason)
            outcome.refused.append(reason)
    outcome.merged = len(records) - len({record.key() for record in records})
    outcome.written = len(await upsert_credentials(conn, records))
    return outcome


async def _write_requests(conn: asyncpg.Connection, rows: Rows) -> Outcome:
    written, refused = await legacy_requests.write_requests(conn, rows)
    return Outcome(written=written, refused=refused)


CREDENTIAL_COLUMNS = {
    "idempotency_key": TEXT,
    "source": TEXT,
    "credentials": JSON,
    "handle": TEXT,
    "created_at": TIME,
    "updated_at": TIME,
    "disabled_till": TIME,
    "enabled": BOOL,
    "data_access_expired": BOOL,
}

STEPS: tuple[Step, ...] = (
    Step("credential", CREDENTIAL_COLUMNS, _rowwise(_write_credentials)),
    *(_entity_step(table) for table in ENTITY_TABLES),
    Step(
        "scrape_request_log",
        legacy_requests.COLUMNS,
        _rowwise(_write_requests),
    ),
)
TABLE_NAMES = tuple(step.name for step in STEPS)

# The derived account columns (avg_*, post_metrics) are recomputed once the accounts and posts are in, in a
# pass of their own over Beat's accounts: per batch of posts, an account whose posts spread over the whole
# legacy table would be recomputed once per batch. It is recorded in the progress like a table.
DERIVED = "instagram_account (derived columns)"
_DERIVED_FROM = frozenset({"instagram_account", "instagram_post"})
_ACCOUNTS_AFTER = """
SELECT id, profile_id FROM instagram_account WHERE $1::bigint IS NULL OR id > $1::bigint ORDER BY id LIMIT $2
"""


# Reading the legacy.


def origin_of(url: str) -> str:
    """The legacy database as the progress names it: host, port and name, without credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


async def legacy_connection(url: str, timezone: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await conn.execute("SET default_transaction_read_only = on")
    await conn.fetchval("SELECT set_config('TimeZone', $1, false)", timezone)
    return conn


async def present_columns(conn: asyncpg.Connection, table: str) -> set[str] | None:
    """The table's columns in the legacy database; None when it has no such table."""
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    return {row["column_name"] for row in rows} or None


@dataclass
class Batch:
    rows: Rows
    read: int
    refused: list[str]
    last_id: int | None


def _parse(text: str, columns: dict[str, str], table: str) -> Batch:
    """The CSV of a batch, (id, JSON object of the row's non-null values) per line, into Python values; a row
    with a value that cannot be read is refused, naming the column."""
    converted = [(name, CONVERTERS[kind]) for name, kind in columns.items() if kind in CONVERTERS]
    rows: Rows = []
    refused: list[str] = []
    last_id = None
    read = 0
    for legacy_id, values in csv.reader(io.StringIO(text, newline="")):
        read += 1
        last_id = int(legacy_id)
        row: dict[str, Any] = json.loads(values)
        for name, convert in converted:
            value = row.get(name)
            if value is not None:
                try:
                    row[name] = convert(value)
                except ValueError:
                    reason = f"{name}: unreadable {columns[name]}"
                    log.warning("legacy %s row %d refused: %s", table, last_id, reason)
                    refused.append(reason)
                    break
        else:
            rows.append((last_id, row))
    return Batch(rows, read, refused, last_id)


async def read_batch(
    conn: asyncpg.Connection, table: str, columns: dict[str, str], after: int | None, limit: int
) -> Batch:
    selected = ", ".join(select_expression(name, kind) for name, kind in columns.items())
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    # The table and column names are this package's constants; the bounds are parameters. Postgres leaves
    # the nulls out (most legacy columns are null in most rows) and types the rest.
    await conn.copy_from_query(
        f'SELECT s.id, json_strip_nulls(row_to_json(s))::text FROM (SELECT "id", {selected} FROM "{table}" '
        f'WHERE $1::bigint IS NULL OR "id" > $1::bigint ORDER BY "id" LIMIT $2) AS s',
        after,
        limit,
        output=collect,
        format="csv",
    )
    return _parse(b"".join(chunks).decode(), columns, table)


# Progress.

_SAVE = """
INSERT INTO legacy_import AS t (origin, table_name, after_id, done, rows_read, rows_written, rows_merged,
    rows_refused, refused_reasons)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
ON CONFLICT (origin, table_name) DO UPDATE SET after_id = EXCLUDED.after_id, done = EXCLUDED.done,
    rows_read = EXCLUDED.rows_read, rows_written = EXCLUDED.rows_written, rows_merged = EXCLUDED.rows_merged,
    rows_refused = EXCLUDED.rows_refused, refused_reasons = EXCLUDED.refused_reasons, updated_at = now()
"""


async def _save(conn: asyncpg.Connection, origin: str, report: TableReport, after: int | None, done: bool) -> None:
    await conn.execute(
        _SAVE,
        origin,
        report.table,
        after,
        done,
        report.read,
        report.written,
        report.merged,
        report.refused,
        json.dumps(report.reasons),
    )


@dataclass
class _Progress:
    after: int | None
    done: bool
    report: TableReport


async def _load_progress(conn: asyncpg.Connection, origin: str) -> dict[str, _Progress]:
    progress = {}
    for row in await conn.fetch("SELECT * FROM legacy_import WHERE origin = $1", origin):
        report = TableReport(
            row["table_name"],
            read=row["rows_read"],
            written=row["rows_written"],
            merged=row["rows_merged"],
            refused=row["rows_refused"],
            reasons=Counter(json.loads(row["refused_reasons"])),
        )
        progress[row["table_name"]] = _Progress(row["after_id"], row["done"], report)
    return progress


# The run.


@dataclass
class ImportRun:
    legacy: asyncpg.Connection
    beat: asyncpg.Connection
    origin: str
    track: Track
    batch_size: int = DEFAULT_BATCH
    dry_run: bool = False

    async def run(self, tables: Sequence[str] = TABLE_NAMES, restart: bool = False) -> list[TableReport]:
        steps = [step for step in STEPS if step.name in tables]
        names = [step.name for step in steps] + ([DERIVED] if _DERIVED_FROM & set(tables) else [])
        progress = await _load_progress(self.beat, self.origin)
        # A finished import is a baseline, not an end: the next run reads everything again (picking up what
        # the legacy wrote since), and only an interrupted one resumes.
        if restart or all(name in progress and progress[name].done for name in names):
            progress = {}
            if not self.dry_run:
                await self.beat.execute(
                    "DELETE FROM legacy_import WHERE origin = $1 AND table_name = ANY($2::text[])", self.origin, names
                )
        if self.dry_run:
            transaction = self.beat.transaction()
            await transaction.start()
            await self.beat.execute(IMPORT_SETTINGS)
        try:
            reports = [await self._table(step, progress.get(step.name)) for step in steps]
            if DERIVED in names:
                reports.append(await self._derived(reports, progress.get(DERIVED)))
            return reports
        finally:
            if self.dry_run:
                await transaction.rollback()

    async def _derived(self, reports: list[TableReport], resumed: _Progress | None) -> TableReport:
        """Recompute the derived columns of every account, when this run (or the one it resumes) changed an
        account or a post; ``read`` counts the accounts, ``written`` those whose columns moved."""
        if resumed is not None and resumed.done:
            return resumed.report
        report = resumed.report if resumed else TableReport(DERIVED)
        after = resumed.after if resumed else None
        if resumed is None and not any(r.written for r in reports if r.table in _DERIVED_FROM):
            report.note = "no account or post changed"
        else:
            total = await self.beat.fetchval(
                "SELECT count(*) FROM instagram_account WHERE $1::bigint IS NULL OR id > $1::bigint", after
            )
            with self.track(DERIVED, total) as bar:
                while accounts := await self.beat.fetch(_ACCOUNTS_AFTER, after, self.batch_size):
                    after = accounts[-1]["id"]
                    async with self.beat.transaction():
                        await self.beat.execute(IMPORT_SETTINGS)
                        report.read += len(accounts)
                        report.written += await derived.refresh_accounts(
                            self.beat, [row["profile_id"] for row in accounts]
                        )
                        if not self.dry_run:
                            await _save(self.beat, self.origin, report, after, done=False)
                    bar.advance(len(accounts))
        if not self.dry_run:
            await _save(self.beat, self.origin, report, after, done=True)
        return report

    async def _table(self, step: Step, resumed: _Progress | None) -> TableReport:
        if resumed is not None and resumed.done:
            resumed.report.note = "imported by an earlier run that was interrupted later"
            return resumed.report
        report = resumed.report if resumed else TableReport(step.name)
        if resumed:
            report.note = f"resumed after legacy id {resumed.after}"
        present = await present_columns(self.legacy, step.name)
        if present is None or "id" not in present:
            report.note = "no such table (or no id column) in the legacy database"
            if not self.dry_run:  # done: nothing to resume
                await _save(self.beat, self.origin, report, None, done=True)
            return report
        columns = {name: kind for name, kind in step.columns.items() if name in present}
        report.missing_columns = [name for name in step.columns if name not in present]
        after = resumed.after if resumed else None
        total = await self.legacy.fetchval(
            f'SELECT count(*) FROM "{step.name}" WHERE $1::bigint IS NULL OR "id" > $1::bigint', after
        )
        with self.track(step.name, total) as bar:
            after = await self._batches(step, columns, report, after, bar)
        if not self.dry_run:
            await _save(self.beat, self.origin, report, after, done=True)
        return report

    async def _batches(
        self, step: Step, columns: dict[str, str], report: TableReport, after: int | None, bar: Bar
    ) -> int | None:
        def read(after: int | None) -> asyncio.Task[Batch]:
            return asyncio.create_task(read_batch(self.legacy, step.name, columns, after, self.batch_size))

        pending = read(after)
        try:
            while True:
                batch = await pending
                if batch.last_id is None:
                    return after
                pending = read(batch.last_id)  # the next batch comes while this one is written
                await self._write(step, batch, report, batch.last_id)
                after = batch.last_id
                bar.advance(batch.read)
        finally:
            if not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def _write(self, step: Step, batch: Batch, report: TableReport, after: int) -> None:
        if self.dry_run:  # inside the run's one transaction, which a refusal must not abort
            _count(report, batch, await step.write(self.beat, batch.rows, True))
            return
        for careful in (False, True):
            try:
                async with self.beat.transaction():
                    await self.beat.execute(IMPORT_SETTINGS)
                    outcome = await step.write(self.beat, batch.rows, careful)
                    counted = dataclasses.replace(report, reasons=report.reasons.copy())
                    _count(counted, batch, outcome)
                    await _save(self.beat, self.origin, counted, after, done=False)
            except POISON_ERRORS as exc:
                if careful:
                    raise
                log.warning("legacy %s: a batch holds a row Postgres refuses (%s); isolating it", step.name, exc)
                continue
            _count(report, batch, outcome)
            return


def _count(report: TableReport, batch: Batch, outcome: Outcome) -> None:
    report.read += batch.read
    report.written += outcome.written
    report.merged += outcome.merged
    refused = [*batch.refused, *outcome.refused]
    report.refused += len(refused)
    report.reasons.update(refused)
