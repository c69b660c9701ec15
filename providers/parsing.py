"""Reading provider JSON whose types drift: shared by every provider's pure parsers.

Instagram and YouTube answers carry ids as numbers or strings and counts as numbers
or numeric strings. These readers emit ids as strings and counts as ints, keep a
missing value missing (None) rather than guessing a zero, and turn a value of the
wrong kind into ``BadResponse`` naming the field and the source.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx

from providers.errors import AuthExpired, BadResponse, Forbidden, ProviderError


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

    def count(self, value: Any, field: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise self._bad(field, "a count", value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace(",", ""))
            except ValueError:
                pass
        raise self._bad(field, "a count", value)

    def number(self, value: Any, field: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise self._bad(field, "a number", value)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise self._bad(field, "a number", value)

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
        return epoch, (datetime.fromtimestamp(epoch, timezone.utc) if epoch is not None else None)

    def require_object(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise BadResponse(f"expected a JSON object, got {type(payload).__name__}", source=self.source)
        return payload


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
        raise BadResponse(f"{what} answered {status}: {provider_message(response.text)}", source=source)
    try:
        return Values(source).require_object(response.json())
    except ValueError as exc:
        raise BadResponse(f"{what} answered with a body that is not JSON", source=source) from exc
