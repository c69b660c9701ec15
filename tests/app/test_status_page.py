"""The status page in headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright), against the
session's stack and a facade of its own that has keys, so the page must ask for one.

The page's numbers are checked twice: the table against the very ``/status`` answer the page drew, and that
answer against Postgres and the request API for the requests this test made.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from core.api_keys import new_key
from core.settings import Settings
from providers.budgets import BudgetGuard
from tests.support import REDIS_URL, TcpProxy, running_api, unique, wait_terminal

CHROMIUM = Path("/usr/bin/chromium")
READ_KEY, SUBMIT_KEY = new_key(), new_key()
WINDOW = 5  # the page's default window, in minutes
UI_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (.ci/run installs it)")


@asynccontextmanager
async def own_facade(stack: Any, **settings: str) -> AsyncIterator[str]:
    """A ``beat api`` beside the stack's, with ``settings`` (``api_keys=…``); yields its URL once it answers."""
    env = {**stack.env, **{f"BEAT_{k.upper()}": v for k, v in settings.items()}}
    log = stack.session_dir / "logs" / f"api-status-page-{uuid.uuid4().hex[:6]}.log"
    async with running_api(env, log) as (url, _):
        yield url


@asynccontextmanager
async def resting_source(pool: Any) -> AsyncIterator[str]:
    """A source of this test's own with one resting and one expired key, and an open circuit as
    ``source_breaker`` records one (nothing calls it, so no other test sees it)."""
    source = unique("pagesrc")
    await pool.execute(
        "INSERT INTO credential (idempotency_key, source, credentials, handle, disabled_till, data_access_expired) "
        "VALUES ($1, $3, '{}'::jsonb, 'a', now() + interval '1 hour', false), "
        "($2, $3, '{}'::jsonb, 'b', NULL, true)",
        f"{source}-resting",
        f"{source}-expired",
        source,
    )
    await pool.execute(
        "INSERT INTO source_breaker (scope, source, state, failures, opened_at, next_probe_at, last_error) "
        "VALUES ($1, $2, 'open', 5, now(), now() + interval '1 minute', 'ProviderUnavailable')",
        f"source:{source}",
        source,
    )
    try:
        yield source
    finally:
        await pool.execute("DELETE FROM credential WHERE source = $1", source)
        await pool.execute("DELETE FROM source_breaker WHERE source = $1", source)


def shown(value: Any) -> str:
    """A JSON value as the page's script prints it (JavaScript writes 15.0 as 15)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


async def submit(client: httpx.AsyncClient, flow: str, params: dict[str, Any]) -> str:
    answer = await client.post("/requests", json={"flow": flow, "params": params})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


async def postgres_flows(pool: Any, at: Any, flows: list[str]) -> dict[str, dict[str, int]]:
    """What the page's flow columns must say, counted here another way: per request status and event."""
    open_rows = await pool.fetch(
        "SELECT flow, count(*) FILTER (WHERE status IN ('PENDING', 'RETRYING')) AS backlog, "
        "count(*) FILTER (WHERE status = 'PROCESSING') AS in_flight FROM scrape_request_log "
        "WHERE flow = ANY($1) GROUP BY flow",
        flows,
    )
    window_rows = await pool.fetch(
        "SELECT l.flow, count(*) FILTER (WHERE e.status = 'COMPLETE') AS completed, "
        "count(*) FILTER (WHERE e.status IN ('FAILED', 'DEAD_LETTERED')) AS failed "
        "FROM scrape_request_event e, scrape_request_log l "
        "WHERE l.id = e.request_id AND l.flow = ANY($1) AND e.at >= $2 GROUP BY l.flow",
        flows,
        at - timedelta(minutes=WINDOW),
    )
    counted = {flow: {"backlog": 0, "in_flight": 0, "completed": 0, "failed": 0} for flow in flows}
    for row in [*open_rows, *window_rows]:
        counted[row["flow"]].update({k: v for k, v in dict(row).items() if k != "flow"})
    return counted


