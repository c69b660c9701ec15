"""Provider drift alarms: answers that lack a field the parser expects, or carry one it does not know.

A provider that renames a field rarely fails outright: the parser reads None where a count used to be,
and requests complete with holes. So each declared answer shape (``providers.answer_shapes.SHAPES``,
data: per source and fetch type, the fields every item must have and every field it may have) is checked
as the answer is decoded (``observe``, called by ``providers.parsing.json_object``, the Data API's
``answer_object`` and the Shopify clients' decoders), under the
fetch type the crawler is running (``calling``). Each finding counts in ``beat_parser_drift_total``
(labels: source, operation, kind; never the field's name, which comes from the answer) and is kept with
its field names in ``FINDINGS``, which the worker serves at ``/drift`` on its metrics port for
``beat sources``.

``ParseRate`` keeps each source's recent answers: one that did not parse (``BadResponse``) or lacked an
expected field is bad, and when the bad share of the last ``BEAT_DRIFT_WINDOW`` answers reaches
``BEAT_DRIFT_FAILURE_RATE`` the crawler opens the source's circuit (``providers.breaker``) at once, rather
than after the consecutive failures a changed shape may never produce.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.metrics import PARSER_DRIFT, child
from providers.answer_shapes import SHAPES, Shape
from topics.models import utcnow


@dataclass(slots=True)
class _Call:
    """What the crawler learns about one source call's answer."""

    operation: str
    drifted: bool = False


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("beat_provider_call", default=None)


@contextmanager
def calling(operation: str) -> Iterator[_Call]:
    """Answers decoded inside are checked as answers to ``operation``; the yielded note says whether one drifted."""
    note = _Call(operation)
    token = _CALL.set(note)
    try:
        yield note
    finally:
        _CALL.reset(token)


def answer_drifted() -> bool:
    """Whether an answer decoded in the current call lacked an expected field."""
    note = _CALL.get()
    return note is not None and note.drifted


def current_operation() -> str:
    """The fetch type being run, for metric labels; ``other`` outside the crawler (token refreshes, probes)."""
    note = _CALL.get()
    return note.operation if note is not None else "other"


@dataclass(slots=True)
class Finding:
    answers: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    last_at: datetime | None = None


class Findings:
    """This process's drift findings by (source, operation), with field names (kept out of metric labels)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # read by the metrics server's threads
        self._by_call: dict[tuple[str, str], Finding] = {}

    def record(self, source: str, operation: str, missing: set[str], unknown: set[str]) -> None:
        with self._lock:
            finding = self._by_call.setdefault((source, operation), Finding())
            finding.answers += 1
            finding.last_at = utcnow()
            for name, counts in ((missing, finding.missing), (unknown, finding.unknown)):
                for item in name:
                    counts[item] = counts.get(item, 0) + 1

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "source": source,
                    "operation": operation,
                    "answers": finding.answers,
                    "missing": dict(finding.missing),
                    "unknown": dict(finding.unknown),
                    "last_at": finding.last_at.isoformat() if finding.last_at else None,
                }
                for (source, operation), finding in sorted(self._by_call.items())
            ]

    def clear(self) -> None:
        with self._lock:
            self._by_call.clear()


FINDINGS = Findings()
# An unknown field name is kept only this long: it is the provider's text.
MAX_FIELD_NAME = 80


def check(shapes: tuple[Shape, ...], payload: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(expected fields some checked object lacks, fields some checked object has that its shape does not know)."""
    missing: set[str] = set()
    unknown: set[str] = set()
    for shape in shapes:
        for item in shape.objects(payload):
            if isinstance(item, dict):
                missing |= shape.expected - item.keys()
                unknown |= {str(name)[:MAX_FIELD_NAME] for name in item.keys() - shape.known}
    return missing, unknown


def observe(source: str, payload: dict[str, Any]) -> None:
    """Check a decoded answer against its declared shape, if it has one; count and keep what drifted."""
    note = _CALL.get()
    if note is None:
        return
    shapes = SHAPES.get((source, note.operation))
    if shapes is None:
        return
    missing, unknown = check(shapes, payload)
    if missing:
        child(PARSER_DRIFT, source, note.operation, "missing").inc()
        note.drifted = True
    if unknown:
        child(PARSER_DRIFT, source, note.operation, "unknown").inc()
    if missing or unknown:
        FINDINGS.record(source, note.operation, missing, unknown)


class ParseRate:
    """Each source's last ``window`` answers, good or bad; ``bad`` says when the bad share reaches ``rate``."""

    def __init__(self, rate: float, window: int) -> None:
        self.rate = rate
        self.window = window
        # Too few answers say nothing about a rate; half the window is enough to act on.
        self.min_answers = max(2, window // 2)
        self._recent: dict[str, deque[bool]] = {}

    def record(self, source: str, bad: bool) -> bool:
        """Count one answer; True when the source's bad share is now at or over the rate."""
        recent = self._recent.setdefault(source, deque(maxlen=self.window))
        recent.append(bad)
        return len(recent) >= self.min_answers and sum(recent) / len(recent) >= self.rate
