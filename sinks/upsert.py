"""Batched, null-safe, newer-wins upserts: one ``INSERT … ON CONFLICT`` per table per batch.

Rules (contract §5), applied by the statement's ``SET`` to a stored row and, for
keys a batch holds several rows of, by ``merge_rows`` in the same way first:

* ``LATEST``: a null or empty value never overwrites a stored one; an observation
  older than the stored row never overwrites its values, it only fills a column
  that is still empty.
* ``ONCE``: write-once; the first value stored stays.
* ``MAX``: a high-water mark (``refreshed_at``).
* ``MERGE``: a jsonb object merged key by key under ``LATEST``.

A row is only rewritten when one of its columns actually changes, so replaying a
topic rewrites nothing (no dead tuples, ``updated_at`` untouched) and ``RETURNING``
yields exactly the rows a batch changed. Rows travel as one array per column
through ``unnest``; table and column names come from this package's constants,
values are always parameters.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg


class Rule(enum.Enum):
    LATEST = "latest"
    ONCE = "once"
    MAX = "max"
    MERGE = "merge"


# SQL type of a column -> element type of the array parameter that carries it. A text[] column travels as
# jsonb: unnest would flatten a two-dimensional text array into single strings.
_PARAM_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "double precision": "float8",
    "boolean": "boolean",
    "timestamptz": "timestamptz",
    "date": "date",
    "jsonb": "jsonb",
    "text[]": "jsonb",
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    rule: Rule = Rule.LATEST

    def __post_init__(self) -> None:
        if self.type not in _PARAM_TYPES:
            raise ValueError(f"column {self.name}: unsupported type {self.type!r}")
        if self.rule is Rule.MERGE and self.type != "jsonb":
            raise ValueError(f"column {self.name}: MERGE needs jsonb")


def columns(sql_type: str, *names: str, rule: Rule = Rule.LATEST) -> tuple[Column, ...]:
    return tuple(Column(name, sql_type, rule) for name in names)


def q(identifier: str) -> str:
    """A quoted identifier (``order`` is a keyword); identifiers only ever come from this package."""
    return '"' + identifier.replace('"', '""') + '"'


def blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


@dataclass(frozen=True)
class UpsertTable:
    """A table written by key, and how each of its columns is merged.

    ``watch`` columns are returned with their value from before the statement
    (``old_<name>``) so a caller can see what a batch changed; ``returning`` are
    returned as stored after it.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    observed: str = "observed_at"
    returning: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()
    _types: dict[str, str] = field(init=False, repr=False, compare=False)
    _rules: dict[str, Rule] = field(init=False, repr=False, compare=False)
    _special: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_types", {c.name: c.type for c in self.columns})
        for name in (*self.key, self.observed):
            if name not in self._types:
                raise ValueError(f"{self.name}: {name} is not a column")
        merged = {c.name: c.rule for c in self.columns if c.name not in self.key and c.name != self.observed}
        object.__setattr__(self, "_rules", merged)
        object.__setattr__(self, "_special", frozenset(n for n, rule in merged.items() if rule is not Rule.LATEST))

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def key_of(self, row: dict[str, Any]) -> Any:
        """The row's key: its value for a one-column key, else the tuple of values."""
        if len(self.key) == 1:
            return row[self.key[0]]
        return tuple(row[k] for k in self.key)

    def key_columns(self, keys: Sequence[Any]) -> list[list[Any]]:
        """Keys as one list per key column."""
        if len(self.key) == 1:
            return [list(keys)]
        return [list(column) for column in zip(*keys, strict=True)]

    def statement(self, present: tuple[Column, ...]) -> str:
        """The upsert of one batch whose rows carry values in ``present`` (the key and observed column always):
        a column no row has a value for would only be kept as stored, so it is left out of the statement."""
        return _statement(self, present)

    def select_sql(self, names: tuple[str, ...]) -> str:
        """The stored values of ``names`` (and the key and observed column) for an array of keys."""
        conflict = ", ".join(q(k) for k in self.key)
        params = ", ".join(f"${i}::{_PARAM_TYPES[self._types[k]]}[]" for i, k in enumerate(self.key, 1))
        selected = dict.fromkeys((*self.key, self.observed, *names))
        return (
            f"SELECT {', '.join(q(name) for name in selected)} FROM {q(self.name)} "
            f"WHERE ({conflict}) IN (SELECT {conflict} FROM unnest({params}) AS k({conflict}))"
        )

    def encode(self, rows: Sequence[dict[str, Any]]) -> tuple[tuple[Column, ...], list[list[Any]]]:
        """The columns some row has a value for, and one array per such column; JSON values as text."""
        named: set[str] = set()
        for row in rows:
            named.update(row)
        present: list[Column] = []
        arrays: list[list[Any]] = []
        for column in self.columns:
            name = column.name
            if name not in named:
                continue
            values = [row.get(name) for row in rows]
            if column.type in ("jsonb", "text[]"):
                if column.rule is Rule.MERGE:
                    values = [_without_nulls(v) if isinstance(v, dict) else v for v in values]
                values = [None if blank(v) else json.dumps(v, default=str) for v in values]
            elif column.type == "text" and name not in self.key:
                values = [None if v == "" else v for v in values]
            present.append(column)
            arrays.append(values)
        return tuple(present), arrays


