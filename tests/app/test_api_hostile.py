"""The facade against hostile input, over real HTTP: never a 5xx, never a dropped connection, never a stray row.

Also: flows that do not run are refused at the door (both route families and ``beat submit``),
records are sized before they are written, and readiness reports a dependency outage while
liveness stays up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from core.api_keys import new_key
from core.requests import TooLarge, check_fits, prepare
from core.settings import Settings
from tests.support import TcpProxy, run_beat, running_api, unique
from topics.flows import FLOWS
from topics.limits import INT32_MAX, INT32_MIN, MAX_TEXT, PARAM_INT_MAX, PARAM_INT_MIN

SEED = 20240611
PAST = (datetime.now(UTC) - timedelta(days=1)).isoformat()
ENABLED = [name for name, spec in FLOWS.items() if spec.enabled]
# The stack runs with the default message limit.
LIMIT = Settings.model_fields["max_message_bytes"].default

HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\udc80\ud800z",
    "",
    " ",
    "é",
    "😀",
    "\u202e\u200b",
    "A" * (MAX_TEXT + 1),
    "A" * 20_000,
    "' OR 1=1 --",
    "%00",
    "\\u0000",
    "\r\n",
    "\x7f\x1b[31m",
]
HOSTILE_NUMBERS: list[Any] = [
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    -1,
    0,
    12,
    1.5,
    -0.0,
    1e308,
    "NaN",
    "Infinity",
    "-Infinity",
    "12",
    True,
]
WRONG_TYPES: list[Any] = [None, 1, 1.5, True, [], {}, [1, "a"], {"a": 1}, "x"]


def _surrogate(text: str) -> bool:
    return any(0xD800 <= ord(char) <= 0xDFFF for char in text)


def unstorable_text(value: Any) -> bool:
    """Text no status row can hold: the facade must refuse it."""
    return isinstance(value, str) and ("\x00" in value or _surrogate(value) or len(value) > MAX_TEXT)


def unstorable_json(value: Any) -> bool:
    """A params value the request log cannot hold: the facade must refuse it."""
    if isinstance(value, str):
        return "\x00" in value or _surrogate(value)
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return not PARAM_INT_MIN <= value <= PARAM_INT_MAX
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(unstorable_json(k) or unstorable_json(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable_json(item) for item in value)
    return True


def as_int(value: Any) -> int | None:
    """What pydantic's lax mode reads as an int, or None when it reads none."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value == int(value) else None
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def bad_int32(value: Any) -> bool:
    number = as_int(value)
    return number is None or not INT32_MIN <= number <= INT32_MAX


def dump(body: Any) -> bytes:
    # Lone surrogates pass as JSON escapes, as a hostile client would send them; NaN as the bare literal.
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()


@dataclass
class Case:
    name: str
    method: str
    path: str
    content: bytes | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    must_refuse: bool = False
    legacy: bool = False


def beat_cases(tag: str, rng: random.Random) -> Iterator[Case]:
    """POST /requests: every field with every hostile value, then seeded combinations."""
    serial = itertools.count()

    def base() -> tuple[int, dict[str, Any]]:
        n = next(serial)
        return n, {
            "flow": "refresh_profile_custom",
            "params": {"handle": f"{tag}_{n}", "max_posts": 3},
            "idempotency_key": f"{tag}-{n}",
            "expires_at": PAST,
        }

    def case(name: str, body: Any, must_refuse: bool) -> Case:
        return Case(name, "POST", "/requests", dump(body), {"content-type": "application/json"}, must_refuse)

    text_fields = ("flow", "id", "account_id", "idempotency_key", "platform", "expires_at")
    for field_name, value in itertools.product(text_fields, HOSTILE_TEXT):
        n, body = base()
        # The caller's own ids keep the run's tag, so a row written for them is found.
        body[field_name] = f"{tag}{value}" if field_name in ("id", "account_id", "idempotency_key") else value
        yield case(f"{field_name}={value[:20]!r}", body, unstorable_text(body[field_name]) or field_name == "flow")
    for value in HOSTILE_TEXT:
        n, body = base()
        body["params"]["handle"] = f"{tag}_{n}{value}"
        yield case(f"params.handle={value[:20]!r}", body, unstorable_json(value))
        n, body = base()
        body["params"][value] = 1
        yield case(f"params key {value[:20]!r}", body, True)  # no flow takes such a parameter
    for value in HOSTILE_NUMBERS:
        n, body = base()
        body["priority"] = value
        yield case(f"priority={value!r}", body, bad_int32(value))
        n, body = base()
        body["params"]["max_posts"] = value
        yield case(f"params.max_posts={value!r}", body, unstorable_json(value) or as_int(value) is None)
    for field_name, value in itertools.product(("flow", "params", "id", "priority", "expires_at"), WRONG_TYPES):
        n, body = base()
        body[field_name] = value
        yield case(f"{field_name} as {value!r}", body, field_name in ("flow", "params"))
    for _ in range(40):
        n, body = base()
        for field_name in rng.sample(["id", "account_id", "priority", "params"], k=rng.randint(2, 4)):
            hostile = rng.choice(HOSTILE_TEXT + HOSTILE_NUMBERS)
            if field_name == "params":
                body["params"][rng.choice(["handle", "max_posts", "extra"])] = hostile
            else:
                body[field_name] = f"{tag}{hostile}" if field_name != "priority" else hostile
        yield case(f"combination {n}: {body!r:.200}", body, False)