async def test_the_status_page_asks_for_a_key_and_shows_what_postgres_holds(stack, pool, tmp_path):
    from playwright.async_api import async_playwright

    started = time.monotonic()
    async with (
        own_facade(stack, api_keys=f"page:read:{READ_KEY};feeder:submit:{SUBMIT_KEY}") as url,
        resting_source(pool) as source,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        client.headers["Authorization"] = f"Bearer {SUBMIT_KEY}"
        done = [await submit(client, "refresh_profile_basic", {"handle": unique("page_ok")}) for _ in range(3)]
        # Insights of a profile never stored fail at once, with the flow's own error class.
        failed = [await submit(client, "refresh_profile_insights", {"handle": unique("page_bad")}) for _ in range(2)]
        statuses = await wait_terminal(pool, [*done, *failed], timeout=90)
        assert statuses == {**dict.fromkeys(done, "COMPLETE"), **dict.fromkeys(failed, "FAILED")}, statuses
        error_type = await pool.fetchval("SELECT error_type FROM scrape_request_log WHERE id = $1", failed[0])

        # The JSON needs the read key: none, or the submit key, is refused.
        client.headers.pop("Authorization")
        assert (await client.get("/status")).status_code == 401
        assert (await client.get("/status", headers={"Authorization": f"Bearer {SUBMIT_KEY}"})).status_code == 403
        client.headers["Authorization"] = f"Bearer {READ_KEY}"

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(UI_TIMEOUT_MS)
                await page.goto(url + "/")
                # The page itself carries no data, and asks for a key once /status refuses it.
                key_form = page.locator("#key-form")
                await key_form.wait_for(state="visible")
                assert await page.locator("#flows tbody tr").count() == 0
                await page.fill("#key", SUBMIT_KEY)
                await page.click("#key-form button")
                await page.locator("#key-problem").filter(has_text="refused").wait_for()
                async with page.expect_response(lambda r: r.url.startswith(url + "/status")) as answered:
                    await page.fill("#key", READ_KEY)
                    await page.click("#key-form button")
                drawn: dict[str, Any] = await (await answered.value).json()
                await page.locator("#flows tbody tr").first.wait_for()
                assert await key_form.is_hidden()
                assert await page.evaluate("sessionStorage.getItem('beat-read-key')") == READ_KEY
                # The first answer stays on screen until the next poll (5 s): read the table now.
                flow_rows = await page.locator("#flows tbody tr").evaluate_all(
                    "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.field, c.textContent])))"
                )
                source_rows = await page.locator("#sources tbody tr").evaluate_all(
                    "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => [c.dataset.field, c.textContent])))"
                )
                shown_failures = await page.locator("#failures li").evaluate_all(
                    "items => items.map(i => [i.dataset.request, i.closest('.failure-class').dataset.errorType, "
                    "i.querySelector('a').getAttribute('href')])"
                )

                # The table is the answer it drew, cell for cell.
                as_text = {
                    flow["flow"]: {field: shown(value) for field, value in flow.items()} for flow in drawn["flows"]
                }
                assert {row["flow"]: row for row in flow_rows} == as_text
                sources = {row["source"]: row for row in source_rows}
                assert set(sources) == {s["source"] for s in drawn["sources"]}
                assert sources[source]["breaker"] == "open" and sources[source]["resting"] == "1"
                assert sources[source]["expired"] == "1" and sources[source]["usable"] == "0"
                # Today's provider calls as the workers counted them, never more than Postgres holds a moment later.
                spent = {
                    row["source"]: row["calls"]
                    for row in await pool.fetch(
                        "SELECT source, sum(calls)::bigint AS calls FROM provider_spend "
                        "WHERE day = (now() AT TIME ZONE 'UTC')::date GROUP BY source"
                    )
                }
                assert any(row["calls_today"] for row in drawn["sources"]), drawn["sources"]
                for row in drawn["sources"]:
                    assert 0 <= row["calls_today"] <= spent.get(row["source"], 0), row
                    assert sources[row["source"]]["calls_today"] == str(row["calls_today"])

                # That answer is what Postgres holds, counted another way, at the instant it was read.
                flows = ["refresh_profile_basic", "refresh_profile_insights"]
                counted = await postgres_flows(pool, datetime.fromisoformat(drawn["at"]), flows)
                for flow in flows:
                    on_page = as_text[flow]
                    assert {k: int(on_page[k]) for k in counted[flow]} == counted[flow], (flow, on_page)
                assert int(as_text["refresh_profile_basic"]["completed"]) >= len(done)
                assert int(as_text["refresh_profile_insights"]["failed"]) >= len(failed)
                # The test's failures are listed under their class, each linked to its timeline.
                listed = {request_id: (kind, href) for request_id, kind, href in shown_failures}
                for request_id in failed:
                    assert listed[request_id] == (error_type, f"/requests/{request_id}/timeline")
                    api_error = (await client.get(f"/requests/{request_id}")).json()["error"]
                    assert api_error["type"] == error_type
                classes = {c["error_type"]: c["count"] for c in drawn["failure_classes"]}
                assert classes[error_type] >= len(failed)
                shown_count = page.locator(f'.failure-class[data-error-type="{error_type}"] [data-field=count]')
                assert await shown_count.text_content() == str(classes[error_type])

                # A timeline link opens the request's events, as many as the API has.
                await page.locator(f'#failures a[data-request="{failed[0]}"]').click()
                events = (await client.get(f"/requests/{failed[0]}/timeline")).json()["events"]
                await page.locator("#timeline-events tr").nth(len(events)).wait_for()
                assert await page.locator("#timeline-events tr").count() == len(events) + 1  # and a header row

                # The search box finds a request by id, with the API's status.
                await page.fill("#search-id", done[1])
                await page.click("#search button")
                await page.locator("#found [data-field=status]").filter(has_text="COMPLETE").wait_for()
                await page.fill("#search-id", "no-such-request-" + uuid.uuid4().hex)
                await page.click("#search button")
                await page.locator("#found [data-field=missing]").wait_for()

                # A reload in the same tab keeps the key: no second question.
                await page.reload()
                await page.locator("#flows tbody tr").first.wait_for()
                assert await key_form.is_hidden()
                screenshot = tmp_path / "status-page.png"
                await page.screenshot(path=str(screenshot), full_page=True)
                assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            finally:
                await browser.close()
    assert time.monotonic() - started < 120


async def test_with_postgres_cut_the_page_loads_and_its_data_answers_503(stack):
    target = urlsplit(stack.database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    try:
        async with (
            own_facade(stack, database_url=proxy.url(stack.database_url)) as url,
            httpx.AsyncClient(base_url=url, timeout=15) as client,
        ):
            assert (await client.get("/status")).status_code == 200
            proxy.cut()
            deadline = time.monotonic() + 20
            while (answer := await client.get("/status")).status_code != 503:
                assert time.monotonic() < deadline, answer.text
                await asyncio.sleep(0.2)
            assert answer.headers["retry-after"] and answer.json()["detail"]["unavailable"] == "postgres"
            page = await client.get("/")
            assert page.status_code == 200 and "/ui/status.js" in page.text
            assert (await client.get("/ui/status.js")).status_code == 200
    finally:
        proxy.stop()


async def test_the_status_shows_what_is_left_of_each_budget(stack):
    """The workers reserve budgets in Redis; the page reads the same store (tests/providers/test_budgets.py covers
    the reservations themselves)."""
    flow = "refresh_profile_basic"
    # The budget keys carry the stack's topic prefix, so no other session's reservations are counted.
    prefix = stack.env["BEAT_TOPIC_PREFIX"]
    settings = Settings(
        redis_url=REDIS_URL, topic_prefix=prefix, budgets={f"flow:{flow}": 10, "source:rapidapi-arraybobo": 5}
    )
    guard = BudgetGuard.from_settings(settings)
    try:
        await guard.reserve("rapidapi-arraybobo", flow, 3)
    finally:
        await guard.aclose()
    key = new_key()
    overrides = {
        "api_keys": f"page:read:{key}",
        "redis_url": REDIS_URL,
        "budgets": json.dumps(settings.budgets),
    }
    async with own_facade(stack, **overrides) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/status", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    left = {row["budget"]: (row["limit"], row["spent"], row["remaining"]) for row in answer.json()["budgets"]}
    assert left == {f"flow:{flow}": (10, 3, 7), "source:rapidapi-arraybobo": (5, 3, 2)}
