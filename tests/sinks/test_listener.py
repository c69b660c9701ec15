"""``beat listen``: each legacy inbound message in the shapes of issue #17, against the real RabbitMQ (the
session's own vhost, whose legacy exchanges are direct), Postgres, the broker and the provider sandbox.

The listener runs in the test's loop; the identity service is a loopback HTTP server of the test's own.
Every test names its handles, job ids and message ids afresh, since the five queues are shared by the
session's tests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from pydantic import ConfigDict

from core.requests import request_id_for
from core.settings import Settings, load_settings
from core.topic_admin import ensure_topics
from providers.credential_cache import CredentialCache
from providers.credentials import CredentialStore
from sinks import listen_handlers as handlers
from sinks.legacy_events import MIRROR_APP_ID
from sinks.listener import BINDINGS, Listener
from tests.sinks.conftest import RABBIT_HOST, RABBIT_PORT, amqp_url
from tests.support import BeatProcess, TcpProxy, beat_env
from topics import flows, names
from topics.flows import FlowSpec
from topics.models import Platform
from topics.params import Params

IDENTITY_PATH = "/identity-service/api/socialaccount/platform/INSTAGRAM/handle/{handle}"
DLQ = {binding.routing_key: binding.dead_letter_queue for binding in BINDINGS}


class IdentityService:
    """A loopback identity service: per handle an answer (status, body); every call counted."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self.calls: dict[str, int] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _account(self, request: web.Request) -> web.Response:
        handle = request.match_info["handle"]
        self.calls[handle] = self.calls.get(handle, 0) + 1
        status, body = self.answers.get(handle, (404, {"message": "no such account"}))
        return web.json_response(body, status=status)

    async def start(self) -> IdentityService:
        app = web.Application()
        app.router.add_get(IDENTITY_PATH, self._account)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def identity() -> AsyncIterator[IdentityService]:
    service = await IdentityService().start()
    yield service
    await service.stop()


@pytest.fixture
def listen_settings(broker, database_url, amqp, sandbox_server, identity) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values = {
            "kafka_url": broker,
            "database_url": database_url,
            "amqp_url": amqp,
            "topic_prefix": f"listen{uuid.uuid4().hex[:6]}.",
            "listen_max_attempts": 3,
            "provider_base_urls": {"graphapi": f"{sandbox_server.url}/graphapi"},
            "graph_app_token": "app-token",
            "identity_url": identity.url,
            "http_timeout": 5.0,
            **overrides,
        }
        return load_settings(**values)

    return make


@asynccontextmanager
async def listening(settings: Settings) -> AsyncIterator[Listener]:
    listener = Listener(settings)
    task = asyncio.create_task(listener.run())
    ready = asyncio.create_task(listener.ready())
    await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert ready.done() and not task.done(), "the listener did not start"
    try:
        yield listener
    finally:
        listener.stop()
        assert await asyncio.wait_for(task, 30) == 0


async def publish(
    url: str, exchange: str, routing_key: str, body: bytes | dict, message_id: str, app_id: str | None = None
) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        target = await channel.get_exchange(exchange, ensure=True)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        message = aio_pika.Message(raw, message_id=message_id, content_type="application/json", app_id=app_id)
        await target.publish(message, routing_key)
    finally:
        await connection.close()


async def dead_letters(url: str, queue: str, message_ids: set[str], timeout: float = 30) -> dict[str, Any]:
    """The messages of ``queue`` with these ids (taken off it), waiting until all have arrived."""
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        dlq = await channel.declare_queue(queue, durable=True)
        while set(found) != message_ids and time.monotonic() < deadline:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.2)
                continue
            if message.message_id in message_ids:
                found[message.message_id] = message
                await message.ack()
            else:
                await message.nack(requeue=True)
    finally:
        await connection.close()
    return found


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def graph_row(pool, handle: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT id, credentials, enabled, data_access_expired FROM credential "
        "WHERE source = 'graphapi' AND handle = $1",
        handle,
    )
    if row is None:
        return None
    return {**dict(row), "credentials": json.loads(row["credentials"])}


