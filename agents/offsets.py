"""Safe offset tracking for faust-streaming's consumer.

faust-streaming 0.15.3 decides what to commit from the list of acked offsets per
partition, and two things let it commit past a message that was never processed:

* its contiguity check compares the first acked offset with the committed one
  using ``> 1`` and skips the check when the committed offset is 0 or unknown,
  so a single in-flight message at the head of a partition is jumped over
  (faust-streaming issue #606; the upstream fix is unmerged);
* during a rebalance, streams "skip" buffered messages and ack them, and late
  acks from the previous generation land in the new generation's bookkeeping.

This consumer only records acks that belong to the current generation, for a
partition still assigned, while flow control is active; and it never commits
beyond the lowest offset still being processed. Every other behaviour is
faust's own, except the fetch wait (``ShortFetchConsumerThread``). Unprocessed messages are therefore
redelivered (duplicates are expected and every write is idempotent) instead of being lost.

Two more guard a broker that loses its log (the embedded, in-memory broker restarting): a commit
sent as the broker went away is never answered, and faust's revocation waits for it forever, so a
commit gives up after ``COMMIT_TIMEOUT`` (its offsets are committed later or read again); and
``lost_log`` names partitions that now end before what this consumer already read, whose new
records it would otherwise never fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

log = logging.getLogger(__name__)

COMMIT_TIMEOUT = 15.0


class SafeOffsetConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ShortFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        try:
            return await asyncio.wait_for(super()._commit(offsets), COMMIT_TIMEOUT)
        except TimeoutError:
            log.warning("an offset commit got no answer within %gs; it is given up", COMMIT_TIMEOUT)
            return False

    def lost_log(self) -> list[tuple[TP, int, int]]:
        """(partition, its end, its read offset) of each assigned partition that ends before its read offset.

        faust's read offset is the last offset read, or after a seek the committed offset, which is the next
        one to read: a partition caught up after a takeover ends exactly there. Only an end below it is a lost
        log (a new log of exactly the last offset read is missed, rather than a live worker killed).
        """
        lost = []
        for tp in self.assignment():
            read = self._read_offset.get(tp)
            end = self.highwater(tp) if read is not None else None
            if read is not None and end is not None and end < read:
                lost.append((tp, end, read))
        return lost

    def ack(self, message: Message) -> bool:
        app = self.app
        if (
            message.generation_id != app.consumer_generation_id
            or not app.flow_control.is_active()
            or message.tp not in self.assignment()
        ):
            # Marked acked so faust stops waiting for it, but not recorded:
            # its offset will be read again after the rebalance.
            message.acked = True
            return False
        return super().ack(message)

    def _lowest_in_flight(self, tp: TP) -> int | None:
        generation = self.app.consumer_generation_id
        offsets = [
            m.offset
            for m in list(self._unacked_messages)
            if m.tp == tp and not m.acked and m.generation_id == generation
        ]
        return min(offsets) if offsets else None

    def _fill_gaps(self, tp: TP, acked: list[int]) -> None:
        # Offsets that do not exist (compaction, transaction markers) count as acked.
        gaps = self._gap[tp]
        if not gaps or not acked:
            return
        top = max(acked)
        for interval in sorted(gaps.overlap(0, top), key=lambda i: i.begin):
            acked.extend(range(interval.begin, interval.end))
        gaps.chop(0, max(acked) + 1)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        self._fill_gaps(tp, acked)
        acked.sort()
        committed = self._committed_offset[tp]
        if committed is not None and acked[0] > committed:
            return None  # the message at the committed position is still in flight
        floor = self._lowest_in_flight(tp)
        run_end = acked[0]
        taken = 1
        while taken < len(acked) and acked[taken] <= run_end + 1:
            run_end = max(run_end, acked[taken])
            taken += 1
        if floor is not None and run_end >= floor:
            taken = sum(1 for offset in acked[:taken] if offset < floor)
            if taken == 0:
                return None
            run_end = acked[taken - 1]
        batch = acked[:taken]
        del acked[:taken]
        self._acked_index[tp].difference_update(batch)
        return run_end + 1


class ShortFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust hard-codes a 1.5 s fetch wait, and Tansu holds a fetch for about half of it even when
    records arrive meanwhile: most of a request's latency was spent there (bench/README.md)."""

    fetch_max_wait_ms = 50

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts; faust 0.15.3 offers no setting for it.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


def install(app) -> None:
    """Make ``app`` build its consumer from :class:`SafeOffsetConsumer`."""
    app.transport.Consumer = SafeOffsetConsumer