def legacy_cases(tag: str, rng: random.Random) -> Iterator[Case]:
    """POST /scrape_request_log/flow/{flow}: the legacy body, header and path, each hostile in turn."""
    serial = itertools.count()

    def base() -> tuple[str, dict[str, Any], dict[str, Any]]:
        n = next(serial)
        body = {
            "flow": "refresh_post_by_shortcode",
            "platform": "INSTAGRAM",
            "params": {"shortcode": f"{tag}_{n}"},
            "priority": 2,
            "expires_at": PAST,
        }
        return "/scrape_request_log/flow/refresh_post_by_shortcode", body, {"x-bb-account-id": f"{tag}-{n}"}

    def case(name: str, path: str, body: Any, headers: dict[str, Any], must_refuse: bool) -> Case:
        return Case(
            name, "POST", path, dump(body), {"content-type": "application/json", **headers}, must_refuse, legacy=True
        )

    for field_name, value in itertools.product(("flow", "platform", "expires_at"), HOSTILE_TEXT):
        path, body, headers = base()
        body[field_name] = value
        yield case(
            f"legacy {field_name}={value[:20]!r}", path, body, headers, field_name != "platform" and value != ""
        )  # an empty flow falls back to the path's
    for value in HOSTILE_TEXT:
        path, body, headers = base()
        del body["flow"]
        if value:  # an empty segment is another URL, not a legacy route
            yield case(
                f"legacy path flow {value[:20]!r}",
                "/scrape_request_log/flow/" + quote(value.encode("utf-8", "surrogatepass"), safe=""),
                body,
                headers,
                True,
            )
        path, body, headers = base()
        body["params"]["shortcode"] += value
        yield case(f"legacy params.shortcode+{value[:20]!r}", path, body, headers, unstorable_json(value))
    for value in HOSTILE_NUMBERS + WRONG_TYPES:
        path, body, headers = base()
        body["priority"] = value
        yield case(f"legacy priority={value!r}", path, body, headers, value is not None and bad_int32(value))
        path, body, headers = base()
        body["params"] = value
        yield case(f"legacy params={value!r}", path, body, headers, not (isinstance(value, dict) and value))
    odd_headers: list[Any] = [b"caf\xe9", b"\xff\xfe", "A" * (MAX_TEXT + 1), "", "a\tb", b"\x80" * 10, "%00"]
    for value in odd_headers:
        path, body, headers = base()
        yield case(
            f"legacy x-bb-account-id={value[:20]!r}",
            path,
            body,
            {"x-bb-account-id": value},
            isinstance(value, str) and len(value) > MAX_TEXT,
        )
    for _ in range(20):
        path, body, headers = base()
        body["params"]["shortcode"] = f"{tag}{rng.choice(HOSTILE_TEXT)}"
        body["priority"] = rng.choice(HOSTILE_NUMBERS)
        yield case(f"legacy combination {body!r:.200}", path, body, headers, False)


