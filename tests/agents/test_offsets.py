"""The commit bookkeeping of agents/offsets.py, without a broker: what may be committed, given what is in flight."""

from __future__ import annotations

import pytest
from faust.types import TP, Message

from agents.faust_app import create_app
from agents.offsets import SafeOffsetConsumer
from core.settings import load_settings

TOPIC = "beat.scrape.refresh_profile_basic"


@pytest.fixture
def consumer(tmp_path):
    app = create_app(load_settings(kafka_url="127.0.0.1:9", data_dir=str(tmp_path)), "worker")
    consumer = app.consumer
    assert isinstance(consumer, SafeOffsetConsumer)
    # No broker here: pretend partition 0 is assigned, subscribed with acks, and flowing.
    consumer.assignment = lambda: {TP(TOPIC, 0)}
    app.topics._acking_topics.add(TOPIC)
    app.flow_control.resume()
    return consumer


def _message(offset: int) -> Message:
    return Message(TOPIC, 0, offset, 0.0, 0, {}, None, b"{}", None, generation_id=0)


def _deliver(consumer, offsets) -> dict[int, Message]:
    messages = {}
    for offset in offsets:
        message = messages[offset] = _message(offset)
        consumer._unacked_messages.add(message)
    return messages


def test_a_single_message_in_flight_at_the_head_holds_the_commit(consumer):
    # faust-streaming #606: with 0 in flight and 1..4 done, faust committed 5.
    tp = TP(TOPIC, 0)
    messages = _deliver(consumer, range(5))
    for offset in (1, 2, 3, 4):
        assert consumer.ack(messages[offset])
    assert consumer._new_offset(tp) is None
    assert consumer.ack(messages[0])
    assert consumer._new_offset(tp) == 5


def test_the_commit_stops_below_the_lowest_offset_in_flight(consumer):
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 10
    messages = _deliver(consumer, range(10, 16))
    for offset in (10, 11, 13, 14, 15):
        consumer.ack(messages[offset])
    assert consumer._new_offset(tp) == 12
    consumer._committed_offset[tp] = 12  # as faust records a commit
    consumer.ack(messages[12])
    assert consumer._new_offset(tp) == 16


def test_acks_from_an_old_generation_are_not_recorded(consumer):
    tp = TP(TOPIC, 0)
    stale = _message(3)
    consumer.app.consumer_generation_id = 1
    assert consumer.ack(stale) is False
    assert stale.acked  # faust stops waiting for it ...
    assert consumer._new_offset(tp) is None  # ... but its offset is read again