@functools.lru_cache(maxsize=256)
def _statement(table: UpsertTable, present: tuple[Column, ...]) -> str:
    observed = q(table.observed)
    newer = f"(t.{observed} IS NULL OR EXCLUDED.{observed} >= t.{observed})"

    def merged(column: Column) -> str:
        new, old = f"EXCLUDED.{q(column.name)}", f"t.{q(column.name)}"
        if column.name == table.observed or column.rule is Rule.MAX:
            return f"GREATEST({old}, {new})"
        if column.rule is Rule.ONCE:
            return f"COALESCE({old}, {new})"
        if column.rule is Rule.MERGE:
            return (
                f"NULLIF(CASE WHEN {newer} THEN COALESCE({old}, '{{}}') || COALESCE({new}, '{{}}') "
                f"ELSE COALESCE({new}, '{{}}') || COALESCE({old}, '{{}}') END, '{{}}'::jsonb)"
            )
        return f"CASE WHEN {newer} THEN COALESCE({new}, {old}) ELSE COALESCE({old}, {new}) END"

    names = ", ".join(q(c.name) for c in present)
    params = ", ".join(f"${i}::{_PARAM_TYPES[c.type]}[]" for i, c in enumerate(present, 1))
    exprs = ", ".join(
        f"CASE WHEN u.{q(c.name)} IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(u.{q(c.name)})) END"
        if c.type == "text[]"
        else f"u.{q(c.name)}"
        for c in present
    )
    updated = [c for c in present if c.name not in table.key]
    conflict = ", ".join(q(k) for k in table.key)
    insert = (
        f"INSERT INTO {q(table.name)} AS t ({names})\n"
        f"SELECT {exprs} FROM unnest({params}) AS u({names})\n"
        f"ON CONFLICT ({conflict}) DO UPDATE SET\n    "
        + ",\n    ".join(f"{q(c.name)} = {merged(c)}" for c in updated)
        + ",\n    updated_at = now()\n"
        # Unchanged rows are not rewritten: a replay leaves no dead tuples and RETURNING only the changed rows.
        f"WHERE ROW({', '.join(f't.{q(c.name)}' for c in updated)}) "
        f"IS DISTINCT FROM ROW({', '.join(merged(c) for c in updated)})"
    )
    if not table.watch:
        if not table.returning:
            return insert
        return f"{insert}\nRETURNING {', '.join(f't.{q(c)}' for c in table.returning)}"
    # Every part of one statement sees the same snapshot, so ``old`` reads the rows as they were before the
    # insert changed them.
    index = {c.name: i for i, c in enumerate(present, 1)}
    keys = ", ".join(f"${index[k]}::{_PARAM_TYPES[table._types[k]]}[]" for k in table.key)
    returned = ", ".join(f"t.{q(c)}" for c in dict.fromkeys((*table.key, *table.returning, *table.watch)))
    old_columns = ", ".join(q(c) for c in dict.fromkeys((*table.key, *table.watch)))
    previous = ", ".join(f"o.{q(c)} AS {q('old_' + c)}" for c in table.watch)
    joined = " AND ".join(f"o.{q(k)} = w.{q(k)}" for k in table.key)
    return (
        f"WITH old AS (SELECT {old_columns} FROM {q(table.name)} JOIN unnest({keys}) AS k({conflict}) "
        f"USING ({conflict})),\n"
        f"written AS (\n{insert}\nRETURNING {returned})\n"
        f"SELECT w.*, {previous} FROM written w LEFT JOIN old o ON {joined}"
    )


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def _apply(table: UpsertTable, state: dict[str, Any], row: dict[str, Any], changed: set[str]) -> None:
    """``row`` applied to ``state`` exactly as the statement's SET applies one row to a stored one; the columns
    it sets are added to ``changed``."""
    observed = table.observed
    stored_at = state.get(observed)
    newer = stored_at is None or row[observed] >= stored_at
    rules = table._rules
    if newer and table._special.isdisjoint(row):
        # The common case, spelled out for speed: a newer row of plain columns; its values replace the state's.
        for name, value in row.items():
            if not (value is None or value == "" or value == [] or value == {}):
                state[name] = value
                changed.add(name)
        return
    for name, value in row.items():
        rule = rules.get(name)
        if rule is None or blank(value):
            continue
        current = state.get(name)
        if rule is Rule.MERGE:
            value = _without_nulls(value)
            if not value:
                continue
            state[name] = {**(current or {}), **value} if newer else {**value, **(current or {})}
        elif current is None or (rule is Rule.MAX and value > current) or (rule is Rule.LATEST and newer):
            state[name] = value
        else:
            continue
        changed.add(name)
    state[observed] = row[observed] if stored_at is None else max(stored_at, row[observed])