def raw_cases(tag: str, limit: int) -> Iterator[Case]:
    """Bodies no JSON encoder writes, for both submit routes."""
    handle = f'"{tag}_raw"'.encode()
    deep = (
        b'{"flow": "refresh_profile_basic", "params": {"handle": '
        + handle
        + b', "d": '
        + b"[" * 10_000
        + b"]" * 10_000
        + b"}}"
    )
    oversized_record = dump(
        {
            "flow": "refresh_profile_basic",
            "params": {"handle": f"{tag}_" + "h" * (limit * 6 // 10)},
            "idempotency_key": f"{tag}-oversized-record",
            "expires_at": PAST,
        }
    )
    bodies = {
        "truncated JSON": b'{"flow": "refresh_profile_basic", "params": {"handle": ',
        "invalid UTF-8": b'{"flow": "refresh_profile_basic", "params": {"handle": "\xff\xfe' + handle[1:] + b"}}",
        "UTF-16": '{"flow": "refresh_profile_basic", "params": {}}'.encode("utf-16"),
        "empty": b"",
        "null": b"null",
        "array": b"[]",
        "string": b'"refresh_profile_basic"',
        "NaN literal": b'{"flow": "refresh_profile_basic", "params": {"handle": ' + handle + b', "x": NaN}}',
        "1e400": b'{"flow": "refresh_profile_basic", "params": {"handle": ' + handle + b'}, "priority": 1e400}',
        "5000 digits": b'{"flow": "refresh_profile_basic", "params": {"handle": '
        + handle
        + b'}, "priority": '
        + b"9" * 5000
        + b"}",
        "10,000 deep": deep,
        "1 MiB handle": dump({"flow": "refresh_profile_basic", "params": {"handle": f"{tag}_" + "h" * 2**20}}),
        "record over the limit, body under it": oversized_record,
    }
    for name, content in bodies.items():
        yield Case(f"raw {name}", "POST", "/requests", content, {"content-type": "application/json"}, True)
        yield Case(
            f"legacy raw {name}",
            "POST",
            "/scrape_request_log/flow/refresh_profile_basic",
            content,
            {"content-type": "application/json", "x-bb-account-id": f"{tag}-raw"},
            True,
            legacy=True,
        )
    yield Case("no content type", "POST", "/requests", b'{"flow": "refresh_profile_basic"}', {}, True)


def get_cases(tag: str) -> Iterator[Case]:
    # An empty segment is another URL (a redirect to the collection), not a hostile id.
    for value in [*filter(None, HOSTILE_TEXT), f"{tag}-missing"]:
        segment = quote(value.encode("utf-8", "surrogatepass"), safe="")
        for template in ("/requests/{}", "/requests/{}/timeline", "/flows/{}"):
            yield Case(f"GET {template.format(repr(value[:20]))}", "GET", template.format(segment), must_refuse=True)
        yield Case(
            f"legacy GET {value[:20]!r}", "GET", f"/scrape_request_log/flow/{segment}", must_refuse=True, legacy=True
        )
    for beat in ("%00", "2", "", "yes%ff"):
        yield Case(f"PUT /heartbeat?beat={beat}", "PUT", f"/heartbeat?beat={beat}", must_refuse=True)


@dataclass
class Outcome:
    case: Case
    status: int | None = None
    body: Any = None
    error: str | None = None


async def send(client: httpx.AsyncClient, case: Case) -> Outcome:
    try:
        response = await client.request(case.method, case.path, content=case.content, headers=case.headers)
    except httpx.TransportError as exc:  # a dropped connection, a reset, a timeout
        return Outcome(case, error=f"{type(exc).__name__}: {exc}")
    try:
        body = response.json()
    except ValueError:
        return Outcome(case, response.status_code, error=f"not JSON: {response.text[:200]!r}")
    return Outcome(case, response.status_code, body)


def accepted_id(outcome: Outcome) -> str | None:
    """The request id a submission was accepted under, or None when it was refused."""
    if outcome.case.legacy:
        if outcome.status == 200 and outcome.body.get("status", {}).get("type") == "SUCCESS":
            return outcome.body["scrape_id"]
        return None
    return outcome.body["id"] if outcome.status == 202 else None


def refusal_problem(outcome: Outcome) -> str | None:
    """What is wrong with how a refusal was answered, or None."""
    if outcome.case.legacy:
        status = outcome.body.get("status", {}) if isinstance(outcome.body, dict) else {}
        if outcome.status != 200 or status.get("type") != "ERROR" or status.get("code") not in (400, 404, 413, 422):
            return f"legacy refusal answered {outcome.status} {str(outcome.body)[:200]}"
        return None
    if not 400 <= (outcome.status or 0) < 500 or not isinstance(outcome.body, dict) or "detail" not in outcome.body:
        return f"refusal answered {outcome.status} {str(outcome.body)[:200]}"
    return None


async def test_hostile_input_never_costs_a_5xx_a_connection_or_a_row(stack, pool):
    tag = unique("hostile")
    rng = random.Random(SEED)
    cases = [*beat_cases(tag, rng), *legacy_cases(tag, rng), *raw_cases(tag, LIMIT), *get_cases(tag)]
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        outcomes = [await send(client, case) for case in cases]
        assert (await client.get("/heartbeat")).status_code == 200  # no hostile PUT changed the drain state

    broken = [
        f"{o.case.name}: {o.error or o.status}" for o in outcomes if o.error or o.status is None or o.status >= 500
    ]
    assert not broken, f"{len(broken)} of {len(outcomes)} broke the facade:\n" + "\n".join(broken[:20])
    accepted = [accepted_id(o) if o.case.method == "POST" else None for o in outcomes]
    wrongly_accepted = [
        o.case.name for o, request_id in zip(outcomes, accepted, strict=True) if o.case.must_refuse and request_id
    ]
    assert not wrongly_accepted, wrongly_accepted
    badly_refused = [
        f"{o.case.name}: {problem}"
        for o, request_id in zip(outcomes, accepted, strict=True)
        if not request_id
        for problem in [refusal_problem(o)]
        if problem
    ]
    assert not badly_refused, "\n".join(badly_refused[:20])

    accepted_ids = {request_id for request_id in accepted if request_id}
    assert len(accepted_ids) >= 20  # the fuzz also proves that odd but storable values get through
    rows = await pool.fetch(
        "SELECT id FROM scrape_request_log WHERE id LIKE $1 OR idempotency_key LIKE $1 OR account_id LIKE $1 "
        "OR params::text LIKE $2",
        f"{tag}%",
        f"%{tag}%",
    )
    assert {row["id"] for row in rows} == accepted_ids  # every refusal left no row, every acceptance one

    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        for request_id in sorted(accepted_ids):
            if "/" in request_id:
                continue
            found = await client.get("/requests/" + quote(request_id, safe=""))
            assert found.status_code == 200 and found.json()["id"] == request_id, found.text[:200]


@asynccontextmanager
async def own_api(stack, name: str, **settings: str) -> AsyncIterator[str]:
    """A ``beat api`` of its own beside the stack's (same broker, database unless overridden); yields its URL."""
    env = {**stack.env, **{f"BEAT_{k.upper()}": v for k, v in settings.items()}}
    log_path = stack.session_dir / "logs" / f"api-{name}-{uuid.uuid4().hex[:6]}.log"
    async with running_api(env, log_path) as (url, _):
        yield url


async def test_the_largest_record_that_fits_is_produced_and_one_byte_more_leaves_no_row(stack, pool):
    tag = unique("fits")

    def body(request_id: str, handle_size: int) -> dict[str, Any]:
        return {
            "flow": "refresh_profile_basic",
            "params": {"handle": f"{tag}_" + "h" * handle_size},
            "id": request_id,
            "expires_at": PAST,
        }

    def fits(request_id: str, handle_size: int) -> bool:
        fields = body(request_id, handle_size)
        request = prepare(fields.pop("flow"), fields.pop("params"), **fields)
        try:
            check_fits(request, LIMIT)
        except TooLarge:
            return False
        return True

    low, high = 0, LIMIT  # fits(low) and not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits("x" * 36, middle) else (low, middle)
    largest, over = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        accepted = await client.post("/requests", json=body(largest, low))
        refused = await client.post("/requests", json=body(over, low + 1))
    assert accepted.status_code == 202, accepted.text[:300]
    # enqueued: the producer took a record the size of the limit, key included
    assert await pool.fetchval("SELECT enqueued FROM scrape_request_log WHERE id = $1", largest) is True
    assert refused.status_code == 413 and "message limit" in refused.json()["detail"]
    assert await pool.fetchval("SELECT count(*) FROM scrape_request_log WHERE id = $1", over) == 0


async def test_flows_that_do_not_run_are_refused_naming_those_that_do(stack, pool):
    tag = unique("refused")
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        for flow, reason in (("no_such_flow", "unknown flow"),):
            answer = await client.post(
                "/requests", json={"flow": flow, "params": {"channel_id": tag}, "idempotency_key": f"{tag}-{flow}"}
            )
            assert answer.status_code == 422, answer.text[:300]
            detail = answer.json()["detail"]
            assert reason in detail["message"] and flow in detail["message"]
            assert detail["enabled_flows"] == ENABLED
            for path, legacy_body in (
                (f"/scrape_request_log/flow/{flow}", {"params": {"channel_id": tag}}),
                (
                    "/scrape_request_log/flow/refresh_profile_basic",  # the body's flow wins
                    {"flow": flow, "params": {"channel_id": tag}},
                ),
            ):
                legacy = await client.post(path, json=legacy_body, headers={"x-bb-account-id": tag})
                status = legacy.json()["status"]
                assert legacy.status_code == 200 and status["type"] == "ERROR" and status["code"] == 422
                assert reason in status["message"] and all(name in status["message"] for name in ENABLED)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM scrape_request_log WHERE idempotency_key LIKE $1 "
            "OR account_id = $2 OR params::text LIKE $3",
            f"{tag}%",
            tag,
            f"%{tag}%",
        )
        == 0
    )