async def test_new_tokens_are_stored_and_revive_an_expired_credential(listen_settings, pool, amqp, identity):
    tag = uuid.uuid4().hex[:8]
    expired, fresh, announced = f"exp_{tag}", f"new_{tag}", f"ann_{tag}"
    store = CredentialStore(pool)
    old_id = await store.add("graphapi", {"token": "old", "user_id": "u1"}, handle=expired)
    await pool.execute("UPDATE credential SET enabled = false, data_access_expired = true WHERE id = $1", int(old_id))
    identity.answers[announced] = (200, {"socialUserId": "u3", "graphAccessToken": "from-identity"})

    async with listening(listen_settings()):
        tokens = {expired: {"graphAccessToken": "t1"}, fresh: {"graphAccessToken": "t2"}, announced: {}}
        for handle, extra in tokens.items():
            body = {"handle": handle, "platform": "INSTAGRAM", "socialUserId": f"sid_{handle}", **extra}
            await publish(amqp, "identity.dx", "new_access_token_rk", body, f"{tag}-{handle}")

        async def stored() -> bool:
            return all([await graph_row(pool, h) for h in (expired, fresh, announced)]) and (
                (await graph_row(pool, expired))["credentials"]["token"] == "t1"
            )

        assert await eventually(stored)

    revived = await graph_row(pool, expired)
    assert revived == {
        "id": int(old_id),
        "credentials": {"token": "t1", "user_id": f"sid_{expired}"},
        "enabled": True,
        "data_access_expired": False,
    }
    assert (await graph_row(pool, fresh))["credentials"] == {"token": "t2", "user_id": f"sid_{fresh}"}
    # Without the token in the message, the identity service's route supplies it (and its user id).
    assert (await graph_row(pool, announced))["credentials"] == {"token": "from-identity", "user_id": "u3"}
    assert identity.calls == {announced: 1}


async def test_a_failing_message_is_retried_then_dead_lettered_and_a_poison_one_at_once(
    listen_settings, pool, amqp, identity
):
    tag = uuid.uuid4().hex[:8]
    down = f"down_{tag}"
    identity.answers[down] = (503, {"message": "unavailable"})
    ids = {"failing": f"{tag}-failing", "undecodable": f"{tag}-bytes", "shape": f"{tag}-shape"}
    async with listening(listen_settings()):
        await publish(amqp, "identity.dx", "new_access_token_rk", {"handle": down}, ids["failing"])
        await publish(amqp, "identity.dx", "new_access_token_rk", b"{not json", ids["undecodable"])
        await publish(amqp, "beat.dx", "credentials_validate", {"credential_id": "seven"}, ids["shape"])
        letters = await dead_letters(amqp, DLQ["new_access_token_rk"], {ids["failing"], ids["undecodable"]})
        shaped = await dead_letters(amqp, DLQ["credentials_validate"], {ids["shape"]})

    failing = letters[ids["failing"]]
    assert failing.headers["x-beat-attempts"] == 3 and identity.calls[down] == 3
    assert failing.headers["x-beat-error-type"] == "ProviderUnavailable"
    assert "503" in failing.headers["x-beat-error"]
    assert failing.headers["x-beat-routing-key"] == "new_access_token_rk"
    assert json.loads(failing.body) == {"handle": down}
    undecodable = letters[ids["undecodable"]]
    assert undecodable.body == b"{not json" and undecodable.headers["x-beat-attempts"] == 1
    assert undecodable.headers["x-beat-error-type"] == "JSONDecodeError"
    assert shaped[ids["shape"]].headers["x-beat-attempts"] == 1
    assert shaped[ids["shape"]].headers["x-beat-error-type"] == "ValidationError"
    assert await graph_row(pool, down) is None


async def test_credentials_validate_marks_valid_or_expired(listen_settings, pool, amqp):
    tag = uuid.uuid4().hex[:8]
    store = CredentialStore(pool)
    refused = await store.add("graphapi", {"token": f"expired-{tag}", "user_id": "u1"}, handle=f"r_{tag}")
    valid = await store.add("graphapi", {"token": f"good-{tag}", "user_id": "u2"}, handle=f"v_{tag}")
    await pool.execute("UPDATE credential SET data_access_expired = true WHERE id = $1", int(valid))

    async def expired_flags() -> tuple[bool, bool]:
        rows = {
            str(r["id"]): r["data_access_expired"]
            for r in await pool.fetch(
                "SELECT id, data_access_expired FROM credential WHERE id = ANY($1::bigint[])",
                [int(refused), int(valid)],
            )
        }
        return rows[refused], rows[valid]

    async with listening(listen_settings()):
        await publish(amqp, "beat.dx", "credentials_validate", {"source": "graphapi", "handle": f"r_{tag}"}, f"{tag}-r")
        await publish(amqp, "beat.dx", "credentials_validate", {"credential_id": int(valid)}, f"{tag}-v")
        assert await eventually(lambda: _equals(expired_flags(), (True, False)))


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