def _by_key(table: UpsertTable, rows: Iterable[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    key_of = table.key_of
    for row in rows:
        key = key_of(row)
        group = groups.get(key)
        if group is None:
            groups[key] = [row]
        else:
            group.append(row)
    return groups


def merge_rows(
    table: UpsertTable, rows: Iterable[dict[str, Any]], stored: dict[Any, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One row per key: the key's rows applied one by one, in arrival order, to what is stored (``stored``,
    by key), under the statement's own rules. The merged row then moves the stored one to the same state
    the rows would have reached in separate statements, so batch boundaries never change the outcome."""
    return _merge(table, _by_key(table, rows), stored or {})


def _merge(
    table: UpsertTable, groups: dict[Any, list[dict[str, Any]]], stored: dict[Any, dict[str, Any]]
) -> list[dict[str, Any]]:
    merged = []
    for key, group in groups.items():
        if len(group) == 1:
            merged.append(group[0])
            continue
        state = dict(stored.get(key) or {})
        changed: set[str] = set()
        for row in group:
            _apply(table, state, row, changed)
        # Only what the rows set, stamped with their newest time: the statement then re-applies the same rules
        # to the row as stored at that moment, so a write made since the read above is never reverted.
        row = {name: state[name] for name in changed}
        row.update(zip(table.key, key if len(table.key) > 1 else (key,), strict=True))
        row[table.observed] = max(r[table.observed] for r in group)
        merged.append(row)
    return merged


async def stored_rows(
    conn: asyncpg.Connection, table: UpsertTable, keys: Sequence[Any], names: Iterable[str] | None = None
) -> dict[Any, dict[str, Any]]:
    """The stored rows of ``keys`` (only the columns ``names``, when given), as Python values."""
    if not keys:
        return {}
    wanted = tuple(c.name for c in table.columns if names is None or c.name in names)
    records = await conn.fetch(table.select_sql(wanted), *table.key_columns(keys))
    json_columns = [c.name for c in table.columns if c.type == "jsonb" and c.name in wanted]
    rows = {}
    for record in records:
        row = dict(record)
        for name in json_columns:
            if row[name] is not None:
                row[name] = json.loads(row[name])
        rows[table.key_of(row)] = row
    return rows


async def upsert(conn: asyncpg.Connection, table: UpsertTable, rows: Sequence[dict[str, Any]]) -> list[asyncpg.Record]:
    """Merge ``rows`` and write them in one statement; returns the ``returning``/``watch`` columns of the rows
    that changed (nothing unless the table asks for them)."""
    groups = _by_key(table, rows)
    if not groups:
        return []
    # Only keys with several rows need what is stored, and only the columns those rows carry; a single row is
    # applied by the statement itself.
    multiple = [key for key, group in groups.items() if len(group) > 1]
    carried: set[str] = set()
    for key in multiple:
        for row in groups[key]:
            carried.update(row)
    stored = await stored_rows(conn, table, multiple, carried)
    present, arrays = table.encode(_merge(table, groups, stored))
    if table.returning or table.watch:
        return await conn.fetch(table.statement(present), *arrays)
    await conn.execute(table.statement(present), *arrays)
    return []
