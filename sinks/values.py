"""Typed readers for event values on their way into columns.

Every reader returns None for a missing or empty value, so a row carries no blank
that could overwrite a stored value. A value that cannot be read (a caption where
a count belongs) raises ValueError or TypeError, and its record is dead-lettered.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from typing import Any


def as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def as_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def as_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def as_text(value: Any) -> str | None:
    """Text; a structured value (thumbnails, tags) is kept as its JSON, as the legacy columns held it."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def as_texts(value: Any) -> list[str] | None:
    if not value:
        return None
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [str(item) for item in value if item is not None] or None


def as_json(value: Any) -> Any:
    """A JSON value. Legacy events stringify some lists (GPT ``categories`` is ``"['a', 'b']"``); those are
    read back into lists, and any other string is kept as a JSON string."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError:
                try:
                    return ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    return value
    return value


def as_time(value: Any) -> datetime | None:
    """A timestamp from an epoch number (legacy ``taken_at_timestamp``), an ISO string or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise TypeError(f"not a timestamp: {value!r}")