async def test_configured_disabled_flows_are_refused_at_the_api_and_by_beat_submit(stack, pool):
    tag = unique("switched_off")
    disabled = json.dumps(["refresh_profile_basic"])
    enabled = [name for name in ENABLED if name != "refresh_profile_basic"]
    async with own_api(stack, "disabled", disabled_flows=disabled) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/requests", json={"flow": "refresh_profile_basic", "params": {"handle": tag}})
        assert answer.status_code == 422 and answer.json()["detail"]["enabled_flows"] == enabled
        assert (await client.get("/flows/refresh_profile_basic")).json()["enabled"] is False

    def submit(flow: str, param: str, **settings: str) -> subprocess.CompletedProcess:
        env = {**stack.env, **{f"BEAT_{k.upper()}": v for k, v in settings.items()}}
        return run_beat(env, "submit", flow, param, timeout=60)

    for result, reason, listed in (
        (await asyncio.to_thread(submit, "no_such_flow", f"channel_id={tag}"), "unknown flow", ENABLED),
        (
            await asyncio.to_thread(submit, "refresh_profile_basic", f"handle={tag}", disabled_flows=disabled),
            "BEAT_DISABLED_FLOWS",
            enabled,
        ),
    ):
        assert result.returncode == 2 and not result.stdout, result.stdout + result.stderr
        assert reason in result.stderr and f"enabled flows: {', '.join(listed)}" in result.stderr
    assert await pool.fetchval("SELECT count(*) FROM scrape_request_log WHERE params::text LIKE $1", f"%{tag}%") == 0


