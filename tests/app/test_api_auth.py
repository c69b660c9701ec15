"""API keys on the facade, over real HTTP against ``beat api`` processes and a database of their own.

The route walk reads the app's own route table, so a route added later is checked without anyone
listing it here: it must answer 401 without a key or with a wrong one, 403 with a key that lacks its
scope, and let a key with the scope through, unless it is on the open list.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from fastapi.routing import iter_route_contexts

from app.api import create_api
from app.api_errors import LegacyRoute, guard_input
from app.auth import KeyRing, NotExposable, check_exposure, is_loopback
from app.embedded import free_port
from core.api_keys import key_hash, new_key, parse_env_keys
from core.settings import Settings, load_settings
from core.topic_admin import all_topics, ensure_topics
from providers.sandbox.seeds import sandbox_base_urls
from tests.support import ROOT, BeatProcess, TcpProxy, beat_env, migrated_database, run_beat, running_api
from topics.flows import FLOWS

# One key per scope by environment; the Postgres key of each test is made through `beat keys create`.
ENV_KEYS = {scope: new_key() for scope in ("submit", "read", "admin")}
ENV_SETTING = ";".join(f"only-{scope}:{scope}:{key}" for scope, key in ENV_KEYS.items())
# The open list, as the issue states it; anything else the route table holds must be protected.
OPEN = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/heartbeat"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/"),
}
# The status page and its assets under /ui/ (a mount, which the route walk does not list).
OPEN_PAGES = ["/", "/ui/", "/ui/status.js", "/ui/status.css"]
# Routes that need more than their method's default scope.
ADMIN_ROUTES = {
    ("PUT", "/heartbeat"),
    ("POST", "/requests/{request_id}/retry"),
    ("POST", "/scrape_request_log/flow/update/{scrape_id}"),
}
REFRESH = 0.5
# A refusal is immediate; an authorized call still running after this long has passed the check.
PAST_THE_CHECK = 3.0
# An address others can reach (what the facade must refuse without keys; nothing here binds to it).
EVERYWHERE = "0.0.0.0"  # noqa: S104


def expected_scope(method: str, path: str) -> str:
    if (method, path) in ADMIN_ROUTES:
        return "admin"
    return "read" if method in ("GET", "HEAD") else "submit"


def route_table() -> list[tuple[str, str, bool]]:
    """(method, path template, legacy?) of every route the facade serves, from its own route table."""
    api = create_api(Settings(database_url="postgresql://127.0.0.1/unused", kafka_url="127.0.0.1:1"))
    return [
        (method, context.path_format, isinstance(context.original_route, LegacyRoute))
        for context in iter_route_contexts(api.routes)
        for method in sorted(getattr(context, "methods", None) or ())
        if method != "HEAD"
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-thing", path)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def beat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run_beat(env, *args, timeout=60)


# One topic prefix for the module's facades: a role starts only once its topics exist.
PREFIX = f"auth{uuid.uuid4().hex[:6]}."


@pytest.fixture(scope="module")
async def auth_topics(broker: str) -> str:
    settings = load_settings(kafka_url=broker, topic_prefix=PREFIX)
    await ensure_topics(broker, all_topics(settings, FLOWS))
    return PREFIX


@pytest.fixture(scope="module")
def keyed_database() -> Iterator[str]:
    # Keys made here must not reach the session's stack, whose tests run without one.
    with migrated_database("beat_auth") as url:
        yield url


@asynccontextmanager
async def facade(env: dict[str, str], log_dir: Any, name: str) -> AsyncIterator[tuple[str, BeatProcess]]:
    """A ``beat api`` with ``env`` on a port of its own; yields its URL once it answers, and the process."""
    async with running_api(env, log_dir / f"api-{name}.log") as running:
        yield running


def auth_env(broker: str, database_url: str, tmp_path: Any, **settings: str) -> dict[str, str]:
    # A route the walk lets through that calls a provider reaches a closed port, never a real host.
    return beat_env(
        provider_base_urls=sandbox_base_urls(f"http://127.0.0.1:{free_port()}"),
        kafka_url=broker,
        database_url=database_url,
        topic_prefix=PREFIX,
        data_dir=str(tmp_path / "data"),
        api_key_refresh=str(REFRESH),
        log_level="DEBUG",
        **settings,
    )


def refusal(response: httpx.Response, status: int, legacy: bool) -> str | None:
    """What is wrong with an auth refusal, or None."""
    if response.status_code != status:
        return f"answered {response.status_code}, not {status}: {response.text[:200]}"
    body = response.json()
    envelope = body.get("status") if isinstance(body.get("status"), dict) else {}
    if legacy and envelope != {"type": "ERROR", "message": envelope.get("message"), "code": status}:
        return f"not the legacy envelope: {body}"
    if not legacy and not isinstance(body.get("detail"), str):
        return f"no detail: {body}"
    if status == 401 and response.headers.get("www-authenticate") != "Bearer":
        return "no WWW-Authenticate: Bearer"
    return None


@pytest.mark.usefixtures("auth_topics")
async def test_every_route_needs_a_key_with_its_scope_and_the_open_list_is_open(broker, keyed_database, tmp_path):
    env = auth_env(broker, keyed_database, tmp_path, api_keys=ENV_SETTING)
    made = beat(env, "keys", "create", "--name", "walker", "--scopes", "submit,read,admin")
    assert made.returncode == 0, made.stderr
    stored_key = made.stdout.strip()
    table = route_table()
    assert {(m, p) for m, p, _ in table} >= OPEN | ADMIN_ROUTES | {("POST", "/requests")}  # the walk sees them
    problems = []
    async with facade(env, tmp_path, "walk") as (url, proc), httpx.AsyncClient(base_url=url, timeout=10) as client:
        for method, path, legacy in table:
            target = concrete(path) + ("?beat=true" if path == "/heartbeat" else "")

            async def call(headers: dict[str, str], method: str = method, target: str = target) -> httpx.Response:
                return await client.request(method, target, headers=headers, json={} if method != "GET" else None)

            where = f"{method} {path}"
            if (method, path) in OPEN:
                answer = await call({})
                if answer.status_code in (401, 403):
                    problems.append(f"{where} is on the open list but answered {answer.status_code}")
                continue
            needed = expected_scope(method, path)
            checks = {
                "no key": (await call({}), 401),
                "a wrong key": (await call(bearer(new_key())), 401),
                "a wrong x-api-key": (await call({"x-api-key": "beat_" + "x" * 40}), 401),
                "a bearer without a key": (await call({"Authorization": "Bearer"}), 401),
                "the key under another scheme": (await call({"Authorization": f"Basic {ENV_KEYS[needed]}"}), 401),
            }
            for scope, key in ENV_KEYS.items():
                if scope != needed:
                    checks[f"an env key without {needed}"] = (await call(bearer(key)), 403)
            for what, (answer, status) in checks.items():
                problem = refusal(answer, status, legacy)
                if problem:
                    problems.append(f"{where} with {what}: {problem}")
            # Through with the scope, by either header, from either source: whatever the route says then (a
            # route still at work after a moment, such as one waiting on a refresh, is past the check too).
            for what, headers in (
                ("the env key by bearer", bearer(ENV_KEYS[needed])),
                ("the env key by x-api-key", {"x-api-key": ENV_KEYS[needed]}),
                ("the Postgres key", bearer(stored_key)),
            ):
                try:
                    answer = await asyncio.wait_for(call(headers), PAST_THE_CHECK)
                except TimeoutError:
                    continue
                if answer.status_code in (401, 403):
                    problems.append(f"{where} with {what} answered {answer.status_code}: {answer.text[:200]}")

        for page in OPEN_PAGES:
            answer = await client.get(page)
            if answer.status_code in (401, 403):
                problems.append(f"GET {page} is open but answered {answer.status_code}")
        # A path no route has is refused too (a new kind of route cannot slip through the matching).
        for method in ("GET", "POST", "DELETE"):
            problem = refusal(await client.request(method, "/no/such/route"), 401, legacy=False)
            if problem:
                problems.append(f"{method} /no/such/route: {problem}")

        document = (await client.get("/openapi.json")).json()
        assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}
        for method, path, _ in table:
            operation = document["paths"].get(path, {}).get(method.lower())
            if operation is None:
                assert (method, path) in OPEN, f"{method} {path} is not in the document"  # the docs' own pages
            elif (method, path) in OPEN:
                assert operation["security"] == [], (method, path)
            else:
                assert operation["x-beat-scope"] == expected_scope(method, path), (method, path)
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
    assert not problems, "\n".join(problems)

    # Nothing logged any key: every one of them went through this process's DEBUG log.
    log_text = proc.log_path.read_text(errors="replace")
    assert "Uvicorn running" in log_text  # the log is this process's, written at DEBUG
    for key in [*ENV_KEYS.values(), stored_key]:
        assert key not in log_text and key_hash(key) not in log_text
    assert stored_key not in made.stderr


@pytest.mark.usefixtures("auth_topics")
async def test_beat_keys_create_list_and_revoke_through_the_cli(broker, keyed_database, tmp_path):
    env = auth_env(broker, keyed_database, tmp_path)
    name = f"cli-{uuid.uuid4().hex[:6]}"
    made = beat(env, "keys", "create", "--name", name, "--scopes", "read")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("beat_") and len(key) > 40 and key not in made.stderr
    assert "shown only this once" in made.stderr
    again = beat(env, "keys", "create", "--name", name, "--scopes", "read")
    assert again.returncode == 1 and "already named" in again.stderr
    bad = beat(env, "keys", "create", "--name", "x", "--scopes", "read,root")
    assert bad.returncode == 2 and "unknown scope root" in bad.stderr

    pool = await asyncpg.create_pool(keyed_database, min_size=1, max_size=1)
    try:
        row = await pool.fetchrow("SELECT id, hash, scopes FROM api_key WHERE name = $1", name)
        assert row["hash"] == key_hash(key) and row["scopes"] == ["read"]  # the hash, never the key
        assert await pool.fetchval("SELECT count(*) FROM api_key WHERE hash = $1 OR name = $1", key) == 0

        async with facade(env, tmp_path, "cli") as (url, _), httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/flows/refresh_profile_basic", headers=bearer(key))).status_code == 200
            # A key made while the facade runs works within the refresh interval.
            later = beat(env, "keys", "create", "--name", f"{name}-later", "--scopes", "submit")
            late_key = later.stdout.strip()
            answer = await _poll(client, "POST", "/requests", bearer(late_key), lambda s: s == 422)
            assert answer.status_code == 422  # through auth, refused for its empty body

            listed = beat(env, "keys", "list")
            assert listed.returncode == 0 and name in listed.stdout and key not in listed.stdout
            assert row["hash"] not in listed.stdout
            # The facade dates a key's use a refresh or two after it.
            deadline = time.monotonic() + 10
            while await pool.fetchval("SELECT last_used_at FROM api_key WHERE id = $1", row["id"]) is None:
                assert time.monotonic() < deadline, "last_used_at never written"
                await asyncio.sleep(0.2)

            revoked = beat(env, "keys", "revoke", name)
            assert revoked.returncode == 0, revoked.stderr
            started = time.monotonic()
            answer = await _poll(client, "GET", "/flows/refresh_profile_basic", bearer(key), lambda s: s == 401)
            assert answer.status_code == 401 and time.monotonic() - started < 5 * REFRESH + 3
            assert (await client.get("/flows/refresh_profile_basic", headers=bearer(late_key))).status_code == 403

        assert beat(env, "keys", "revoke", name).returncode == 1  # already revoked: no live key of that name
        late_id = await pool.fetchval("SELECT id FROM api_key WHERE name = $1", f"{name}-later")
        assert beat(env, "keys", "revoke", str(late_id)).returncode == 0  # by id
        assert name not in _names(beat(env, "keys", "list").stdout)
        assert {name, f"{name}-later"} <= set(_names(beat(env, "keys", "list", "--revoked").stdout))
    finally:
        await pool.close()


def _names(listing: str) -> list[str]:
    return [line.split()[1] for line in listing.splitlines()[1:]]


async def _poll(client: httpx.AsyncClient, method: str, path: str, headers: dict, done: Any) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        answer = await client.request(method, path, headers=headers, json={} if method != "GET" else None)
        if done(answer.status_code) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.1)


@pytest.mark.usefixtures("auth_topics")
async def test_env_keys_and_the_last_postgres_keys_work_through_a_postgres_outage(broker, keyed_database, tmp_path):
    env = auth_env(broker, keyed_database, tmp_path, api_keys=ENV_SETTING)
    made = beat(env, "keys", "create", "--name", f"outage-{uuid.uuid4().hex[:6]}", "--scopes", "read")
    stored_key = made.stdout.strip()
    target = urlsplit(keyed_database)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    try:
        proxied = {**env, "BEAT_DATABASE_URL": proxy.url(keyed_database)}
        async with facade(proxied, tmp_path, "outage") as (url, proc), httpx.AsyncClient(base_url=url) as client:
            flow = "/flows/refresh_profile_basic"
            assert (await client.get(flow, headers=bearer(stored_key))).status_code == 200
            proxy.cut()
            deadline = time.monotonic() + 20  # a reload meets the outage (a connection attempt may wait 5 s)
            while "cannot read the API keys from Postgres" not in proc.log_path.read_text():
                assert time.monotonic() < deadline, proc.log_tail()
                await asyncio.sleep(0.2)
            assert (await client.get(flow, headers=bearer(ENV_KEYS["read"]))).status_code == 200
            assert (await client.get(flow, headers=bearer(stored_key))).status_code == 200
            assert (await client.get(flow, headers=bearer(new_key()))).status_code == 401
            proxy.restore()
    finally:
        proxy.stop()


def test_env_keys_are_checked_at_start_without_echoing_them(tmp_path):
    secret = new_key()
    for setting, complaint in (
        (f"ops:read,root:{secret}", "unknown scope root"),
        (f"ops:read{secret}", "expected name:scope,scope:key"),
        ("ops:read:short", "shorter than"),
    ):
        result = beat(beat_env(api_keys=setting, data_dir=str(tmp_path)), "config")
        assert result.returncode == 1 and "BEAT_API_KEYS" in result.stderr and complaint in result.stderr
        assert secret not in result.stderr + result.stdout
    shown = beat(beat_env(api_keys=ENV_SETTING, data_dir=str(tmp_path)), "config")
    assert shown.returncode == 0 and ENV_KEYS["read"] not in shown.stdout
    assert [key.name for key in parse_env_keys(ENV_SETTING + ";")] == ["only-submit", "only-read", "only-admin"]


def test_the_exposure_rules():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, [EVERYWHERE, "::", "10.0.0.5", "beat.internal", ""]))
    assert check_exposure(EVERYWHERE, 1, None) is None and check_exposure(EVERYWHERE, 0, 2) is None
    assert "loopback only" in (check_exposure("127.0.0.1", 0, 0) or "")
    assert "401" in (check_exposure(EVERYWHERE, 0, None) or "")  # unknown: it starts closed, not open
    with pytest.raises(NotExposable, match="not a loopback address"):
        check_exposure(EVERYWHERE, 0, 0)
    # Open only on loopback with no key anywhere; elsewhere, every key revoked later means every call refused.
    keys = parse_env_keys(ENV_SETTING)
    assert KeyRing([], loopback=True, refresh=1).keyless
    assert not KeyRing([], loopback=False, refresh=1).keyless
    assert not KeyRing(keys, loopback=True, refresh=1).keyless
    stored = KeyRing([], loopback=True, refresh=1)
    stored.stored = keys[:1]
    assert not stored.keyless
    assert stored.authenticate(ENV_KEYS["submit"]) == keys[0] and stored.authenticate(ENV_KEYS["read"]) is None


@pytest.mark.usefixtures("auth_topics")
async def test_without_keys_it_serves_on_loopback_with_a_warning_and_refuses_other_addresses(
    broker, database_url, tmp_path
):
    # The session's database has no key (the stack's tests run without one).
    env = auth_env(broker, database_url, tmp_path)
    refused = await asyncio.to_thread(beat, {**env, "BEAT_API_HOST": EVERYWHERE, "BEAT_API_PORT": "0"}, "api")
    assert refused.returncode == 1 and "not a loopback address" in refused.stderr, refused.stderr
    assert "beat keys create" in refused.stderr
    async with facade(env, tmp_path, "keyless") as (url, proc), httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/flows/refresh_profile_basic")).status_code == 200
        assert (await client.get("/requests/no-such-thing")).status_code == 404
        # The legacy envelope as it was: no key the legacy never sent, not even a null one.
        missing = (await client.get("/scrape_request_log/flow/no-such-thing")).json()
        message = "Scrape request no-such-thing not found"
        assert missing == {"status": {"type": "ERROR", "message": message, "code": 404}}
    assert "no API key is configured" in proc.log_path.read_text()


async def test_a_router_included_later_is_protected_and_declares_its_scope():
    """What the product routers will do: include an APIRouter of LegacyRoutes, one scope for all of it."""
    from fastapi import APIRouter, FastAPI
    from fastapi.staticfiles import StaticFiles

    from app.auth import ADMIN, protect, requires

    api = FastAPI()
    guard_input(api, 1 << 20, 5)  # the facade's own setup, which LegacyRoutes read
    protect(api, Settings(api_keys=ENV_SETTING, api_host=EVERYWHERE))
    redrives = APIRouter(route_class=LegacyRoute, dependencies=[requires(ADMIN)])
    plain = APIRouter()

    @redrives.get("/redrive/{id}")
    async def look(id: str) -> dict[str, str]:
        return {"id": id}

    @plain.post("/search")
    async def search() -> dict[str, str]:
        return {}

    api.include_router(redrives, prefix="/legacy")
    api.include_router(plain)
    api.mount("/files", StaticFiles(directory=ROOT / "tests"), name="files")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://beat") as client:
        assert refusal(await client.get("/legacy/redrive/1"), 401, legacy=True) is None
        assert refusal(await client.get("/legacy/redrive/1", headers=bearer(ENV_KEYS["read"])), 403, True) is None
        assert (await client.get("/legacy/redrive/1", headers=bearer(ENV_KEYS["admin"]))).json() == {"id": "1"}
        assert refusal(await client.post("/search", headers=bearer(ENV_KEYS["read"])), 403, False) is None
        assert (await client.post("/search", headers=bearer(ENV_KEYS["submit"]))).status_code == 200
        # A mount is no APIRoute, and still protected.
        assert refusal(await client.get("/files/__init__.py"), 401, False) is None
        assert (await client.get("/files/__init__.py", headers=bearer(ENV_KEYS["read"]))).status_code == 200
    operation = api.openapi()["paths"]["/legacy/redrive/{id}"]["get"]
    assert operation["x-beat-scope"] == ADMIN and "422" not in operation["responses"]


def test_the_answer_models_keep_every_key_the_reads_return():
    """FastAPI drops what a response model lacks: a column added to the status reads needs its field."""
    from app.api_models import RequestView, Timeline, TimelineEvent
    from core.status_reads import STATUS_COLUMNS, STORED_COLUMNS

    columns = set(STATUS_COLUMNS.split(", "))
    assert set(RequestView.model_fields) == columns - {"error_type", "error_message"} | {"error"}
    assert set(Timeline.model_fields) == set(STORED_COLUMNS.split(", ")) | {"id", "events"}
    assert set(TimelineEvent.model_fields) == {"status", "attempt", "at", "source", "error", "result"}
