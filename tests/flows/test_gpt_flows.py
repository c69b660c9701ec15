"""GPT enrichment: the OpenAI runtime against the sandbox over loopback HTTP, and the six flows end to end
(API, broker, worker, the sandbox's OpenAI-compatible endpoint, events, Postgres)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import pytest_asyncio

from agents.flows import gpt_rules as rules
from agents.flows.context import FlowContext, FlowTools
from agents.flows.gpt import (
    GptAnswerRejected,
    GptNotConfigured,
    GptRuntime,
    refresh_instagram_gpt_data_base_gender,
)
from app.embedded import free_port
from core.settings import load_settings
from providers.errors import AuthExpired, Forbidden, ProviderTimeout, ProviderUnavailable, QuotaExceeded
from providers.openai.chat import GptRequestRejected
from providers.sandbox import SandboxConfig, SandboxServer
from providers.sandbox import openai as sandbox_openai
from tests.support import unique, wait_terminal
from topics import names
from topics.models import ScrapeRequest, TraceLog
from topics.params import GptData, GptParams

PROFILE = names.PROFILE_LOG
KEY = "sk-beat-test-0123456789"
VERSION = "v0.12"
SOURCE = f"openapi_{VERSION}"
CATEGORY = "Sports"

# flow -> (the sandbox's question, the prompt section)
FLOWS = {
    "refresh_instagram_gpt_data_base_gender": (sandbox_openai.BASE_GENDER, rules.BASE_GENDER),
    "refresh_instagram_gpt_data_base_location": (sandbox_openai.BASE_LOCATION, rules.BASE_LOCATION),
    "refresh_instagram_gpt_data_base_categ_lang_topics": (
        sandbox_openai.BASE_CATEG_LANG_TOPICS,
        rules.BASE_CATEG_LANG_TOPICS,
    ),
    "refresh_instagram_gpt_data_audience_age_gender": (sandbox_openai.AUDIENCE_AGE_GENDER, rules.AUDIENCE_AGE_GENDER),
    "refresh_instagram_gpt_data_audience_cities": (sandbox_openai.AUDIENCE_CITIES, rules.AUDIENCE_CITIES),
    "refresh_instagram_gpt_data_gender_location_lang": (
        sandbox_openai.GENDER_LOCATION_LANG,
        rules.GENDER_LOCATION_LANG,
    ),
}
TEXT_COLUMNS = ("gender", "city", "state", "country")


def _params(flow: str, handle: str) -> dict[str, Any]:
    data: dict[str, Any] = {"handle": handle, "name": "Meera Rao", "bio": "Chai, clay and colour. Pune."}
    if flow.endswith("audience_age_gender"):
        data["category"] = CATEGORY
    return {"data": data}


def expected_dimensions(flow: str, handle: str) -> dict[str, Any]:
    """What the flow must store for ``handle``: the sandbox's answer, post-processed by the rules."""
    question, section = FLOWS[flow]
    answer = sandbox_openai.complete_answer(question, handle)
    seed = rules.seeded_random(VERSION, section, handle)
    if section == rules.AUDIENCE_AGE_GENDER:
        baseline = rules.load_baseline().for_category(CATEGORY)
        shares = rules.normalise_age_gender(answer["audience"]["age_gender"], baseline, seed)
        return {"handle": handle, "audience_gender_age": shares, "row_data": answer}
    if section == rules.AUDIENCE_CITIES:
        return {
            "handle": handle,
            "audience_city": rules.spread_cities(answer["audience"]["cities"], seed),
            "row_data": answer,
        }
    return answer


async def _row(pool, handle: str) -> Any:
    for _ in range(100):
        if row := await pool.fetchrow("SELECT * FROM instagram_gpt_enrichment WHERE handle = $1", handle):
            return row
        await asyncio.sleep(0.1)
    pytest.fail(f"no instagram_gpt_enrichment row for {handle}")


def _stored(row: Any, dimensions: dict[str, Any]) -> dict[str, Any]:
    """The row's columns that the dimensions name, decoded."""
    return {key: row[key] if key in TEXT_COLUMNS else json.loads(row[key]) for key in dimensions if key != "handle"}


