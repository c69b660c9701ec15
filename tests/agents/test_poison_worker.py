"""The worker against hostile records on the real broker: it never exits, every bad record is
dead-lettered with its reason, the good ones complete and announce their events.

One worker (and sink) under a fresh prefix serves every test of this module. Outcomes are read
from the worker's own output topics (statuses, dead letters, events), not from what a sink made of them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from providers.sandbox.config import SandboxConfig
from tests.conftest import isolated
from tests.support import BeatProcess, EventCollector
from topics import names
from topics.models import TERMINAL

BASIC = "refresh_profile_basic"
SHORTCODE = "refresh_post_by_shortcode"
# Both disabled by configuration in this module.
CSV = "fetch_channels_csv"
SWITCHED_OFF = "refresh_profile_insights"
SEED = 20_260_611
BAD, GOOD_PER_FLOW = 10_000, 100
MAX_MESSAGE_BYTES = 1024 * 1024
OVERSIZED = (1_100_000, 1_150_000, 1_250_000)
DEEP = 20
LONG_DIGITS = 20


@pytest_asyncio.fixture(scope="module")
async def worker(broker, database_url, session_dir, pool):  # pool: the sandbox credentials
    settings = {
        "disabled_flows": json.dumps([SWITCHED_OFF, CSV]),
        "max_message_bytes": str(MAX_MESSAGE_BYTES),
        "log_level": "WARNING",
    }
    async with isolated(broker, database_url, session_dir, SandboxConfig(), "poison", **settings) as (prefix, spawn, _):
        yield prefix, spawn("worker", "--flows", BASIC, SHORTCODE, CSV, SWITCHED_OFF)


# The fuzz: each maker returns (value, id of a request whose DEAD_LETTERED status can be recorded, or None).

Maker = Callable[[random.Random, str], tuple[bytes | None, str | None]]


def _handle_params(flow: str, value: object = "someone") -> dict:
    return {"handle": value} if flow == BASIC else {"shortcode": value}


def _body(rng: random.Random, flow: str, /, **fields: object) -> tuple[bytes, str]:
    request_id = str(uuid.UUID(int=rng.getrandbits(128)))
    body = {"id": request_id, "params": _handle_params(flow), **fields}
    return json.dumps(body).encode(), request_id


def _random_bytes(rng, flow):
    return rng.randbytes(rng.randint(0, 300)), None


def _truncated(rng, flow):
    whole, _ = _body(rng, flow, params=_handle_params(flow, "x" * rng.randint(1, 40)))
    return whole[: rng.randint(0, len(whole) - 1)], None


def _not_an_object(rng, flow):
    return rng.choice([b"[1, 2]", b'"a string"', b"null", b"true", b"42", b"NaN", b"-Infinity"]), None


def _surrogate(rng, flow):
    lone = rng.choice(["\ud800", "\udfff", "a\ud83d"])
    where = rng.choice(["param", "key", "account"])
    if where == "param":
        return _body(rng, flow, params=_handle_params(flow, lone))
    if where == "key":
        return _body(rng, flow, params={**_handle_params(flow), lone: 1})
    return _body(rng, flow, account_id=lone)


def _nul(rng, flow):
    where = rng.choice(["param", "idempotency", "nested"])
    if where == "param":
        return _body(rng, flow, params=_handle_params(flow, "ab\x00c"))
    if where == "idempotency":
        return _body(rng, flow, idempotency_key="k\x00")
    return _body(rng, flow, params={**_handle_params(flow), "extra": {"deep": ["\x00"]}})


def _out_of_range(rng, flow):
    field_, value = rng.choice(
        [
            ("priority", 2**31),
            ("priority", -(2**31) - 1),
            ("retry_count", 2**31),
            ("schema_version", 2**40),
            ("params", {**_handle_params(flow), "n": 2**64}),
            ("params", {**_handle_params(flow), "n": -(2**63) - 1}),
            ("params", {**_handle_params(flow), "ratio": float("nan")}),
            ("params", {**_handle_params(flow), "ratio": float("-inf")}),
        ]
    )
    return _body(rng, flow, **{field_: value})


def _wrong_types(rng, flow):
    field_, value = rng.choice(
        [
            ("params", [1, 2]),
            ("params", "handle"),
            ("params", None),
            ("priority", "high"),
            ("params", _handle_params(flow, 12345)),
            ("params", _handle_params(flow, {"a": 1})),
            ("created_at", "yesterday"),
            ("platform", "MYSPACE"),
            ("expires_at", "0001-01-01T00:00:00+14:00"),
        ]
    )
    return _body(rng, flow, **{field_: value})


def _unknown_flow(rng, flow):
    return _body(
        rng, flow, flow=rng.choice(["no_such_flow", "refresh_everything", BASIC if flow == SHORTCODE else SHORTCODE])
    )


def _invalid_params(rng, flow):
    params = rng.choice(
        [
            {},
            _handle_params(flow, ""),
            _handle_params(flow, "   "),
            {**_handle_params(flow), "unexpected": True},
            {"something_else": "x"},
        ]
    )
    return _body(rng, flow, params=params)


def _unstorable_id(rng, flow):
    bad_id = rng.choice(["abc\x00def", "\ud800", "x" * 2000, 17, ["id"]])
    return json.dumps({"id": bad_id, "params": _handle_params(flow, "")}).encode(), None


def _tombstone(rng, flow):
    return None, None


CHEAP: list[Maker] = [
    _random_bytes,
    _truncated,
    _not_an_object,
    _surrogate,
    _nul,
    _out_of_range,
    _wrong_types,
    _unknown_flow,
    _invalid_params,
    _unstorable_id,
    _tombstone,
]


def _oversized(size: int) -> Maker:
    def make(rng, flow):
        value, _ = _body(rng, flow, params={**_handle_params(flow), "pad": "p" * size})
        return value, None  # refused by its size before it is parsed: no status

    return make


def _deep(rng, flow):
    return b'{"params": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", None


def _long_digits(rng, flow):
    return b'{"params": {"handle": ' + b"7" * 5000 + b"}}", None


@dataclass
class Produced:
    bad: dict[tuple[str, int, int], bytes | None] = field(default_factory=dict)
    dead_lettered_ids: set[str] = field(default_factory=set)
    good_ids: list[str] = field(default_factory=list)


async def _produce_fuzz(bootstrap: str, prefix: str) -> Produced:
    rng = random.Random(SEED)
    topics = {flow: f"{prefix}{names.scrape_topic(flow)}" for flow in (BASIC, SHORTCODE)}
    makers = (
        [_oversized(size) for size in OVERSIZED]
        + [_deep] * DEEP
        + [_long_digits] * LONG_DIGITS
        + [rng.choice(CHEAP) for _ in range(BAD - len(OVERSIZED) - DEEP - LONG_DIGITS)]
    )
    plan: list[tuple[str, Maker | None]] = [(rng.choice([BASIC, SHORTCODE]), maker) for maker in makers]
    plan += [(flow, None) for flow in (BASIC, SHORTCODE) for _ in range(GOOD_PER_FLOW)]
    rng.shuffle(plan)

    produced = Produced()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        sent = []
        for flow, maker in plan:
            key = rng.choice([None, None, rng.randbytes(8), b"K" * 5000])
            headers = [("origin", rng.randbytes(6))] if rng.random() < 0.1 else None
            if maker is None:
                request_id = str(uuid.uuid4())
                params = _handle_params(flow, f"fz_{uuid.uuid4().hex[:12]}")
                value = json.dumps({"id": request_id, "params": params}).encode()
                produced.good_ids.append(request_id)
            else:
                value, request_id = maker(rng, flow)
                if request_id is not None:
                    produced.dead_lettered_ids.add(request_id)
            if value is None and key is None:
                key = b"tombstone"  # Kafka needs one of them
            future = await producer.send(topics[flow], value, key=key, headers=headers)
            sent.append((future, maker is None, value))
        for future, good, value in sent:
            metadata = await future
            if not good:
                produced.bad[(metadata.topic, metadata.partition, metadata.offset)] = value
    finally:
        await producer.stop()
    return produced


async def _dead_letters(
    bootstrap: str, topic: str, until: Callable[[dict], bool], watched: BeatProcess, timeout: float
) -> dict[tuple[str, int, int], dict]:
    """Every dead letter on ``topic`` by its original's (topic, partition, offset), read until ``until``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    letters: dict[tuple[str, int, int], dict] = {}
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while not until(letters) and time.monotonic() < deadline:
            assert watched.alive(), f"the worker exited:\n{watched.log_tail()}"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    letter = json.loads(record.value)
                    origin = (letter["original_topic"], letter["original_partition"], letter["original_offset"])
                    letters[origin] = letter
    finally:
        await consumer.stop()
    return letters


