"""Building a dead-letter record from the original Kafka record, whatever stage rejected it."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from topics.models import DeadLetter, ErrorInfo, ScrapeRequest


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
    def from_kafka(cls, record) -> "RawRecord":
        """From an aiokafka ConsumerRecord or a faust Message (same attribute names)."""
        headers = {}
        for name, value in record.headers or ():
            headers[str(name)] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        return cls(record.topic, record.partition, record.offset, record.timestamp, record.key, record.value, headers)


def dead_letter(record: RawRecord, error: ErrorInfo, *, flow: str | None = None,
                request: ScrapeRequest | None = None, source: str | None = None) -> DeadLetter:
    return DeadLetter(
        original_topic=record.topic,
        original_partition=record.partition,
        original_offset=record.offset,
        original_key=base64.b64encode(record.key).decode() if record.key is not None else None,
        original_value=base64.b64encode(record.value or b"").decode(),
        original_headers=record.headers,
        error=error,
        flow=flow,
        request_id=request.id if request else None,
        attempt=request.attempt if request else 1,
        source=source,
    )
