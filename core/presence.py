"""Whether a request's record is still on the broker: the record at the partition and offset its producer was
given is read back.

The end of the partition is the high watermark of the fetch answer (Tansu's ListOffsets "latest" is wrong,
environment.md): at or below the offset, the record is not there. Below it, the record at the offset must
carry the request's id, because an in-memory broker that restarted hands out the same offsets again, to
other records. A partition or topic the broker does not have holds nothing: which it has is asked for
every topic at once, because a client's own metadata covers only the topics it uses, and asking for a
missing topic by name has Tansu create it. Any other answer is not a verdict: the check fails and
nothing is taken as lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import aiokafka.errors as Errors
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

# Kafka's read-uncommitted isolation: Beat's producers are not transactional.
_READ_UNCOMMITTED = 0
# How long the broker may hold a fetch at the partition's end. Not 0: Tansu answers a fetch that may not wait
# with no partitions at all, where the high watermark is needed.
_FETCH_WAIT_MS = 10


class Produced(NamedTuple):
    """A request and where its record was produced."""

    request_id: str
    topic: str
    partition: int
    offset: int


class Probe:
    """Reads records back through ``client`` (a started producer's or consumer's), one fetch per record; a fetch
    at a partition's end waits ``_FETCH_WAIT_MS`` for nothing."""

    def __init__(self, client: AIOKafkaClient, max_record_bytes: int) -> None:
        self._client = client
        self._max_bytes = max_record_bytes

    async def lost(self, produced: Sequence[Produced]) -> list[Produced]:
        """Those of ``produced`` whose record the broker no longer has."""
        by_partition: dict[TopicPartition, list[Produced]] = {}
        for item in produced:
            by_partition.setdefault(TopicPartition(item.topic, item.partition), []).append(item)
        if not by_partition:
            return []
        cluster = await self._client.fetch_all_metadata()
        lost: list[Produced] = []
        for tp, items in by_partition.items():
            end: int | None = None
            for item in sorted(items, key=lambda item: item.offset):
                if end is not None and item.offset >= end:
                    lost.append(item)  # past the end seen for a lower offset: no fetch needed
                    continue
                found, end = await self._read(cluster, tp, item.offset)
                if found != item.request_id:
                    lost.append(item)
        return lost

    async def _read(self, cluster: ClusterMetadata, tp: TopicPartition, offset: int) -> tuple[str | None, int | None]:
        """The request id of the record at ``offset`` (None when there is none, or it is not a request) and the
        partition's high watermark (None when the answer does not tell)."""
        node = cluster.leader_for_partition(tp)
        if node is None:
            return None, 0  # the broker has no such topic or partition
        if node == -1:
            raise Errors.LeaderNotAvailableError(f"{tp} has no leader")
        request = FetchRequest(
            _FETCH_WAIT_MS,
            1,
            self._max_bytes,
            _READ_UNCOMMITTED,
            [(tp.topic, [(tp.partition, offset, self._max_bytes)])],
        )
        response = await self._client.send(node, request)
        for _, partitions in response.topics:
            for _, error_code, highwater, *data in partitions:
                error = Errors.for_code(error_code)
                if error is Errors.UnknownTopicOrPartitionError:
                    return None, 0  # the topic or partition is gone, and every record with it
                if error is Errors.OffsetOutOfRangeError:
                    return None, None  # before the log's start (retention): later offsets may still be there
                if error is not Errors.NoError:
                    raise error(f"fetching {tp} at offset {offset}")
                return _request_at(MemoryRecords(data[-1]), offset), highwater
        raise Errors.KafkaError(f"the broker's fetch answer did not name {tp}")


def _request_at(records: MemoryRecords, offset: int) -> str | None:
    while records.has_next():
        batch = records.next_batch()
        if batch.is_control_batch:
            continue
        for record in batch:
            if record.offset == offset:
                return _request_id(record.value)
            if record.offset > offset:
                return None
    return None


def _request_id(value: bytes | None) -> str | None:
    try:
        body = json.loads(value or b"")
    except ValueError:
        return None
    request_id = body.get("id") if isinstance(body, dict) else None
    return request_id if isinstance(request_id, str) else None