def _terminal(collector: EventCollector, request_id: str) -> dict | None:
    """The request's terminal status event as the worker produced it, if any yet."""
    return next(
        (event for _, event in collector.by_request.get(request_id, ()) if event.get("status") in TERMINAL), None
    )


async def _wait_terminal(collector: EventCollector, ids, watched: BeatProcess, timeout: float) -> dict[str, dict]:
    """id -> terminal status event, read from the status topic (the worker's own output, before any sink)."""
    deadline = time.monotonic() + timeout
    while True:
        assert watched.alive(), f"the worker exited:\n{watched.log_tail()}"
        found = {request_id: _terminal(collector, request_id) for request_id in ids}
        if all(found.values()) or time.monotonic() > deadline:
            return {request_id: event for request_id, event in found.items() if event}
        await asyncio.sleep(0.2)


@pytest_asyncio.fixture(scope="module")
async def outputs(worker, broker):
    """Every status and stored event of the module's worker, by request id."""
    prefix, _ = worker
    collector = EventCollector(broker, [f"{prefix}{topic}" for topic in (names.STATUS, *names.STORED_TOPICS)])
    await collector.start()
    yield collector
    await collector.stop()


async def test_ten_thousand_poison_records_cost_no_good_request(worker, outputs, broker):
    prefix, process = worker
    produced = await _produce_fuzz(broker, prefix)
    assert len(produced.bad) == BAD

    letters = await _dead_letters(
        broker, f"{prefix}{names.DEAD_LETTER}", lambda found: produced.bad.keys() <= found.keys(), process, timeout=180
    )
    missing = produced.bad.keys() - letters.keys()
    assert not missing, f"{len(missing)} bad records never dead-lettered, e.g. {sorted(missing)[:3]}"
    for origin, value in produced.bad.items():
        letter = letters[origin]
        assert letter["error"]["type"] and letter["error"]["message"]
        assert letter["original_size"] == len(value or b"")
        assert letter["original_sha256"] == hashlib.sha256(value or b"").hexdigest()
        if len(value or b"") > MAX_MESSAGE_BYTES:
            assert letter["error"]["type"] == "MessageTooLarge" and letter["original_truncated"]
            assert value.startswith(base64.b64decode(letter["original_value"]))
        else:
            assert base64.b64decode(letter["original_value"]) == (value or b"")
    kinds = {letter["error"]["type"] for letter in letters.values()}
    assert {"UndecodableMessage", "MessageTooLarge", "InvalidRequest", "InvalidParams", "UnknownFlow"} <= kinds

    statuses = await _wait_terminal(outputs, produced.good_ids, process, timeout=120)
    outcomes = [event["status"] for event in statuses.values()]
    assert outcomes.count("COMPLETE") == len(produced.good_ids), (
        {s: outcomes.count(s) for s in set(outcomes)},
        [event["error"] for event in statuses.values() if event["status"] != "COMPLETE"][:3],
    )
    refused = await _wait_terminal(outputs, produced.dead_lettered_ids, process, timeout=30)
    assert len(refused) == len(produced.dead_lettered_ids)
    assert {event["status"] for event in refused.values()} == {"DEAD_LETTERED"}

    # Decoding was total: nothing fell through to the worker's last resort.
    log = process.log_path.read_text(errors="replace")
    assert "unexpected error on" not in log and "failed unexpectedly" not in log
    assert process.alive()


