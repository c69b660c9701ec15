"""``beat legacy import|export-credentials|import-credentials``: a legacy deployment's data into Beat.

Standard output gets one JSON line per table imported, or per credential moved with its secrets masked;
the secrets themselves only ever go to the file ``export-credentials`` writes (mode 0600).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from app.cli_support import Failure, Usage, command_settings, complain, connected, run_against_services
from app.progress import tracked
from core.settings import Settings, mask_url

legacy_app = typer.Typer(help="Bring a legacy Beat deployment's database and credentials over.")

LegacyUrl = Annotated[
    str,
    typer.Option("--from", metavar="URL", help="the legacy database, postgresql://user:pass@host:port/db"),
]


def _beat_database(settings: Settings) -> str:
    """Beat's database: BEAT_DATABASE_URL, else the running `beat up`'s."""
    url = settings.database_url or connected(settings).database_url
    assert url, "connected() fills it or fails"
    return url


def _migrated(url: str) -> None:
    from sqlalchemy.exc import OperationalError

    from sinks.schema import migrate

    try:
        migrate(url)
    except OperationalError as exc:
        raise Failure(f"Postgres at {mask_url(url)} does not answer ({exc.orig})") from None


def _line(value: dict[str, Any]) -> str:
    """One JSON line: the output is JSON lines, for a script or ``jq`` to read."""
    return json.dumps(value, sort_keys=True, default=str)


def _check_url(url: str) -> str:
    if not url.startswith(("postgresql://", "postgres://")):
        raise Usage("--from must be a postgresql:// URL")
    return url


@legacy_app.command("import")
def legacy_import(
    source: LegacyUrl,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what it would write, and write nothing (all rolled back)")
    ] = False,
    tables: Annotated[
        list[str] | None, typer.Option("--table", metavar="TABLE", help="only these legacy tables (repeatable)")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000, help="rows per batch")] = 5000,
    timezone: Annotated[
        str,
        typer.Option(
            "--timezone",
            envvar="BEAT_LEGACY_TIMEZONE",
            metavar="ZONE",
            help="the legacy server's time zone, in which its naive timestamps were written",
        ),
    ] = "UTC",
    restart: Annotated[
        bool, typer.Option("--restart", help="start from the first row even if an earlier run was interrupted")
    ] = False,
) -> int:
    """Import a legacy database: credentials, accounts, posts, insights, YouTube, assets, orders, requests.

    Safe to run again: it resumes an interrupted run, and a finished one is re-read without changing
    anything that is already there."""
    from sinks.legacy_import import TABLE_NAMES

    _check_url(source)
    unknown = sorted(set(tables or ()) - set(TABLE_NAMES))
    if unknown:
        raise Usage(f"unknown table {', '.join(unknown)}; the tables are {', '.join(TABLE_NAMES)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Usage(f"--timezone {timezone!r} is not a time zone name (e.g. UTC, Asia/Kolkata)") from None
    settings = command_settings()
    beat_url = _beat_database(settings)
    _migrated(beat_url)
    reports = run_against_services(
        settings, _import(source, beat_url, tables or list(TABLE_NAMES), batch_size, timezone, dry_run, restart)
    )
    for report in reports:
        print(_line({**report.summary(), **({"dry_run": True} if dry_run else {})}))
    return 0


async def _import(
    source: str, beat_url: str, tables: list[str], batch_size: int, timezone: str, dry_run: bool, restart: bool
) -> list[Any]:
    import asyncpg

    from sinks.legacy_import import ImportRun, legacy_connection, origin_of

    legacy = await legacy_connection(source, timezone)
    try:
        beat = await asyncpg.connect(beat_url)
        try:
            run = ImportRun(legacy, beat, origin_of(source), tracked, batch_size=batch_size, dry_run=dry_run)
            return await run.run(tables, restart=restart)
        finally:
            await beat.close()
    finally:
        await legacy.close()


def _shown(record: Any, **extra: Any) -> dict[str, Any]:
    from providers.credentials import masked

    shown = record.model_dump(exclude={"credentials"})
    shown["idempotency_key"] = record.key()
    shown["secrets"] = masked(record.credentials)
    return {**shown, **extra}


@legacy_app.command("export-credentials")
def export_credentials(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="the JSON-lines file to write (mode 0600)")],
    source: Annotated[
        str | None,
        typer.Option("--from", metavar="URL", help="a legacy database to read (default: Beat's own)"),
    ] = None,
) -> int:
    """Write every credential, secrets included, to FILE as JSON lines; print them masked."""
    import asyncpg

    from sinks.credential_moves import export_credentials as read_all

    settings = command_settings()
    url = _check_url(source) if source else _beat_database(settings)

    async def read() -> tuple[list[Any], int]:
        conn = await asyncpg.connect(url)
        try:
            return await read_all(conn)
        finally:
            await conn.close()

    records, unusable = run_against_services(settings, read())
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise Failure(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w") as out:
        for record in records:
            out.write(record.model_dump_json() + "\n")
    for record in records:
        print(_line(_shown(record)))
    if unusable:
        complain("beat legacy export-credentials", f"{unusable} credentials without secrets or a source left out")
    return 0


@legacy_app.command("import-credentials")
def import_credentials(
    path: Annotated[
        Path, typer.Argument(metavar="FILE", help="JSON lines from `beat legacy export-credentials`; - for stdin")
    ],
) -> int:
    """Add or update the credentials of FILE (the newer wins); print each, masked, and whether it changed."""
    from pydantic import ValidationError

    from sinks.credential_moves import CredentialRecord

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise Usage(f"cannot read {path}: {exc.strerror}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        # The messages never quote the line: it holds secrets.
        try:
            records.append(CredentialRecord.model_validate(json.loads(line)))
        except ValueError as exc:
            detail = (
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
                if isinstance(exc, ValidationError)
                else "not JSON"
            )
            raise Usage(f"{path} line {number}: {detail}") from None
    settings = command_settings()
    beat_url = _beat_database(settings)
    _migrated(beat_url)
    changed = set(run_against_services(settings, _write(beat_url, records)))
    for record in records:
        print(_line(_shown(record, changed=record.key() in changed)))
    return 0


async def _write(url: str, records: list[Any]) -> list[str]:
    import asyncpg

    from sinks.credential_moves import upsert_credentials

    conn = await asyncpg.connect(url)
    try:
        return await upsert_credentials(conn, records)
    finally:
        await conn.close()
