"""An operator's re-drives: ``beat retry``, ``beat dlq list``/``redrive`` and ``POST /requests/{id}/retry``.

Against the session stack: definitive failures come from the sandbox's fail paths on a store of
the test's own, poison from records produced straight to a flow's topic with params the flow refuses. Each command
runs as the real CLI, in its own process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer

from core.kafka import start_producer
from core.redrive import _claim, _load
from core.settings import load_settings
from providers.credentials import CredentialStore
from providers.sandbox.config import SandboxConfig
from providers.shopify.shopify import SOURCE
from tests.support import ROOT, produce_requests
from topics import names
from topics.models import RequestStatus, Status

SHOP = "refresh_orders_by_store"
# Flows whose records here carry params they refuse (a channel_id where they take channel_ids or video_ids):
# the worker dead-letters every one of them.
DISABLED, OTHER_DISABLED = "fetch_channels_csv", "fetch_video_details_csv"


def _store() -> str:
    return f"orders-2-{uuid.uuid4().hex[:8]}.myshopify.com"


async def _beat(stack, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        env=stack.env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"beat {' '.join(args)}: {err.decode()[-2000:]}"
    return out.decode()


async def _fail_paths(sandbox, paths: dict[str, int]) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        config = SandboxConfig(fail_paths=paths).model_dump(mode="json")
        (await client.put("/_sandbox/config", json=config)).raise_for_status()


async def _submit(stack, flow: str, params: dict) -> str:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post("/requests", json={"flow": flow, "params": params})
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def _wait_row(pool, request_id: str, done, timeout: float = 45.0):
    """The request's row once ``done(row)``; the row as it is at the deadline otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        row = await pool.fetchrow(
            "SELECT id, status, attempt, redrives, error_type, redriven_at FROM scrape_request_log WHERE id = $1",
            request_id,
        )
        if (row is not None and done(row)) or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.2)


def _status(status: str, attempt: int = 1):
    return lambda row: row["status"] == status and row["attempt"] == attempt


async def _failed_orders(stack, pool, sandbox, store_status: dict[str, int]) -> dict[str, str]:
    """One refresh_orders_by_store request per store (each with its credential), FAILED by the store's
    sandbox status."""
    for store in store_status:
        await CredentialStore(pool).add(
            SOURCE,
            {"X-Shopify-Access-Token": f"shpat_{uuid.uuid4().hex}"},
            handle=store,
            idempotency_key=f"shopify:{store}:test",
        )
    await _fail_paths(sandbox, {f"/shopify/{store}/": status for store, status in store_status.items()})
    ids = {store: await _submit(stack, SHOP, {"store": store}) for store in store_status}
    for request_id in ids.values():
        row = await _wait_row(pool, request_id, _status("FAILED"))
        assert row is not None and row["status"] == "FAILED", dict(row or {})
    return ids


async def _timeline(stack, request_id: str) -> list[tuple[str, int]]:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.get(f"/requests/{request_id}/timeline")
    return [(event["status"], event["attempt"]) for event in response.json()["events"]]


async def test_a_retried_failed_request_runs_again_and_completes(stack, pool, sandbox) -> None:
    store = _store()
    try:
        request_id = (await _failed_orders(stack, pool, sandbox, {store: 404}))[store]
    finally:
        await _fail_paths(sandbox, {})
    # The provider is back: the dry run names it and changes nothing.
    out = await _beat(stack, "retry", "--id", request_id, "--dry-run")
    assert f"would re-drive: {request_id}: attempt 2" in out
    row = await _wait_row(pool, request_id, _status("FAILED"))
    assert (row["status"], row["attempt"], row["redrives"], row["redriven_at"]) == ("FAILED", 1, 0, None)

    out = await _beat(stack, "retry", "--id", request_id)
    assert f"re-driven: {request_id}: attempt 2" in out and "1 re-driven, 0 skipped" in out
    row = await _wait_row(pool, request_id, _status("COMPLETE", 2))
    assert (row["status"], row["attempt"], row["redrives"]) == ("COMPLETE", 2, 1)
    timeline = await _timeline(stack, request_id)
    assert ("FAILED", 1) in timeline and ("REDRIVEN", 2) in timeline and ("COMPLETE", 2) in timeline
    # A COMPLETE request is not re-opened, however often the command runs.
    assert "0 re-driven, 0 skipped" in await _beat(stack, "retry", "--id", request_id)
    row = await _wait_row(pool, request_id, _status("COMPLETE", 2))
    assert (row["attempt"], row["redrives"]) == (2, 1)