class _Open(Params):
    model_config = ConfigDict(extra="allow")


@pytest.fixture
def report_flows(monkeypatch) -> None:
    """The report flows of issue #16 are built concurrently; until they are registered, stand-ins by name."""
    for name in (handlers.KEYWORD_COLLECTION_FLOW, handlers.SENTIMENT_COLLECTION_FLOW, handlers.COMMENT_SENTIMENT_FLOW):
        if name not in flows.FLOWS:
            monkeypatch.setitem(flows.FLOWS, name, FlowSpec(name, Platform.INSTAGRAM, _Open, 1))


async def test_report_and_sentiment_messages_become_requests(listen_settings, pool, amqp, broker, report_flows):
    tag = uuid.uuid4().hex[:8]
    settings = listen_settings()
    flow_names = (handlers.KEYWORD_COLLECTION_FLOW, handlers.SENTIMENT_COLLECTION_FLOW, handlers.COMMENT_SENTIMENT_FLOW)
    topics = {flow: settings.request_topic(flow, 1) for flow in flow_names}
    await ensure_topics(broker, dict.fromkeys([*topics.values(), settings.topic(names.STATUS)], 1))
    keyword = {
        "job_id": f"TEST_KC_{tag}",
        "keywords": ["fitness", "gym"],
        "platform": "INSTAGRAM",
        "start_date": "2024-04-01",
        "end_date": "2024-04-30",
        "ignored": "anything else in a body is ignored",
    }
    sentiment = {"collectionType": "CAMPAIGN", "collectionId": f"c{tag}", "shortcodes": ["C1", "C2"]}

    def row(post: str, kind: str, dimensions: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "activity_type": kind,
            "platform": "INSTAGRAM",
            "platform_post_id": post,
            "actor_profile_id": "a1",
            "dimensions": dimensions,
            "metrics": [],
            "source": "external",
            "timestamp": "2024-05-01 10:00:00",
        }

    def comment(text: str, comment_id: str) -> list[dict[str, str]]:
        return [{"key": "text", "value": text}, {"key": "comment_id", "value": comment_id}]

    # The legacy page shape (§8), as an external publisher sends it: a like has no text and asks for nothing.
    page = {
        "platform": "INSTAGRAM",
        "activity_type": "COMMENT",
        "post_activity_logs": [
            row(f"A{tag}", "COMMENT", comment("lovely", "c1")),
            row(f"A{tag}", "LIKE", []),
            row(f"B{tag}", "COMMENT", comment("meh", "c2")),
            row(f"A{tag}", "COMMENT", comment("great", "c3")),
        ],
    }
    sentiments = [
        {
            "platform": "INSTAGRAM",
            "shortcode": f"A{tag}",
            "comments": [{"text": "lovely", "id": "c1"}, {"text": "great", "id": "c3"}],
        },
        {"platform": "INSTAGRAM", "shortcode": f"B{tag}", "comments": [{"text": "meh", "id": "c2"}]},
    ]
    expected = [
        (
            handlers.KEYWORD_COLLECTION_FLOW,
            f"amqp:{keyword['job_id']}",
            {k: v for k, v in keyword.items() if k != "ignored"},
        ),
        (handlers.SENTIMENT_COLLECTION_FLOW, f"amqp:{tag}-sc", sentiment),
        *((handlers.COMMENT_SENTIMENT_FLOW, f"amqp:{handlers._digest(p)}", p) for p in sentiments),
    ]
    by_id = {request_id_for(flow, key): (flow, params) for flow, key, params in expected}

    async def rows() -> dict[str, Any]:
        found = await pool.fetch(
            "SELECT id, flow, params, status FROM scrape_request_log WHERE id = ANY($1::text[])", list(by_id)
        )
        return {r["id"]: r for r in found} if len(found) == len(by_id) else {}

    async with listening(settings):
        await publish(amqp, "beat.dx", "keyword_collection_rk", keyword, f"{tag}-kc")
        await publish(amqp, "beat.dx", "sentiment_collection_report_in_rk", sentiment, f"{tag}-sc")
        # Beat's own page, as beat mirror publishes it, is skipped: it reached sentiment over Kafka already.
        own = {**page, "post_activity_logs": [row(f"M{tag}", "COMMENT", comment("mine", "m1"))]}
        await publish(amqp, "beat.dx", "post_activity_log_bulk", own, f"{tag}-own", app_id=MIRROR_APP_ID)
        await publish(amqp, "beat.dx", "post_activity_log_bulk", page, f"{tag}-page")
        # Coffee sending the same job again names the same request: nothing new is submitted.
        await publish(amqp, "beat.dx", "keyword_collection_rk", keyword, f"{tag}-kc-again")
        recorded = await eventually(rows)
        assert recorded, "the requests were never recorded"
        await asyncio.sleep(1)

    for request_id, stored in recorded.items():
        assert (stored["flow"], json.loads(stored["params"])) == by_id[request_id] and stored["status"] == "PENDING"
    on_topics = await _requests_on(broker, list(topics.values()))
    assert {r["id"]: (r["flow"], r["params"]) for r in on_topics} == by_id
    assert len(on_topics) == len(by_id)