async def _traces(events, stack, request_id: str, at_least: int = 1) -> list[dict]:
    return await events.events(request_id, stack.topic(names.TRACE_LOG), at_least=at_least)


# The six flows end to end


@pytest.mark.parametrize("flow", list(FLOWS))
async def test_each_flow_stores_its_answer_by_handle_and_never_an_account(flow, run_flow, stack, pool, events):
    handle = unique("gpt")
    result, [event], source = await run_flow(flow, _params(flow, handle), topic=PROFILE)
    expected = expected_dimensions(flow, handle)
    assert (result["prompt_version"], result["asks"], result["section"]) == (VERSION, 1, FLOWS[flow][1])
    assert source == SOURCE
    assert (event["kind"], event["source"], event["platform"], event["profile_id"], event["handle"]) == (
        "gpt_enrichment",
        SOURCE,
        "INSTAGRAM",
        handle,
        handle,
    )
    assert event["dimensions"] == expected

    row = await _row(pool, handle)
    assert row["source"] == SOURCE and _stored(row, expected) == {k: v for k, v in expected.items() if k != "handle"}
    assert (
        await pool.fetchval("SELECT count(*) FROM instagram_account WHERE handle = $1 OR profile_id = $1", handle) == 0
    )

    [trace] = await _traces(events, stack, event["request_id"])
    assert (trace["source"], trace["method"], trace["path"], trace["status"]) == (
        "openai",
        "POST",
        "/openai/v1/chat/completions",
        200,
    )


@pytest.mark.parametrize("flow", list(FLOWS))
async def test_an_incomplete_first_answer_is_asked_again(flow, run_flow, pool):
    handle = unique("reask")
    result, [event], _ = await run_flow(flow, _params(flow, handle), topic=PROFILE)
    assert result["asks"] == 2
    # The sandbox's second answer is complete; what the first got right is the same in both.
    assert event["dimensions"] == expected_dimensions(flow, handle)
    row = await _row(pool, handle)
    assert not any(isinstance(row[c], str) and row[c].strip().lower() in ("", "unknown") for c in TEXT_COLUMNS)
    assert "UNKNOWN" not in json.dumps(event["dimensions"]).upper()


@pytest.mark.parametrize(
    ("flow", "asks"),
    [
        ("refresh_instagram_gpt_data_base_location", 3),
        ("refresh_instagram_gpt_data_audience_cities", 3),
        ("refresh_instagram_gpt_data_gender_location_lang", 2),
    ],
)
async def test_garbage_fails_with_the_reason_and_writes_nothing(flow, asks, stack, pool, events):
    handle = unique("garbage")
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post("/requests", json={"flow": flow, "params": _params(flow, handle)})
    request_id = response.json()["id"]
    assert await wait_terminal(pool, [request_id], timeout=60) == {request_id: "FAILED"}
    error_type, message = await pool.fetchrow(
        "SELECT error_type, error_message FROM scrape_request_log WHERE id = $1", request_id
    )
    assert error_type == "GptAnswerRejected"
    assert message.startswith(f"openai: {flow}: no usable answer for '{handle}' in {asks} asks: answer 1: not JSON")
    assert message.count("not JSON") == asks and "I'm sorry" in message
    assert len(await _traces(events, stack, request_id, at_least=asks)) == asks
    assert await events.events(request_id, stack.topic(PROFILE), timeout=2) == []
    assert await pool.fetchval("SELECT count(*) FROM instagram_gpt_enrichment WHERE handle = $1", handle) == 0


async def test_several_objects_in_one_reply_take_the_creator_s(run_flow):
    flow = "refresh_instagram_gpt_data_gender_location_lang"
    # A creator whose fan account's answer (which comes first) says something else.
    handle = next(
        h
        for h in (unique("multi") for _ in range(50))
        if expected_dimensions(flow, f"{h}.fans") | {"handle": h} != expected_dimensions(flow, h)
    )
    result, [event], _ = await run_flow(flow, _params(flow, handle), topic=PROFILE)
    assert result["asks"] == 1 and event["dimensions"] == expected_dimensions(flow, handle)


