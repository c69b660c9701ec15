"""The sink side of the dead letters: every record on ``beat.dead_letter`` into the ``dead_letter`` table.

The table is what ``beat dlq list`` and ``beat dlq redrive`` read (``core.redrive``). A letter
is stored once per failure (its original's topic, partition and offset, and the time of its last
failure), so a replayed topic inserts nothing. Anyone may produce to the topic, so a letter's
text is cleaned and its numbers clamped rather than refused: a letter Postgres cannot hold would
itself become a dead letter. Only a record that is not a dead letter at all is poison; its own
dead letter (naming ``beat.dead_letter`` as the original topic) is stored, and the chain ends there.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from topics.limits import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, clamp, clean_json, clean_text
from topics.models import DeadLetter

_COLUMNS = (
    "original_topic",
    "original_partition",
    "original_offset",
    "request_id",
    "flow",
    "error_type",
    "error_message",
    "source",
    "credential_id",
    "attempt",
    "first_failure_at",
    "last_failure_at",
    "record",
)
_TYPES = (
    "text",
    "int",
    "bigint",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int",
    "timestamptz",
    "timestamptz",
    "jsonb",
)

_INSERT = f"""
INSERT INTO dead_letter ({", ".join(_COLUMNS)})
SELECT * FROM unnest({", ".join(f"${n}::{kind}[]" for n, kind in enumerate(_TYPES, 1))})
ON CONFLICT (original_topic, original_partition, original_offset, last_failure_at) DO NOTHING
"""


def _text(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def decode_letter(value: bytes | None) -> dict[str, Any]:
    """The table row of a dead-letter record; pydantic's ValidationError (a ValueError) when it is none."""
    letter = DeadLetter.model_validate_json(value or b"")
    return {
        "original_topic": clean_text(letter.original_topic),
        "original_partition": clamp(letter.original_partition, INT32_MIN, INT32_MAX),
        "original_offset": clamp(letter.original_offset, INT64_MIN, INT64_MAX),
        "request_id": _text(letter.request_id),
        "flow": _text(letter.flow),
        "error_type": clean_text(letter.error.type),
        "error_message": clean_text(letter.error.message),
        "source": _text(letter.source),
        "credential_id": _text(letter.credential_id),
        "attempt": clamp(letter.attempt, INT32_MIN, INT32_MAX),
        "first_failure_at": letter.first_failure_at,
        "last_failure_at": letter.last_failure_at,
        # The whole letter: its original bytes are what a re-drive without a request id produces again.
        "record": json.dumps(clean_json(letter.model_dump(mode="json"))),
    }


async def write_letters(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> list[asyncpg.Record]:
    """One statement for a batch's letters; nothing is returned (the writer's ``Write`` shape)."""
    await conn.execute(_INSERT, *([row[column] for row in rows] for column in _COLUMNS))
    return []