async def _requests_on(bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        records: list[dict[str, Any]] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 2:
            polled = await consumer.getmany(timeout_ms=300)
            for batch in polled.values():
                records.extend(json.loads(r.value) for r in batch)
                quiet_since = time.monotonic()
        return records
    finally:
        await consumer.stop()


async def test_a_rabbitmq_cut_loses_no_message(listen_settings, pool, amqp, amqp_vhost):
    """The listener's connection goes through a proxy that is cut while messages keep arriving at RabbitMQ;
    once it is restored, the listener reconnects and every message has its effect."""
    tag = uuid.uuid4().hex[:8]
    proxy = TcpProxy(RABBIT_HOST, RABBIT_PORT).start()
    handles = [f"cut_{tag}_{n}" for n in range(6)]
    try:
        async with listening(listen_settings(amqp_url=amqp_url(amqp_vhost, proxy.port))):
            await publish(amqp, "identity.dx", "new_access_token_rk", _token(handles[0]), f"{tag}-0")
            assert await eventually(lambda: graph_row(pool, handles[0]))
            proxy.cut()
            for n, handle in enumerate(handles[1:], start=1):
                await publish(amqp, "identity.dx", "new_access_token_rk", _token(handle), f"{tag}-{n}")
            await asyncio.sleep(3)
            assert [await graph_row(pool, h) for h in handles[1:]] == [None] * 5, "nothing passes the cut"
            proxy.restore()

            async def all_stored() -> bool:
                return all([await graph_row(pool, h) for h in handles])

            assert await eventually(all_stored, timeout=45)
    finally:
        proxy.stop()
    for handle in handles:
        assert (await graph_row(pool, handle))["credentials"] == {"token": f"tok-{handle}", "user_id": "u"}


def _token(handle: str) -> dict[str, str]:
    return {"handle": handle, "platform": "INSTAGRAM", "socialUserId": "u", "graphAccessToken": f"tok-{handle}"}


async def test_a_missing_exchange_stops_the_listener_naming_it(listen_settings, caplog):
    missing = f"nowhere-{uuid.uuid4().hex[:6]}.dx"
    assert await Listener(listen_settings(amqp_identity_exchange=missing)).run() == 1
    assert f"RabbitMQ has no exchange '{missing}' (BEAT_AMQP_IDENTITY_EXCHANGE)" in caplog.text


async def test_a_new_token_reaches_a_workers_credential_cache_within_a_second(
    listen_settings, pool, amqp, database_url
):
    tag = uuid.uuid4().hex[:8]
    handle = f"cache_{tag}"
    store = CredentialStore(pool)
    old_id = await store.add("graphapi", {"token": "old", "user_id": "u"}, handle=handle)
    await pool.execute("UPDATE credential SET data_access_expired = true WHERE id = $1", int(old_id))
    cache = await CredentialCache.open(pool, database_url, refresh_interval=300, max_age=300)
    try:
        assert await cache.pick("graphapi", handle) is None  # expired: out of rotation
        async with listening(listen_settings()):
            await publish(amqp, "identity.dx", "new_access_token_rk", _token(handle), f"{tag}-cache")

            async def written() -> bool:
                row = await graph_row(pool, handle)
                return row is not None and row["credentials"]["token"] == f"tok-{handle}"

            assert await eventually(written)
            written_at = time.monotonic()
            picked = await eventually(lambda: cache.pick("graphapi", handle), timeout=5)
            seen_after = time.monotonic() - written_at
        assert picked is not None and picked.secrets == {"token": f"tok-{handle}", "user_id": "u"}
        assert seen_after < 1.0, f"the worker's cache saw the token {seen_after:.2f}s after it was written"
    finally:
        await cache.aclose()


async def test_credentials_validate_checks_other_sources_with_one_cheap_call(
    listen_settings, pool, amqp, sandbox_server, knobs
):
    tag = uuid.uuid4().hex[:8]
    store = CredentialStore(pool)
    source = "rapidapi-arraybobo"
    working = await store.add(source, {"x-rapidapi-key": f"ok-{tag}"}, idempotency_key=f"test:ok-{tag}")
    revoked = await store.add(source, {"x-rapidapi-key": f"gone-{tag}"}, idempotency_key=f"test:gone-{tag}")
    analytics = await store.add("ytapi", {"refresh_token": "r"}, handle=f"UC{tag}")
    await pool.execute("UPDATE credential SET data_access_expired = true WHERE id = $1", int(working))
    settings = listen_settings(provider_base_urls={source: f"{sandbox_server.url}/{source}"})

    async def expired(credential_id: str) -> bool:
        return await pool.fetchval("SELECT data_access_expired FROM credential WHERE id = $1", int(credential_id))

    async def is_false(credential_id: str) -> bool:
        return await expired(credential_id) is False

    async with listening(settings):
        await publish(amqp, "beat.dx", "credentials_validate", {"credential_id": int(working)}, f"{tag}-ok")
        assert await eventually(lambda: is_false(working))
        before = knobs.stats()
        knobs.set(fail_paths={f"/{source}": 401})
        await publish(amqp, "beat.dx", "credentials_validate", {"credential_id": int(revoked)}, f"{tag}-gone")
        assert await eventually(lambda: expired(revoked))
        await publish(amqp, "beat.dx", "credentials_validate", {"credential_id": int(analytics)}, f"{tag}-yt")
        letters = await dead_letters(amqp, DLQ["credentials_validate"], {f"{tag}-yt"})
    # One call each, with the credential's own key.
    assert before["credentials"][f"ok-{tag}"]["arrivals"] == 1
    error = letters[f"{tag}-yt"].headers["x-beat-error"]
    assert "no cheap call is known to check a ytapi credential" in error and not await expired(analytics)


async def test_a_message_waits_out_a_postgres_outage_unacked_and_is_not_dead_lettered(
    listen_settings, pool, amqp, database_url
):
    """Acked only once durable: with Postgres cut, a token message outlasts its retry budget (3 attempts,
    1.5 s) without reaching the DLQ, and is stored once Postgres is back."""
    tag = uuid.uuid4().hex[:8]
    handle = f"pg_{tag}"
    proxy = TcpProxy("127.0.0.1", 5432).start()
    try:
        async with listening(listen_settings(database_url=proxy.url(database_url))):
            proxy.cut()
            await publish(amqp, "identity.dx", "new_access_token_rk", _token(handle), f"{tag}-pg")
            await asyncio.sleep(4)
            assert await graph_row(pool, handle) is None
            proxy.restore()
            assert await eventually(lambda: graph_row(pool, handle))
            assert await dead_letters(amqp, DLQ["new_access_token_rk"], {f"{tag}-pg"}, timeout=1) == {}
    finally:
        proxy.stop()


async def test_beat_listen_runs_as_a_process_and_stops_cleanly(broker, database_url, amqp, pool, session_dir):
    tag = uuid.uuid4().hex[:8]
    handle = f"proc_{tag}"
    env = beat_env(kafka_url=broker, database_url=database_url, amqp_url=amqp, topic_prefix=f"listenp{tag}.")
    listen = BeatProcess("listen", env, session_dir / "logs" / f"listen-{tag}.log").start()
    try:

        async def started() -> bool:
            assert listen.alive(), listen.log_tail()
            return "listening on" in listen.log_path.read_text(errors="replace")

        assert await eventually(started), listen.log_tail()
        await publish(amqp, "identity.dx", "new_access_token_rk", _token(handle), f"{tag}-proc")
        assert await eventually(lambda: graph_row(pool, handle)), listen.log_tail()
        assert listen.terminate(timeout=20) == 0, listen.log_tail()
    finally:
        listen.kill()
