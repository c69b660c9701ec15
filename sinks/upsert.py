"""Null-safe, newer-wins upserts shared by the entity sinks.

Rules (contract §5): rows with the same key inside a batch are merged first under
the same rules; a null or empty value never overwrites a stored one; an older
``observed_at`` never overwrites a newer one. Table and column names come from
this code's own constants; values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg


def blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


@dataclass(frozen=True)
class UpsertTable:
    name: str
    key: str
    columns: tuple[str, ...]  # excluding the key and observed_at

    def sql(self) -> str:
        cols = (self.key, *self.columns, "observed_at")
        placeholders = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        updates = ",\n    ".join(f"{c} = COALESCE(EXCLUDED.{c}, t.{c})" for c in self.columns)
        return (
            f"INSERT INTO {self.name} AS t ({', '.join(cols)}) VALUES ({placeholders})\n"
            f"ON CONFLICT ({self.key}) DO UPDATE SET\n    {updates},\n"
            f"    observed_at = GREATEST(EXCLUDED.observed_at, t.observed_at),\n    updated_at = now()\n"
            f"WHERE t.observed_at IS NULL OR EXCLUDED.observed_at >= t.observed_at"
        )


def merge_rows(table: UpsertTable, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold rows with the same key, oldest first, so the newest non-blank value of each column wins."""
    merged: dict[Any, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["observed_at"]):
        current = merged.setdefault(row[table.key], {})
        for column, value in row.items():
            if not blank(value):
                current[column] = value
    return list(merged.values())


async def upsert(conn: asyncpg.Connection, table: UpsertTable, rows: Sequence[dict[str, Any]]) -> int:
    merged = merge_rows(table, rows)
    if not merged:
        return 0
    cols = (table.key, *table.columns, "observed_at")
    await conn.executemany(table.sql(), [tuple(row.get(c) for c in cols) for row in merged])
    return len(merged)
