"""What Beat's store can hold: the bounds every edge checks before it accepts a value.

Postgres refuses a NUL character in text and jsonb, an integer outside its column's
type, and JSON numbers that are not finite; a lone UTF-16 surrogate cannot be encoded
as UTF-8 at all. A value that breaks one of these is refused where it enters Beat (the
facade, the worker's decoding, a provider's parser), with a reason naming the field,
so that nothing downstream (the producer, the status sink) meets it by surprise.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

from topics.errors import BeatError, Decision

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Request params live in jsonb, which holds any number; they are bounded to 64 bits, signed or
# unsigned, because the legacy asset requests carry unsigned 64-bit hashes and nothing larger is an id.
PARAM_INT_MIN, PARAM_INT_MAX = INT64_MIN, 2**64 - 1

# Identifiers, handles, flows, account ids: far above any real one, far below a megabyte.
MAX_TEXT = 1024
# Room a request's statuses need beside the params they repeat: an error, the sources, a flow's result.
STATUS_ROOM = 16 * 1024
# JSON deeper than this is nobody's request; the limit keeps every walker clear of recursion limits.
MAX_DEPTH = 64


def status_budget(max_bytes: int) -> int:
    """The largest a request's plain status record may be, so that every later status still fits."""
    return max_bytes - min(STATUS_ROOM, max_bytes // 4)


# In a Python string every surrogate is a lone one: JSON decoding joins the pairs into one character.
_SURROGATE = re.compile("[\ud800-\udfff]")


class Unstorable(BeatError, ValueError):
    """A value the store cannot hold; the message names the field."""

    decision = Decision.POISON


def text_problem(value: str, *, max_length: int | None = MAX_TEXT) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if max_length is not None and len(value) > max_length:
        return f"longer than {max_length} characters ({len(value)})"
    if "\x00" in value:
        return "contains a NUL character"
    if _has_surrogate(value):
        return "contains a lone UTF-16 surrogate"
    return None


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def int_problem(value: int, low: int = INT64_MIN, high: int = INT64_MAX) -> str | None:
    if value < low or value > high:
        return f"{value} is outside [{low}, {high}]"
    return None


def json_problem(
    value: Any,
    path: str = "value",
    *,
    max_text: int | None = None,
    int_range: tuple[int, int] = (INT64_MIN, INT64_MAX),
    depth: int = 0,
) -> str | None:
    """The first reason a JSON-like value cannot be stored as jsonb, as ``path: reason``, or None.

    Integers are bounded to int64 by default because the numbers of events end in bigint
    columns; text inside JSON is bounded only by ``max_text`` (the whole record is bounded
    by the message size). Only containers count towards the depth.
    """
    if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
        return f"{path}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        problem = text_problem(value, max_length=max_text)
    elif isinstance(value, bool) or value is None:
        problem = None
    elif isinstance(value, int):
        problem = int_problem(value, *int_range)
    elif isinstance(value, float):
        problem = None if math.isfinite(value) else f"{value} is not a finite number"
    elif isinstance(value, dict):
        for key, item in value.items():
            key_problem = text_problem(str(key), max_length=max_text)
            if key_problem:
                return f"{path}: key {str(key)[:40].encode('utf-8', 'replace').decode()!r} {key_problem}"
            found = json_problem(item, f"{path}.{key}", max_text=max_text, int_range=int_range, depth=depth + 1)
            if found:
                return found
        return None
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = json_problem(item, f"{path}[{index}]", max_text=max_text, int_range=int_range, depth=depth + 1)
            if found:
                return found
        return None
    else:
        problem = f"a {type(value).__name__} is not JSON"
    return f"{path}: {problem}" if problem else None


_Json = TypeVar("_Json")


def check_json(value: _Json, path: str, **kwargs: Any) -> _Json:
    problem = json_problem(value, path, **kwargs)
    if problem:
        raise Unstorable(problem)
    return value


def clean_text(value: str) -> str:
    """``value`` with what Postgres refuses replaced: NUL removed, lone surrogates as U+FFFD."""
    value = value.replace("\x00", "")
    if _has_surrogate(value):
        value = _SURROGATE.sub("\ufffd", value)
    return value


def clean_texts(value: Any) -> Any:
    """A copy of a JSON-like value with only its text cleaned (``clean_text``), keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_texts(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_texts(item) for item in value]
    return value


def clean_json(value: Any, depth: int = 0) -> Any:
    """A copy of a JSON-like value that jsonb can hold: text cleaned, out-of-range numbers as text,
    non-finite numbers as null, containers nested too deep summarized."""
    if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
        return "(nested too deep)"
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if int_problem(value) is None else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(item, depth + 1) for item in value]
    return clean_text(str(value))


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
