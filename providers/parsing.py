"""Reading provider JSON whose types drift: shared by every provider's pure parsers.

Instagram and YouTube answers carry ids as numbers or strings and counts as numbers
or numeric strings. These readers emit ids as strings and counts as ints, keep a
missing value missing (None) rather than guessing a zero, and turn a value of the
wrong kind into ``BadResponse`` naming the field and the source. So does a value of
the right kind that the store cannot hold (``topics.limits``): a count outside int64,
a number that is not finite, an instant no datetime can hold. Such an answer fails
its request, rather than completing one whose row the sink would then refuse.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import httpx

from providers.drift import observe
from providers.errors import AuthExpired, BadResponse, Forbidden, InputRejected, ProviderError
from topics.limits import int_problem

# The longest wait a provider may impose on a credential. No provider's reset is further away than its
# day or month window; a larger value (or "inf") is a broken header, and an unbounded one would overflow
# the credential's ``disabled_till``.
MAX_WAIT_SECONDS = 31 * 24 * 3600.0


def at(value: Any, path: str) -> Any:
    """The value at a dotted path (list positions as numbers), or None where any step is absent."""
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


class Values:
    """Typed readers that name ``source`` in their errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _bad(self, field: str, what: str, value: Any) -> BadResponse:
        return BadResponse(f"{field} is not {what}: {value!r}", source=self.source)

    def id(self, value: Any, field: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise self._bad(field, "an id", value)
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, str) and value.strip():
            return value.strip()
        raise self._bad(field, "an id", value)

    def _unstorable(self, field: str, problem: str) -> BadResponse:
        return BadResponse(f"{field}: {problem}", source=self.source)

    def count(self, value: Any, field: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise self._bad(field, "a count", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self._unstorable(field, f"{value} is not a finite number")
        number: int | None = None
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = int(value.strip().replace(",", ""))
        if number is None:
            raise self._bad(field, "a count", value)
        problem = int_problem(number)
        if problem:
            raise self._unstorable(field, problem)
        return number

    def number(self, value: Any, field: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise self._bad(field, "a number", value)
        number: float | None = None
        try:
            if isinstance(value, (int, float)):
                number = float(value)
            elif isinstance(value, str):
                number = float(value.strip())
        except ValueError:
            pass
        except OverflowError:
            raise self._unstorable(field, "too large for a floating-point number") from None
        if number is None:
            raise self._bad(field, "a number", value)
        if not math.isfinite(number):
            # float() reads "NaN", "inf" and "Infinity"; no column holds them.
            raise self._unstorable(field, f"{value!r} is not a finite number")
        return number

    def flag(self, value: Any, field: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise self._bad(field, "a flag", value)

    def text(self, value: Any, field: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise self._bad(field, "text", value)

    def list(self, value: Any, field: str) -> list[Any] | None:
        if value is None or isinstance(value, list):
            return value
        raise self._bad(field, "a list", value)

    def timestamp(self, value: Any, field: str) -> tuple[int | None, datetime | None]:
        """An epoch in seconds, and the same instant as a UTC datetime."""
        epoch = self.count(value, field)
        if epoch is None:
            return None, None
        try:
            return epoch, datetime.fromtimestamp(epoch, UTC)
        except (OverflowError, OSError, ValueError):
            raise self._unstorable(field, f"{epoch} is not an instant between the years 1 and 9999") from None

    def utc(self, moment: datetime, field: str) -> tuple[int, datetime]:
        """An instant read from text (naive = UTC) as an epoch and a UTC datetime."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:00+01:00 is a valid text but lies before the first instant a datetime holds.
            raise self._unstorable(
                field, f"{moment.isoformat()} is not an instant between the years 1 and 9999"
            ) from None
        return int(moment.timestamp()), moment

    def require_object(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise BadResponse(f"expected a JSON object, got {type(payload).__name__}", source=self.source)
        return payload


def wait_seconds(value: float) -> float | None:
    """A provider's "come back in N seconds" as a usable wait: None when it is not a finite number,
    at most MAX_WAIT_SECONDS."""
    if not math.isfinite(value):
        return None
    return min(max(0.0, value), MAX_WAIT_SECONDS)


def provider_message(body: str) -> str:
    """The provider's own words for a refusal, short enough for an error message."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body[:200]
    message = decoded.get("message") if isinstance(decoded, dict) else None
    return message if isinstance(message, str) else body[:200]


def json_object(response: httpx.Response, source: str, missing: type[ProviderError], what: str) -> dict[str, Any]:
    """The JSON object of a 200 answer to ``what`` ("GET /path"); the typed error of any other.

    ``ProviderHttp`` already raised for 429 and 5xx.
    """
    status = response.status_code
    if status == 401:
        raise AuthExpired(f"{what} answered 401: {provider_message(response.text)}", source=source)
    if status == 403:
        raise Forbidden(f"{what} answered 403: {provider_message(response.text)}", source=source)
    if status == 404:
        raise missing(f"{what} answered 404: {provider_message(response.text)}", source=source)
    if status != 200:
        raise InputRejected(f"{what} answered {status}: {provider_message(response.text)}", source=source)
    try:
        payload = Values(source).require_object(response.json())
    except ValueError as exc:
        raise BadResponse(f"{what} answered with a body that is not JSON", source=source) from exc
    observe(source, payload)
    return payload
