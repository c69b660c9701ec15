"""How the facade refuses input and answers during an outage: bounded bodies, validation errors JSON can
carry, 503 while a dependency is down, the legacy error envelope.

A refusal is always a 4xx with a JSON body. Validation errors would otherwise echo the
caller's input, which may be megabytes, or hold lone surrogates that JSON cannot encode
(FastAPI's default handler then fails with a 500 instead of refusing). A route that meets
Postgres or the broker down answers 503 with ``Retry-After`` (``BEAT_OUTAGE_RETRY_AFTER``),
never a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message

from core.outage import BROKER, POSTGRES, DependencyDown, broker_down, is_outage
from core.requests import NotHandedOver
from topics.limits import clean_json

log = logging.getLogger(__name__)

# Enough of a refusal's reasons to fix the request, few enough to read.
_LISTED_ERRORS = 5
# A location can quote a key of the caller's params, which may be as long as the body.
_LOC_PART = 100
# An outage is logged once, then again at most this often while it lasts, not once per refused call.
_OUTAGE_LOG_EVERY = 30.0
_DEPENDENCY_NAMES = {POSTGRES: "the database", BROKER: "the broker"}


def clean_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without their ``input`` (the caller sent it) and with every other value made
    JSON-safe: exceptions in ``ctx`` as text, locations quoting the caller's keys cleaned and cut."""
    cleaned = []
    for error in errors:
        error = {key: value for key, value in dict(error).items() if key not in ("input", "url")}
        error["loc"] = [part[:_LOC_PART] if isinstance(part, str) else part for part in error.get("loc", ())]
        cleaned.append(clean_json(error))
    return cleaned


def errors_text(errors: Sequence[Any]) -> str:
    """Validation errors as one line, for the legacy envelope's ``message``."""
    parts = [
        f"{'.'.join(str(part) for part in error.get('loc', ())) or 'body'}: {error.get('msg', '')}"
        for error in clean_errors(errors[:_LISTED_ERRORS])
    ]
    return "; ".join(parts)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": clean_errors(exc.errors())}, status_code=422)


def guard_input(api: FastAPI, max_body_bytes: int, retry_after: int) -> None:
    """Bound every route's body to ``max_body_bytes``, answer validation errors without the input, and an outage
    with 503 and ``Retry-After: retry_after``.

    Call before adding routes: the routes added afterwards are BoundedRoutes.
    """
    api.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    api.state.max_body_bytes = max_body_bytes
    api.state.retry_after = retry_after
    api.state.outages_logged = {}
    api.router.route_class = BoundedRoute


def down_dependency(exc: BaseException) -> str | None:
    """Which dependency ``exc`` says is down (``postgres`` or ``broker``); None when it is no outage."""
    if isinstance(exc, DependencyDown):
        return exc.dependency
    if broker_down(exc):
        return BROKER
    # The facade talks to Postgres and the broker only, and a broker failure is a KafkaError.
    return POSTGRES if is_outage(exc) else None


def outage_detail(exc: BaseException, dependency: str, retry_after: int) -> dict[str, Any]:
    """What a 503 says: which dependency is down, when to try again, and for a request recorded but not yet
    handed to the broker, its id."""
    what = _DEPENDENCY_NAMES.get(dependency, dependency)
    detail: dict[str, Any] = {
        "message": f"{what} is unavailable; try again in {retry_after} s",
        "unavailable": dependency,
        "retry_after": retry_after,
    }
    if isinstance(exc, NotHandedOver):
        detail["message"] = (
            f"{what} is unavailable: request {exc.request_id} is recorded PENDING and is handed to "
            f"it once it is back (a retry with the same idempotency key names the same request)"
        )
        detail["id"] = exc.request_id
    return detail


def _log_outage(state: Any, dependency: str, exc: BaseException) -> None:
    now = time.monotonic()
    if now - state.outages_logged.get(dependency, -_OUTAGE_LOG_EVERY) >= _OUTAGE_LOG_EVERY:
        state.outages_logged[dependency] = now
        log.warning("answering 503: %s is unavailable (%s: %s)", dependency, type(exc).__name__, exc)


async def _bounded(request: Request, limit: int) -> Request:
    """The request with its body read up to ``limit`` bytes: a larger one is refused before it is read
    whole (at once when its Content-Length says so)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {int(declared)} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"the body is over the {limit}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise HTTPException(400, "the client went away while sending the body") from None
    body = b"".join(chunks)
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return Request(request.scope, receive)


class BoundedRoute(APIRoute):
    """A route whose body is read within the facade's body limit (``app.state.max_body_bytes``) and that answers
    an outage with 503."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded_handler(request: Request) -> Response:
            try:
                return await handler(await _bounded(request, request.app.state.max_body_bytes))
            except Exception as exc:
                dependency = down_dependency(exc)
                if dependency is None:
                    raise
                state = request.app.state
                _log_outage(state, dependency, exc)
                return self.unavailable(outage_detail(exc, dependency, state.retry_after))

        return bounded_handler

    def unavailable(self, detail: dict[str, Any]) -> Response:
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(detail["retry_after"])})


def legacy_error(message: str, code: int) -> JSONResponse:
    # The legacy API answered every refusal with HTTP 200 and this envelope; its clients read ``status``.
    return JSONResponse({"status": {"type": "ERROR", "message": message, "code": code}})


class LegacyRoute(BoundedRoute):
    """A legacy route: every refusal, body validation included, is the legacy error envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def legacy_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return legacy_error(errors_text(exc.errors()), 422)
            except HTTPException as exc:
                return legacy_error(_message(exc.detail), exc.status_code)

        return legacy_handler

    def unavailable(self, detail: dict[str, Any]) -> Response:
        # The legacy envelope, with the HTTP status a client or load balancer retries on.
        body: dict[str, Any] = {"status": {"type": "ERROR", "message": detail["message"], "code": 503}}
        if "id" in detail:
            body["scrape_id"] = detail["id"]
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(detail["retry_after"])})


def _message(detail: Any) -> str:
    """An HTTP refusal's detail as the envelope's text: its ``message`` when it is a structured one."""
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        return detail["message"]
    return detail if isinstance(detail, str) else str(clean_json(detail))
