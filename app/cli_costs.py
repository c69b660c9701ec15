"""``beat costs``: what the provider calls cost, per day and source, flow or credential (``provider_spend``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from app.cli_redrive import _moment
from app.cli_support import command_settings, connected, run_against_services
from core.settings import Settings

# The column each grouping reads; names are fixed here, never taken from the command line into SQL.
_COLUMNS = {"source": "source", "flow": "flow", "credential": "credential_id"}


class By(StrEnum):
    SOURCE = "source"
    FLOW = "flow"
    CREDENTIAL = "credential"


def spend_query(by: By) -> str:
    column = _COLUMNS[by.value]
    return f"""
        SELECT day, source, {column} AS name, sum(calls)::bigint AS calls, sum(cost) AS cost
        FROM provider_spend WHERE day >= $1
        GROUP BY day, source, {column} ORDER BY day, source, {column}
    """


async def _rows(settings: Settings, since: date, by: By) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        return list(await conn.fetch(spend_query(by), since))
    finally:
        await conn.close()


def costs(
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since",
            parser=_moment,
            metavar="WHEN",
            help="from this UTC day on: ISO-8601 or an age (2h, 7d); default today",
        ),
    ] = None,
    by: Annotated[By, typer.Option("--by", help="group each day's spend by source, flow or credential")] = By.SOURCE,
) -> int:
    """Provider calls and their cost per day (UTC) and source, flow or credential."""
    settings = connected(command_settings())
    first = (since or datetime.now(UTC)).astimezone(UTC).date()
    rows = run_against_services(settings, _rows(settings, first, by))
    if not rows:
        print(f"no provider calls counted since {first.isoformat()}")
        return 0
    label = "source" if by is By.SOURCE else f"source / {by.value}"
    names = [row["source"] if by is By.SOURCE else f"{row['source']} / {row['name'] or '-'}" for row in rows]
    width = max(len(label), *map(len, names))
    print(f"{'day':<10}  {label:<{width}}  {'calls':>9}  {'cost':>12}")
    for row, name in zip(rows, names, strict=True):
        print(f"{row['day']:%Y-%m-%d}  {name:<{width}}  {row['calls']:>9}  {row['cost']:>12.6g}")
    print(f"{'total':<10}  {'':<{width}}  {sum(r['calls'] for r in rows):>9}  {sum(r['cost'] for r in rows):>12.6g}")
    return 0
