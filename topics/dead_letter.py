"""Building a dead-letter record from the original Kafka record, whatever stage rejected it.

A dead letter must reach the broker whatever the original was, or the original's offset can
never be committed: so it always fits the message size limit (a too-large original is cut,
keeping its size and SHA-256), and every text in it is cleaned and bounded.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from topics.limits import clean_text
from topics.models import DeadLetter, ErrorInfo, ScrapeRequest

# An error's type and message end in status columns and logs: enough to explain, never a megabyte.
MAX_ERROR_TYPE = 100
MAX_ERROR_MESSAGE = 1000
# What a dead letter keeps of the original's key and headers; real ones are far smaller.
MAX_KEY_BYTES = 1024
MAX_HEADERS = 16
MAX_HEADER_NAME = 64
MAX_HEADER_VALUE = 256
MAX_SOURCE = 256
# What Kafka adds around a record's key and value (batch header, varints), with room to spare:
# a producer's max_request_size counts it too.
RECORD_FRAMING = 512


class KafkaRecord(Protocol):
    """What an aiokafka ConsumerRecord and a faust Message both carry."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> float | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Iterable[tuple[str, bytes | str]] | None: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    timestamp: float | None
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @classmethod
    def from_kafka(cls, record: KafkaRecord) -> RawRecord:
        """From an aiokafka ConsumerRecord or a faust Message (same attribute names)."""
        headers: dict[str, str] = {}
        for name, value in record.headers or ():
            headers[str(name)] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        return cls(record.topic, record.partition, record.offset, record.timestamp, record.key, record.value, headers)


def bounded_text(text: str, limit: int) -> str:
    """``text`` cleaned of what Postgres and UTF-8 refuse, cut to ``limit`` characters."""
    text = clean_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_info(error_type: str, message: str) -> ErrorInfo:
    """An error any topic and the status table can hold, however hostile the text it quotes."""
    return ErrorInfo(type=bounded_text(error_type, MAX_ERROR_TYPE), message=bounded_text(message, MAX_ERROR_MESSAGE))


def bounded_key(key: bytes | None) -> bytes | None:
    """The original's key as far as a dead letter carries it; also the dead letter's own record key."""
    return key[:MAX_KEY_BYTES] if key is not None else None


def record_size(key: bytes | None, value: bytes) -> int:
    """A record's size as a producer's limit counts it (at most)."""
    return len(key or b"") + len(value) + RECORD_FRAMING


def dead_letter(
    record: RawRecord,
    error: ErrorInfo,
    *,
    max_bytes: int,
    flow: str | None = None,
    request: ScrapeRequest | None = None,
    source: str | None = None,
) -> DeadLetter:
    """The dead letter of ``record``: produced with ``bounded_key(record.key)`` as its key, the record
    is at most ``max_bytes`` (``record_size``), for any ``max_bytes`` of at least 4 KiB."""
    value = record.value or b""
    key = bounded_key(record.key)
    budget = max_bytes - record_size(key, b"")
    letter = DeadLetter(
        original_topic=record.topic,
        original_partition=record.partition,
        original_offset=record.offset,
        original_key=_b64(key) if key is not None else None,
        original_value="",
        original_size=len(value),
        original_sha256=hashlib.sha256(value).hexdigest(),
        original_headers=_bounded_headers(record.headers),
        error=error_info(error.type, error.message),
        flow=flow,
        request_id=request.id if request else None,
        attempt=request.attempt if request else 1,
        source=bounded_text(source, MAX_SOURCE) if source else None,
    )
    room = budget - len(letter.to_bytes())
    if room < budget // 2:
        # Only a small limit with escaping-heavy text (control characters serialize to six
        # bytes each) gets here: keep what identifies the record and the kind of error.
        letter = letter.model_copy(
            update={
                "original_key": None,
                "original_headers": {},
                "request_id": None,
                "error": ErrorInfo(type=letter.error.type[:40], message=letter.error.message[:200]),
            }
        )
        room = budget - len(letter.to_bytes())
    # base64 turns every 3 bytes into 4 characters.
    fits = max(room, 0) // 4 * 3
    if len(value) > fits:
        letter.original_value = _b64(value[:fits])
        letter.original_truncated = True
    else:
        letter.original_value = _b64(value)
    return letter


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _bounded_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        bounded_text(name, MAX_HEADER_NAME): bounded_text(value, MAX_HEADER_VALUE)
        for name, value in list(headers.items())[:MAX_HEADERS]
    }