@pytest.mark.parametrize(
    "flow", ["refresh_instagram_gpt_data_audience_age_gender", "refresh_instagram_gpt_data_audience_cities"]
)
async def test_post_processing_is_reproducible(flow, run_flow):
    handle = unique("again")
    _, [first], _ = await run_flow(flow, _params(flow, handle), topic=PROFILE)
    _, [second], _ = await run_flow(flow, _params(flow, handle), topic=PROFILE)
    assert first["request_id"] != second["request_id"]
    assert first["dimensions"] == second["dimensions"]
    # Not the raw answer: the numbers went through the post-processing.
    key = "audience_gender_age" if flow.endswith("age_gender") else "audience_city"
    raw = first["dimensions"]["row_data"]["audience"]
    assert first["dimensions"][key] != raw.get("age_gender", raw.get("cities"))


# The runtime against a sandbox of its own


@pytest.fixture(scope="module")
def own_sandbox():
    with SandboxServer(SandboxConfig()) as server:
        yield server


class Runtimes:
    """Builds runtimes against the module's sandbox, collecting their traces; closes them after the test."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self._sandbox = sandbox
        self.traces: list[TraceLog] = []
        self.built: list[GptRuntime] = []

    async def _record(self, trace: TraceLog) -> None:
        self.traces.append(trace)

    async def __call__(self, **settings: Any) -> GptRuntime:
        values = {"openai_base_url": f"{self._sandbox.url}/openai/v1", "openai_api_key": KEY, **settings}
        gpt = GptRuntime.from_settings(load_settings(**values), self._record)
        assert gpt is not None
        self.built.append(gpt)
        return gpt


@pytest_asyncio.fixture
async def runtime(own_sandbox):
    runtimes = Runtimes(own_sandbox)
    yield runtimes
    for gpt in runtimes.built:
        await gpt.aclose()
    await _configure(own_sandbox, SandboxConfig())


async def _configure(sandbox: SandboxServer, config: SandboxConfig) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        (await client.put("/_sandbox/config", json=config.model_dump(mode="json"))).raise_for_status()


DATA = GptData(handle="meera.makes", name="Meera Rao", bio="Chai, clay and colour")


async def test_one_ask_is_one_traced_call_without_secrets(runtime):
    gpt = await runtime()
    reply = await gpt.ask(rules.BASE_LOCATION, DATA, request_id="req-1")
    assert json.loads(reply) == sandbox_openai.complete_answer(sandbox_openai.BASE_LOCATION, "meera.makes")
    [trace] = runtime.traces
    assert (trace.request_id, trace.source, trace.path, trace.status, trace.error) == (
        "req-1",
        "openai",
        "/openai/v1/chat/completions",
        200,
        None,
    )
    assert KEY not in trace.model_dump_json()


async def test_azure_mode_calls_the_deployment(runtime, own_sandbox):
    gpt = await runtime(openai_api_type="azure", openai_base_url=own_sandbox.url, openai_model="beat-gpt35")
    reply = await gpt.ask(rules.BASE_GENDER, DATA)
    assert json.loads(reply)["handle"] == "meera.makes"
    assert runtime.traces[0].path == "/openai/deployments/beat-gpt35/chat/completions"


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (401, AuthExpired, "answered 401: the API key was refused"),
        (403, Forbidden, "answered 403"),
        (404, GptRequestRejected, "answered 404"),
        (500, ProviderUnavailable, "answered 500"),
        (429, QuotaExceeded, "answered 429"),
    ],
)
async def test_endpoint_errors_become_typed_provider_errors(runtime, own_sandbox, status, error, text):
    # A Retry-After past the SDK's two-minute ceiling: it does not wait to retry, and the value reaches us.
    await _configure(own_sandbox, SandboxConfig(fail_paths={"/openai": status}, fail_retry_after=150))
    gpt = await runtime()
    with pytest.raises(error) as failure:
        await gpt.ask(rules.BASE_GENDER, DATA, request_id="req-2")
    assert text in str(failure.value) and str(failure.value).startswith("openai: POST chat/completions")
    assert KEY not in str(failure.value) and KEY not in repr(failure.value.__cause__)
    if status == 429:
        assert failure.value.retry_after == 150
    # The SDK's one retry is for a passing 5xx; client errors are final.
    assert [t.status for t in runtime.traces] == [status] * (2 if status == 500 else 1)


async def test_a_hanging_endpoint_times_out(runtime, own_sandbox):
    await _configure(own_sandbox, SandboxConfig(hang_paths=["/openai"], hang_seconds=5))
    gpt = await runtime(http_timeout=0.3)
    with pytest.raises(ProviderTimeout, match="timed out"):
        await gpt.ask(rules.BASE_GENDER, DATA)
    assert [t.error for t in runtime.traces] == ["timeout", "timeout"]


async def test_an_unreachable_endpoint_is_unavailable(runtime):
    gpt = await runtime(openai_base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        await gpt.ask(rules.BASE_GENDER, DATA)
    assert runtime.traces and all(t.status is None and t.error for t in runtime.traces)


async def test_the_sandbox_wants_a_key_and_answers_in_openai_s_shape(own_sandbox):
    body = {
        "model": "gpt-3.5-turbo",
        "messages": [
            {"role": "system", "content": 'keys "handle", "gender"'},
            {"role": "user", "content": "https://www.instagram.com/zoya/"},
        ],
    }
    async with httpx.AsyncClient(base_url=f"{own_sandbox.url}/openai/v1") as client:
        refused = await client.post("/chat/completions", json=body)
        answered = await client.post("/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert refused.status_code == 401 and set(refused.json()["error"]) == {"message", "type", "param", "code"}
    completion = answered.json()
    assert (completion["object"], completion["model"], completion["choices"][0]["finish_reason"]) == (
        "chat.completion",
        "gpt-3.5-turbo",
        "stop",
    )
    assert completion["usage"]["total_tokens"] == (
        completion["usage"]["prompt_tokens"] + completion["usage"]["completion_tokens"]
    )
    assert json.loads(completion["choices"][0]["message"]["content"]) == {
        "handle": "zoya",
        "gender": sandbox_openai.complete_answer(sandbox_openai.BASE_GENDER, "zoya")["gender"],
    }


# Configuration


def test_without_a_key_or_an_endpoint_there_is_no_runtime():
    assert GptRuntime.from_settings(load_settings(openai_base_url="http://127.0.0.1:9/v1")) is None
    assert GptRuntime.from_settings(load_settings(openai_api_key=KEY)) is None


def test_a_missing_prompt_version_stops_the_start():
    with pytest.raises(rules.PromptsError, match=r"no prompts for version 'v9\.9'"):
        GptRuntime.from_settings(
            load_settings(prompt_version="v9.9", openai_api_key=KEY, openai_base_url="http://127.0.0.1:9/v1")
        )


async def test_a_flow_without_a_runtime_fails_clearly():
    ctx = FlowContext(
        request=ScrapeRequest(id="r1", params={}),
        crawler=None,  # type: ignore[arg-type]
        tools=FlowTools(),
    )
    with pytest.raises(GptNotConfigured, match="GPT enrichment is not configured: set BEAT_OPENAI_API_KEY"):
        await refresh_instagram_gpt_data_base_gender(ctx, GptParams(data=DATA))
    assert ctx.events == []


async def test_an_answer_rejected_in_process_emits_nothing(runtime):
    gpt = await runtime()
    ctx = FlowContext(
        request=ScrapeRequest(id="r2", params={}),
        crawler=None,  # type: ignore[arg-type]
        tools=FlowTools(gpt=gpt),
    )
    with pytest.raises(GptAnswerRejected, match="in 3 asks"):
        await refresh_instagram_gpt_data_base_gender(ctx, GptParams(data=GptData(handle=unique("garbage"))))
    assert ctx.events == [] and len(runtime.traces) == 3
