"""ASGI middleware that stands between clients and the provider routes and applies the knobs.

Order per request: count the arrival, enforce the caller's rate limit (429 with Retry-After),
hang if the path is configured to, wait the latency, fail at the error rate (500), and only
then hand over to the provider route. Admin and health routes are not metered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from providers.sandbox.state import SandboxState

# Where each provider carries the credential the caller is limited by: RapidAPI and Lama
# keys and RocketAPI's token in headers, Graph's token and YouTube's key in the query.
CREDENTIAL_HEADERS = (b"x-rapidapi-key", b"x-access-key", b"authorization", b"x-shopify-access-token")
CREDENTIAL_QUERY = ("access_token", "key")
ANONYMOUS = "anonymous"
UNMETERED = ("/_sandbox/", "/healthz")

RATE_LIMITED_BODY = {"message": "You have exceeded the rate limit of your plan for this API."}
UNAVAILABLE_BODY = {"message": "The API is unreachable, please contact the API provider."}


class Knobs:
    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self._app = app
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(UNMETERED):
            await self._app(scope, receive, send)
            return
        state = self._state
        # Knobs replaced while this request is under way must not change what it was promised.
        config = state.config
        credential = _credential(scope)
        state.stats.count("arrivals", path, credential)

        limit = config.rate_limit(credential)
        if limit is not None:
            # RapidAPI meters each API subscription separately, so one key's windows are per source.
            source = path.split("/", 2)[1]
            wait = state.log.admit((source, credential), limit, time.monotonic())
            if wait is not None:
                state.stats.count("rate_limited", path, credential)
                state.stats.count_over_limit(source, credential)
                retry_after = f"{math.ceil(wait * 1000) / 1000:.3f}"
                await _answer(send, 429, RATE_LIMITED_BODY, [(b"retry-after", retry_after.encode())])
                return

        # Drawn on arrival so that a client calling one request at a time sees a repeatable sequence.
        fails = config.error_rate > 0 and state.rng.random() < config.error_rate
        if config.hangs(path):
            receive, left = await _hang(receive, config.hang_seconds)
            if left:
                state.stats.count("abandoned", path, credential)
                return
        if config.latency:
            await asyncio.sleep(config.latency)
        forced = config.failure(path)
        if forced == 429:
            state.stats.count("rate_limited", path, credential)
            headers = [(b"retry-after", f"{config.fail_retry_after:g}".encode())] if config.fail_retry_after else []
            await _answer(send, 429, RATE_LIMITED_BODY, headers)
            return
        if fails or forced is not None:
            state.stats.count("errors", path, credential)
            await _answer(send, forced or 500, UNAVAILABLE_BODY)
            return
        state.stats.count("accepted", path, credential)
        renames = config.renames(path)
        await self._app(scope, receive, _renaming(send, renames) if renames else send)


def _renaming(send: Send, renames: dict[str, str]) -> Send:
    """A ``send`` that hands on the route's JSON answer with the fields renamed (whole body, new length)."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def renamed(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        with contextlib.suppress(ValueError):  # not JSON: as it was
            body = json.dumps(_rename(json.loads(body), renames)).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return renamed


def _rename(value: Any, renames: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {renames.get(key, key): _rename(item, renames) for key, item in value.items()}
    if isinstance(value, list):
        return [_rename(item, renames) for item in value]
    return value


def _credential(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for header, value in headers:
        if header in CREDENTIAL_HEADERS:
            return value.decode("latin-1")
    query_string: bytes = scope.get("query_string", b"")
    query = parse_qs(query_string.decode("latin-1"))
    for name in CREDENTIAL_QUERY:
        if query.get(name):
            return query[name][0]
    return ANONYMOUS


async def _hang(receive: Receive, seconds: float) -> tuple[Receive, bool]:
    """Wait ``seconds`` unless the client leaves first (then True), so abandoned hangs end and free
    the server; whatever the wait read from the client is replayed to the route."""
    held: list[Message] = []

    async def until_gone() -> None:
        while (message := await receive())["type"] != "http.disconnect":
            held.append(message)

    try:
        await asyncio.wait_for(until_gone(), seconds)
    except TimeoutError:

        async def replay() -> Message:
            return held.pop(0) if held else await receive()

        return replay, False
    return receive, True


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