async def test_complete_announces_the_events_it_produced(worker, outputs, broker):
    prefix, process = worker
    ids = []
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    try:
        for flow in (BASIC, SHORTCODE):
            for _ in range(5):
                request_id = str(uuid.uuid4())
                body = {"id": request_id, "params": _handle_params(flow, f"an_{uuid.uuid4().hex[:10]}")}
                await producer.send_and_wait(f"{prefix}{names.scrape_topic(flow)}", json.dumps(body).encode())
                ids.append(request_id)
    finally:
        await producer.stop()
    statuses = await _wait_terminal(outputs, ids, process, timeout=60)
    assert {event["status"] for event in statuses.values()} == {"COMPLETE"} and len(statuses) == len(ids)
    announced = {request_id: event["result"]["announced"] for request_id, event in statuses.items()}
    assert all(count >= 1 for count in announced.values()), announced

    def stored_events() -> dict[str, int]:
        return {
            request_id: len(
                {
                    event["event_id"]
                    for topic, event in outputs.by_request.get(request_id, ())
                    if not topic.endswith(names.STATUS)
                }
            )
            for request_id in ids
        }

    deadline = time.monotonic() + 20
    while stored_events() != announced and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert stored_events() == announced


async def test_records_of_disabled_flows_are_dead_lettered_with_the_reason(worker, outputs, broker):
    prefix, process = worker
    request_ids = {CSV: str(uuid.uuid4()), SWITCHED_OFF: str(uuid.uuid4())}
    bodies = {
        CSV: {"id": request_ids[CSV], "params": {"channel_id": "UC123"}},
        SWITCHED_OFF: {"id": request_ids[SWITCHED_OFF], "params": {"handle": "someone"}},
    }
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    origins = {}
    try:
        for flow, body in bodies.items():
            metadata = await producer.send_and_wait(f"{prefix}{names.scrape_topic(flow)}", json.dumps(body).encode())
            origins[(metadata.topic, metadata.partition, metadata.offset)] = flow
        metadata = await producer.send_and_wait(f"{prefix}{names.scrape_topic(CSV)}", b"\xff garbage")
        origins[(metadata.topic, metadata.partition, metadata.offset)] = CSV
    finally:
        await producer.stop()

    letters = await _dead_letters(
        broker, f"{prefix}{names.DEAD_LETTER}", lambda found: origins.keys() <= found.keys(), process, timeout=30
    )
    for origin, flow in origins.items():
        error = letters[origin]["error"]
        assert error["type"] == "DisabledFlow", error
        assert error["message"].startswith(f"flow {flow} is disabled; enabled flows: refresh_")
        assert SWITCHED_OFF not in error["message"].split(": ", 1)[1]
    statuses = await _wait_terminal(outputs, request_ids.values(), process, timeout=30)
    assert {request_id: (event["status"], event["error"]["type"]) for request_id, event in statuses.items()} == (
        dict.fromkeys(request_ids.values(), ("DEAD_LETTERED", "DisabledFlow"))
    )
