"""``beat dlq list|redrive`` and ``beat retry``: dead letters and failed requests, listed and re-driven."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer

from app.cli_support import command_settings, connected, run_against_services
from app.progress import waiting
from core.settings import Settings

T = TypeVar("T")

dlq_app = typer.Typer(help="Dead letters: list them, re-drive them.")


def _moment(text: str) -> datetime:
    """``--since``/``--until``: an ISO-8601 time (UTC unless it says otherwise) or an age such as 90s, 30m, 2h, 7d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected an ISO-8601 time or an age like 30m, 2h, 7d: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


FlowFilter = Annotated[str | None, typer.Option("--flow", metavar="FLOW", help="only those of this flow")]
ErrorFilter = Annotated[
    str | None, typer.Option("--error", metavar="TYPE", help="only those with this error class, e.g. ProfileMissing")
]
SourceFilter = Annotated[
    str | None, typer.Option("--source", metavar="SOURCE", help="only those that involved this source")
]
SinceFilter = Annotated[
    datetime | None,
    typer.Option(
        "--since", parser=_moment, metavar="WHEN", help="failed at or after: ISO-8601 or an age (30m, 2h, 7d)"
    ),
]
UntilFilter = Annotated[
    datetime | None,
    typer.Option("--until", parser=_moment, metavar="WHEN", help="failed before: ISO-8601 or an age (30m, 2h, 7d)"),
]
IdFilter = Annotated[str | None, typer.Option("--id", metavar="REQUEST_ID", help="only those of this request")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="say what would be done; change nothing")]


def _cut(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _letter_line(row: Any) -> str:
    redriven = (
        f"redriven {row['redriven_at']:%Y-%m-%d %H:%M:%S} as {row['redriven_as'] or '?'}"
        if row["redriven_at"]
        else "not redriven" + (" (truncated: cannot be)" if row["truncated"] else "")
    )
    return (
        f"{row['last_failure_at']:%Y-%m-%d %H:%M:%S}  {row['flow'] or '-'}  {row['error_type']}  "
        f"{_cut(row['error_message'], 60)!r}  request {row['request_id'] or '-'}  "
        f"{row['original_topic']}[{row['original_partition']}]@{row['original_offset']}  {redriven}"
    )


async def _with_services(settings: Settings, work: Callable[[Any, Any], Coroutine[Any, Any, T]], *, produce: bool) -> T:
    """Run ``work(pool, producer)``; the producer is None when ``produce`` is false (a dry run, a listing)."""
    import asyncpg

    from core.kafka import start_producer

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        producer = await start_producer(settings) if produce else None
        try:
            return await work(pool, producer)
        finally:
            if producer is not None:
                await producer.stop()
    finally:
        await pool.close()


def _report(outcomes: list[Any], dry_run: bool) -> int:
    verb = "would re-drive" if dry_run else "re-driven"
    for outcome in outcomes:
        print(f"{verb if outcome.done else 'skipped'}: {outcome.subject}: {outcome.detail}")
    done = sum(1 for outcome in outcomes if outcome.done)
    print(f"{done} {verb}, {len(outcomes) - done} skipped" + (" (dry run: nothing changed)" if dry_run else ""))
    return 0


@dlq_app.command("list")
def dlq_list(
    flow: FlowFilter = None,
    error: ErrorFilter = None,
    source: SourceFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    request_id: IdFilter = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="at most this many")] = 100,
) -> int:
    """Dead letters, newest first, one line each."""
    from core.redrive import Filters, list_letters

    settings = connected(command_settings())
    filters = Filters(flow=flow, error_type=error, source=source, since=since, until=until, request_id=request_id)
    rows = run_against_services(
        settings, _with_services(settings, lambda pool, _: list_letters(pool, filters, limit), produce=False)
    )
    for row in rows:
        print(_letter_line(row))
    return 0


@dlq_app.command("redrive")
def dlq_redrive(
    flow: FlowFilter = None,
    error: ErrorFilter = None,
    source: SourceFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    request_id: IdFilter = None,
    dry_run: DryRun = False,
) -> int:
    """Re-drive dead letters (each at most once): re-open their DEAD_LETTERED request, or produce their
    original again."""
    from core.redrive import Filters, redrive_letters

    settings = connected(command_settings())
    filters = Filters(flow=flow, error_type=error, source=source, since=since, until=until, request_id=request_id)
    with waiting("re-driving dead letters…"):
        outcomes = run_against_services(
            settings,
            _with_services(
                settings, lambda pool, producer: redrive_letters(pool, producer, settings, filters), produce=not dry_run
            ),
        )
    return _report(outcomes, dry_run)


def retry(
    flow: FlowFilter = None,
    error: ErrorFilter = None,
    source: SourceFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    request_id: IdFilter = None,
    dry_run: DryRun = False,
) -> int:
    """Re-open FAILED requests as their next attempt (e.g. after an outage)."""
    from core.redrive import Filters, retry_failed

    settings = connected(command_settings())
    filters = Filters(flow=flow, error_type=error, source=source, since=since, until=until, request_id=request_id)
    with waiting("re-opening failed requests…"):
        outcomes = run_against_services(
            settings,
            _with_services(
                settings, lambda pool, producer: retry_failed(pool, producer, settings, filters), produce=not dry_run
            ),
        )
    return _report(outcomes, dry_run)