async def test_retry_reopens_exactly_the_failed_requests_its_filters_match(stack, pool, sandbox) -> None:
    early, late, other = _store(), _store(), _store()
    try:
        first = await _failed_orders(stack, pool, sandbox, {early: 404})
        since = datetime.now(UTC)
        await asyncio.sleep(0.05)
        rest = await _failed_orders(stack, pool, sandbox, {late: 404, other: 400})
    finally:
        await _fail_paths(sandbox, {})
    ids = {**first, **rest}
    types = {store: (await _wait_row(pool, ids[store], _status("FAILED")))["error_type"] for store in ids}
    assert types[early] == types[late] != types[other], types
    # Only the late store's request: the early one failed before --since, the other with another error class.
    filters = ["--flow", SHOP, "--error", types[late], "--since", since.isoformat()]
    dry = await _beat(stack, "retry", *filters, "--dry-run")
    assert dry.count("would re-drive:") == 1 and f"would re-drive: {ids[late]}" in dry
    out = await _beat(stack, "retry", *filters)
    assert out.count("re-driven:") == 1 and f"re-driven: {ids[late]}: attempt 2" in out
    assert (await _wait_row(pool, ids[late], _status("COMPLETE", 2)))["status"] == "COMPLETE"
    for store in (early, other):
        row = await _wait_row(pool, ids[store], _status("FAILED"))
        assert (row["status"], row["attempt"], row["redrives"], row["redriven_at"]) == ("FAILED", 1, 0, None)
    # Running it again finds nothing left to re-open.
    again = await _beat(stack, "retry", *filters)
    assert "0 re-driven, 0 skipped" in again
    assert (await _wait_row(pool, ids[late], _status("COMPLETE", 2)))["redrives"] == 1


async def test_the_retry_route_reopens_once(stack, pool, sandbox) -> None:
    store = _store()
    try:
        request_id = (await _failed_orders(stack, pool, sandbox, {store: 400}))[store]
    finally:
        await _fail_paths(sandbox, {})
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        first = await client.post(f"/requests/{request_id}/retry")
        second = await client.post(f"/requests/{request_id}/retry")
        unknown = await client.post(f"/requests/{uuid.uuid4()}/retry")
        bad_id = await client.post("/requests/a%00b/retry")
    assert first.status_code == 202, first.text
    assert first.json() == {"id": request_id, "status": "REDRIVEN", "attempt": 2, "redriven_from": "FAILED"}
    assert second.status_code == 409 and "already re-opened" in second.json()["detail"]
    assert unknown.status_code == 404
    assert bad_id.status_code == 422
    row = await _wait_row(pool, request_id, _status("COMPLETE", 2))
    assert (row["status"], row["attempt"], row["redrives"]) == ("COMPLETE", 2, 1), await _timeline(stack, request_id)
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        done = await client.post(f"/requests/{request_id}/retry")
    assert done.status_code == 409 and "COMPLETE" in done.json()["detail"]


