"""End to end through the real broker, worker, sink and facade against the sandbox."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime

import httpx
from aiokafka import AIOKafkaConsumer

from providers.sandbox.seeds import SANDBOX_CREDENTIALS
from tests.support import failures, produce_requests, unique, wait_terminal
from topics import names
from topics.models import ProfileLog


async def _post_all(api_url: str, bodies: list[dict]) -> list[str]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        semaphore = asyncio.Semaphore(20)

        async def one(body: dict) -> str:
            async with semaphore:
                response = await client.post("/requests", json=body)
                assert response.status_code == 202, response.text
                return response.json()["id"]

        return await asyncio.gather(*(one(b) for b in bodies))


async def _consume(bootstrap: str, topics: list[str], until, timeout: float = 60.0) -> list:
    """Read topics from the beginning in a fresh group, as an analytics team would, until ``until(records)``."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"analytics-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    records = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and not until(records):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_mixed_requests_complete_with_rows_and_events(stack, pool):
    run = uuid.uuid4().hex[:8]
    handles = [f"pipe_{run}_{i}" for i in range(80)]
    bodies = (
        [{"flow": "refresh_profile_basic", "params": {"handle": h}} for h in handles]
        + [{"flow": "refresh_profile_by_handle", "params": {"handle": h}} for h in handles[:40]]
        + [{"flow": "refresh_post_by_shortcode", "params": {"shortcode": f"Pp{run}{i:04d}"}} for i in range(80)]
    )
    ids = await _post_all(stack.api_url, bodies)
    assert len(set(ids)) == 200

    statuses = await wait_terminal(pool, ids, timeout=180)
    assert sorted(set(statuses.values())) == ["COMPLETE"], await failures(pool, ids)

    accounts = await pool.fetch(
        "SELECT handle, followers, profile_id FROM instagram_account WHERE handle = ANY($1)", handles
    )
    assert {row["handle"] for row in accounts} == set(handles)
    assert all(row["followers"] is not None for row in accounts)
    full = await pool.fetch(
        "SELECT result FROM scrape_request_log WHERE id = ANY($1) AND flow = 'refresh_profile_by_handle'", ids
    )
    assert all(json.loads(row["result"])["posts"] > 0 for row in full)
    by_handle_posts = await pool.fetchval(
        "SELECT count(*) FROM instagram_post WHERE profile_id = ANY($1)", [row["profile_id"] for row in accounts]
    )
    assert by_handle_posts >= 40
    shortcode_rows = await pool.fetchval("SELECT count(*) FROM instagram_post WHERE shortcode LIKE $1", f"Pp{run}%")
    assert shortcode_rows == 80

    # An analytics consumer sees one profile event per refreshed handle, with stable, unique event ids.
    id_set = set(ids)
    wanted = len(handles) + 40

    def mine(records):
        return [
            ProfileLog.model_validate_json(r.value)
            for r in records
            if ProfileLog.model_validate_json(r.value).request_id in id_set
        ]

    records = await _consume(stack.bootstrap, [stack.topic(names.PROFILE_LOG)], lambda rs: len(mine(rs)) >= wanted)
    events = mine(records)
    assert len({e.event_id for e in events}) >= wanted
    assert {e.handle for e in events} == set(handles)
    # Graph answers for business and creator accounts, ArrayBobo (next in line) for the others.
    assert all(e.schema_version == 1 and e.kind == "profile" for e in events)
    assert {e.source for e in events} <= {"graphapi", "rapidapi-arraybobo"}
    assert all(
        r.key.decode() == f"INSTAGRAM:{ProfileLog.model_validate_json(r.value).profile_id}"
        for r in records
        if ProfileLog.model_validate_json(r.value).request_id in id_set
    )


async def test_bad_messages_are_dead_lettered_and_good_ones_complete(stack, pool):
    topic = stack.topic(names.scrape_topic("refresh_profile_basic"))
    good_handle = unique("dl_good")
    invalid_id, unknown_id = str(uuid.uuid4()), str(uuid.uuid4())
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\xff\xfe not json")
        await producer.send_and_wait(
            topic, json.dumps({"id": invalid_id, "params": {"handle": ""}, "unexpected": 1}).encode()
        )
        await producer.send_and_wait(
            topic, json.dumps({"id": unknown_id, "flow": "no_such_flow", "params": {"handle": "x"}}).encode()
        )
        await producer.send_and_wait(topic, json.dumps({"params": {"handle": "ok", "surprise": True}}).encode())
    finally:
        await producer.stop()
    [good_id] = await produce_requests(stack.bootstrap, topic, [{"params": {"handle": good_handle}}])

    statuses = await wait_terminal(pool, [good_id, invalid_id, unknown_id], timeout=60)
    assert statuses == {good_id: "COMPLETE", invalid_id: "DEAD_LETTERED", unknown_id: "DEAD_LETTERED"}
    errors = dict(
        await pool.fetch("SELECT id, error_type FROM scrape_request_log WHERE id = ANY($1)", [invalid_id, unknown_id])
    )
    assert errors == {invalid_id: "InvalidParams", unknown_id: "UnknownFlow"}

    def letters(records):
        return [json.loads(r.value) for r in records]

    def found(records):
        types = [d["error"]["type"] for d in letters(records) if d["original_topic"] == topic]
        return {"UndecodableMessage", "InvalidParams", "UnknownFlow"} <= set(types) and types.count(
            "InvalidParams"
        ) >= 2

    records = await _consume(stack.bootstrap, [stack.topic(names.DEAD_LETTER)], found)
    mine = [d for d in letters(records) if d["original_topic"] == topic]
    undecodable = next(d for d in mine if d["error"]["type"] == "UndecodableMessage")
    assert base64.b64decode(undecodable["original_value"]) == b"\xff\xfe not json"
    assert undecodable["original_offset"] >= 0 and undecodable["flow"] == "refresh_profile_basic"
    invalid = next(d for d in mine if d["request_id"] == invalid_id)
    assert "handle" in invalid["error"]["message"]
    assert next(d for d in mine if d["request_id"] == unknown_id)["error"]["message"].startswith("flow 'no_such_flow'")


async def test_trace_log_records_calls_without_secrets(stack, pool):
    handle = unique("trace")
    [request_id] = await _post_all(stack.api_url, [{"flow": "refresh_profile_basic", "params": {"handle": handle}}])
    assert (await wait_terminal(pool, [request_id], timeout=60)) == {request_id: "COMPLETE"}

    def mine(records):
        return [json.loads(r.value) for r in records if json.loads(r.value)["request_id"] == request_id]

    records = await _consume(stack.bootstrap, [stack.topic(names.TRACE_LOG)], lambda rs: bool(mine(rs)))
    # trace_log records carry no key, so one request's calls can sit on different partitions: the order
    # they were made in is their time, not the order they are read in.
    traces = sorted(mine(records), key=lambda t: datetime.fromisoformat(t["at"]))
    # Graph is asked first; ArrayBobo answers for accounts business discovery cannot see.
    assert [t["source"] for t in traces] in (["graphapi"], ["graphapi", "rapidapi-arraybobo"])
    assert all(t["method"] == "GET" and t["credential_id"] and t["latency_ms"] >= 0 for t in traces)
    assert traces[-1]["status"] == 200
    assert {t["path"].split("/")[1] for t in traces} <= {"graphapi", "rapidapi-arraybobo"}
    raw = b"".join(r.value for r in records)
    for secret in SANDBOX_CREDENTIALS.values():
        for value in secret.values():
            if "sandbox" in value:
                assert value.encode() not in raw
    assert handle.encode() not in raw  # no query string