async def _poll(client: httpx.AsyncClient, path: str, status: int, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_readiness_names_postgres_when_it_is_cut_while_liveness_stays_up(stack):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "broker": "ok"}

    target = urlsplit(stack.database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    proxied = proxy.url(stack.database_url)
    try:
        async with own_api(stack, "readyz", database_url=proxied) as url, httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/readyz")).status_code == 200
            proxy.cut()
            down = await _poll(client, "/readyz", 503, timeout=10)
            assert down.status_code == 503 and down.json()["down"] == ["postgres"], down.text
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            proxy.restore()  # Postgres is back: readiness follows without a restart
            assert (await _poll(client, "/readyz", 200, timeout=15)).status_code == 200
    finally:
        proxy.stop()


def _schemathesis_failures(api_url: str, key: str) -> list[str]:
    """Run schemathesis's generated cases (valid and invalid by the schema), sent with a key of every scope,
    against every operation; return the failures: a server error, or an answer its schema does not describe."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json", timeout=10)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(
                # A route that runs a flow per call (marked x-beat-refreshes) gets fewer cases: each costs a run.
                max_examples=4 if operation.definition.raw.get("x-beat-refreshes") else 40,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

            try:
                check()
            except Unsatisfiable:  # no input breaks the schema of an operation without constrained inputs
                assert mode is schemathesis.GenerationMode.NEGATIVE
            except Exception as exc:  # noqa: BLE001 - a failing example, or a dropped connection
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    return failures


async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(stack):
    # A facade of its own: it needs a key (the stack's runs without one), and PUT /heartbeat drains only it.
    key = new_key()
    # A refresh still running after 3 s answers code 504 with its id (a documented answer), so a fuzzed refresh
    # costs the run at most that.
    async with own_api(stack, "fuzz", api_keys=f"fuzz:submit,read,admin:{key}", api_refresh_timeout="3") as url:
        failures = await asyncio.to_thread(_schemathesis_failures, url, key)
    assert not failures, "\n\n".join(failures)