async def _letters(pool, where: str, *args, count: int = 1, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = await pool.fetch(f"SELECT * FROM dead_letter WHERE {where} ORDER BY id", *args)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def _produce_raw(stack, flow: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        await producer.send_and_wait(stack.topic(names.scrape_topic(flow)), value, key=b"raw")
    finally:
        await producer.stop()


async def test_dlq_redrive_redrives_exactly_the_filtered_letters_once(stack, pool) -> None:
    marker = uuid.uuid4().hex
    garbage = f"not a request {marker} {{".encode()
    big = json.dumps({"params": {"handle": marker, "pad": "x" * (1024 * 1024)}}).encode()
    await _produce_raw(stack, DISABLED, garbage)
    await _produce_raw(stack, DISABLED, big)
    [named] = await produce_requests(
        stack.bootstrap, stack.topic(names.scrape_topic(DISABLED)), [{"params": {"channel_id": f"UC{marker}"}}]
    )
    [elsewhere] = await produce_requests(
        stack.bootstrap, stack.topic(names.scrape_topic(OTHER_DISABLED)), [{"params": {"channel_id": f"UC{marker}"}}]
    )
    raw_letter = (await _letters(pool, "record->>'original_value' = $1", base64.b64encode(garbage).decode()))[0]
    big_letter = (await _letters(pool, "record->>'original_sha256' = $1", hashlib.sha256(big).hexdigest()))[0]
    named_letter = (await _letters(pool, "request_id = $1", named))[0]
    other_letter = (await _letters(pool, "request_id = $1", elsewhere))[0]
    assert raw_letter["request_id"] is None and big_letter["record"] and named_letter["flow"] == DISABLED
    assert (await _wait_row(pool, named, _status("DEAD_LETTERED")))["status"] == "DEAD_LETTERED"
    # Every letter of this test so far, and none of those its re-drives will cause.
    until = datetime.now(UTC).isoformat()
    since = min(letter["last_failure_at"] for letter in (raw_letter, big_letter, named_letter)).isoformat()

    listed = await _beat(stack, "dlq", "list", "--flow", DISABLED, "--since", since)
    lines = [line for line in listed.splitlines() if marker in line or named in line or "MessageTooLarge" in line]
    assert any(named in line and "InvalidParams" in line and "not redriven" in line for line in lines), listed
    assert f"[{raw_letter['original_partition']}]@{raw_letter['original_offset']}" in listed
    assert elsewhere not in listed

    filters = ["--flow", DISABLED, "--since", since, "--until", until]
    dry = await _beat(stack, "dlq", "redrive", *filters, "--dry-run")
    assert "2 would re-drive, 1 skipped" in dry, dry
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM dead_letter WHERE redriven_at IS NOT NULL AND id = ANY($1)",
            [raw_letter["id"], named_letter["id"], big_letter["id"]],
        )
    ) == 0

    out = await _beat(stack, "dlq", "redrive", *filters)
    assert f"re-driven: dead letter {named_letter['id']}: request {named} attempt 2" in out, out
    assert f"re-driven: dead letter {raw_letter['id']}: original record to {raw_letter['original_topic']}/" in out
    assert f"skipped: dead letter {big_letter['id']}: " in out and "cannot be re-driven" in out
    assert "2 re-driven, 1 skipped" in out
    # The named request was re-opened as attempt 2 (and, its params still refused, dead-lettered again).
    row = await _wait_row(pool, named, _status("DEAD_LETTERED", 2))
    assert (row["status"], row["attempt"], row["redrives"]) == ("DEAD_LETTERED", 2, 1), await _timeline(stack, named)
    assert ("REDRIVEN", 2) in await _timeline(stack, named)
    # The undecodable original went back to its topic once: its second letter is the re-driven copy's.
    again = await _letters(pool, "record->>'original_value' = $1", base64.b64encode(garbage).decode(), count=2)
    assert len(again) == 2 and again[1]["original_offset"] != raw_letter["original_offset"]
    assert (await pool.fetchval("SELECT redriven_as FROM dead_letter WHERE id = $1", raw_letter["id"])) == (
        f"{raw_letter['original_topic']}/{again[1]['original_partition']}/{again[1]['original_offset']}"
    )
    # The other flow's letter is untouched; re-running re-drives nothing.
    assert (await pool.fetchval("SELECT redriven_at FROM dead_letter WHERE id = $1", other_letter["id"])) is None
    rerun = await _beat(stack, "dlq", "redrive", *filters)
    assert "0 re-driven, 1 skipped" in rerun, rerun
    await asyncio.sleep(1.0)
    assert (
        len(
            await _letters(
                pool, "record->>'original_value' = $1", base64.b64encode(garbage).decode(), count=3, timeout=0
            )
        )
        == 2
    )
    assert (await pool.fetchval("SELECT redrives FROM scrape_request_log WHERE id = $1", named)) == 1


async def test_a_redrive_cut_off_before_its_record_is_finished_by_the_reconciler(stack, pool, sandbox) -> None:
    store = _store()
    try:
        request_id = (await _failed_orders(stack, pool, sandbox, {store: 404}))[store]
    finally:
        await _fail_paths(sandbox, {})
    # What `beat retry` does up to the moment a crash would cut it off: the claim and the REDRIVEN status,
    # without the record.
    async with pool.acquire() as conn:
        row, request = await _load(conn, request_id)
        await _claim(conn, row)
    settings = load_settings(kafka_url=stack.bootstrap, topic_prefix=stack.prefix)
    producer = await start_producer(settings)
    try:
        status = RequestStatus.of(request, Status.REDRIVEN)
        await producer.send_and_wait(settings.topic(names.STATUS), status.to_bytes(), key=request_id.encode())
    finally:
        await producer.stop()
    # The reconciler finds the re-drive never handed to the broker and produces its record.
    row = await _wait_row(pool, request_id, _status("COMPLETE", 2))
    assert (row["status"], row["attempt"]) == ("COMPLETE", 2), dict(row)
