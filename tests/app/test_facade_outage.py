"""The facade during an outage (issue 12), over real HTTP, never a 500:

* Postgres cut (a TCP proxy in front of it for the api and the sink only; the worker reaches it directly):
  with a durable broker every submission is taken (202) and completes once Postgres is back; with the
  embedded, memory-only broker a submission is answered 202 or 503 with Retry-After, and a 503 leaves
  nothing behind. Reads answer 503 with Retry-After meanwhile, legacy routes in their envelope.
* Broker down: 503 with Retry-After within seconds; the request is recorded, handed over by the reconciler
  once the broker is back, and completes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import httpx
import pytest

from app.embedded import EmbeddedBroker
from core.settings import Settings
from tests.outage_support import FLOW, OwnStack, own_stack, seeded_database
from tests.support import ADMIN_URL, TcpProxy, failures, unique, wait_terminal

RETRY_AFTER = str(Settings.model_fields["outage_retry_after"].default)
CUT_SECONDS = 6.0
# Submissions during a cut come this far apart, so a cut sees a few dozen.
PACE = 0.1


def _is_503(answer: httpx.Response, dependency: str) -> bool:
    body = answer.json()
    detail = body.get("detail") or {}
    return (
        answer.status_code == 503
        and answer.headers.get("retry-after") == RETRY_AFTER
        and detail.get("unavailable") == dependency
    )


def _is_legacy_503(answer: httpx.Response) -> bool:
    status = answer.json().get("status") or {}
    return (
        answer.status_code == 503
        and answer.headers.get("retry-after") == RETRY_AFTER
        and status.get("type") == "ERROR"
        and status.get("code") == 503
    )


async def _post(client: httpx.AsyncClient, handle: str, **fields: str) -> httpx.Response:
    return await client.post("/requests", json={"flow": FLOW, "params": {"handle": handle}, **fields})


async def _start(stack: OwnStack, proxied: str) -> None:
    stack.spawn("sink", database_url=proxied)
    stack.spawn("worker", "--flows", FLOW)
    await stack.api(database_url=proxied)


@pytest.mark.parametrize("durable", [True, False], ids=["durable broker", "embedded broker"])
async def test_a_postgres_cut_never_costs_a_500_or_an_accepted_request(broker, session_dir, durable):
    target = urlsplit(ADMIN_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    tag = unique("pgcut")
    answers: list[tuple[str, str, httpx.Response]] = []  # (when, handle, answer)
    try:
        async with (
            seeded_database("beat_facade") as (url, pool),
            own_stack(broker, url, session_dir, "pgcut", broker_durable=str(durable).lower()) as stack,
        ):
            proxied = proxy.url(url)
            await _start(stack, proxied)
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
                answers.extend([("before", f"{tag}_b{n}", await _post(client, f"{tag}_b{n}")) for n in range(5)])
                first_id = answers[0][2].json()["id"]
                # Every process at work before the cut (a sink starting meanwhile would exit and wait for its
                # supervisor, which the test does not have).
                before = [answer.json()["id"] for _, _, answer in answers]
                assert Counter((await wait_terminal(pool, before, timeout=60)).values()) == {"COMPLETE": 5}

                proxy.cut()
                deadline = time.monotonic() + CUT_SECONDS
                n = 0
                while time.monotonic() < deadline:
                    answers.append(("during", f"{tag}_d{n}", await _post(client, f"{tag}_d{n}")))
                    n += 1
                    await asyncio.sleep(PACE)
                # The same idempotency key twice, without Postgres: one request, or two refusals.
                key = f"key-{uuid.uuid4().hex}"
                repeats = [await _post(client, f"{tag}_k", idempotency_key=key) for _ in range(2)]
                reads = [await client.get(f"/requests/{first_id}"), await client.get(f"/requests/{first_id}/timeline")]
                legacy_read = await client.get(f"/scrape_request_log/flow/{first_id}")
                legacy_post = await client.post(
                    f"/scrape_request_log/flow/{FLOW}", json={"params": {"handle": f"{tag}_legacy"}}
                )
                proxy.restore()

                answers.extend([("after", f"{tag}_a{n}", await _post(client, f"{tag}_a{n}")) for n in range(5)])
                assert (await client.get(f"/requests/{first_id}")).status_code == 200

            assert not [a for _, _, a in answers if a.status_code >= 500 and a.status_code != 503]
            assert all(_is_503(read, "postgres") for read in reads), [r.text for r in reads]
            assert _is_legacy_503(legacy_read), legacy_read.text
            during = [answer for when, _, answer in answers if when == "during"]
            assert len(during) >= 10
            if durable:
                assert Counter(a.status_code for _, _, a in answers) == {202: len(answers)}, [
                    a.text for _, _, a in answers if a.status_code != 202
                ]
                assert [r.status_code for r in repeats] == [202, 202]
                assert repeats[0].json()["id"] == repeats[1].json()["id"]
                assert legacy_post.status_code == 200 and legacy_post.json()["status"]["type"] == "SUCCESS"
                accepted = [a.json()["id"] for _, _, a in answers] + [
                    repeats[0].json()["id"],
                    legacy_post.json()["scrape_id"],
                ]
            else:
                assert all(_is_503(a, "postgres") for a in during), [a.text for a in during]
                assert all(_is_503(r, "postgres") for r in repeats)
                assert _is_legacy_503(legacy_post), legacy_post.text
                assert all(a.status_code == 202 for when, _, a in answers if when != "during")
                accepted = [a.json()["id"] for _, _, a in answers if a.status_code == 202]
            statuses = await wait_terminal(pool, accepted, timeout=120)
            assert Counter(statuses.get(rid) for rid in accepted) == {"COMPLETE": len(accepted)}, (
                await failures(pool, accepted),
                stack.tails(),
            )
            if not durable:
                # A 503 recorded nothing, anywhere: no row, no status, no work done for it.
                refused = [handle for _, handle, a in answers if a.status_code == 503] + [f"{tag}_k", f"{tag}_legacy"]
                rows = await pool.fetchval(
                    "SELECT count(*) FROM scrape_request_log WHERE params->>'handle' = ANY($1)", refused
                )
                accounts = await pool.fetchval("SELECT count(*) FROM instagram_account WHERE handle = ANY($1)", refused)
                assert (rows, accounts) == (0, 0)
    finally:
        proxy.stop()


async def test_a_broker_down_answers_503_and_the_recorded_request_completes_once_it_is_back(session_dir):
    own = EmbeddedBroker(session_dir / f"broker-{uuid.uuid4().hex[:6]}")
    own.start()
    tag = unique("nobroker")
    try:
        async with (
            seeded_database("beat_facade") as (url, pool),
            own_stack(own.bootstrap, url, session_dir, "nobroker", broker_durable="false") as stack,
        ):
            await stack.api()
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
                first = await _post(client, f"{tag}_0")
                assert first.status_code == 202

                own.stop()
                started = time.monotonic()
                refused = await _post(client, f"{tag}_1", idempotency_key=f"{tag}-key")
                waited = time.monotonic() - started
                assert _is_503(refused, "broker"), refused.text
                assert waited < 15, f"a dead broker took {waited:.1f}s to answer"
                recorded = refused.json()["detail"]["id"]
                # Recorded, and handed over later: the same key names it again, and it reads back PENDING.
                again = await _post(client, f"{tag}_1", idempotency_key=f"{tag}-key")
                assert (again.status_code, again.json()["id"]) == (202, recorded)
                read = await client.get(f"/requests/{recorded}")
                assert (read.status_code, read.json()["status"]) == (200, "PENDING")
                legacy = await client.post(f"/scrape_request_log/flow/{FLOW}", json={"params": {"handle": f"{tag}_2"}})
                assert _is_legacy_503(legacy) and legacy.json()["scrape_id"], legacy.text
                ready = await client.get("/readyz")
                assert ready.status_code == 503 and ready.json()["down"] == ["broker"]

                own.start()
                stack.spawn("sink")
                stack.spawn("worker", "--flows", FLOW)
                accepted = [first.json()["id"], recorded, legacy.json()["scrape_id"]]
                statuses = await wait_terminal(pool, accepted, timeout=120)
                assert Counter(statuses.values()) == {"COMPLETE": 3}, (await failures(pool, accepted), stack.tails())
                assert (await _post(client, f"{tag}_3")).status_code == 202
    finally:
        own.stop()
