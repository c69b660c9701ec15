"""How the facade refuses input: bounded bodies, validation errors JSON can carry, the legacy error envelope.

A refusal is always a 4xx with a JSON body. Validation errors would otherwise echo the
caller's input, which may be megabytes, or hold lone surrogates that JSON cannot encode
(FastAPI's default handler then fails with a 500 instead of refusing).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message

from topics.limits import clean_json

# Enough of a refusal's reasons to fix the request, few enough to read.
_LISTED_ERRORS = 5
# A location can quote a key of the caller's params, which may be as long as the body.
_LOC_PART = 100


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
    parts = [f"{'.'.join(str(part) for part in error.get('loc', ())) or 'body'}: {error.get('msg', '')}"
             for error in clean_errors(errors[:_LISTED_ERRORS])]
    return "; ".join(parts)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": clean_errors(exc.errors())}, status_code=422)


def guard_input(api: FastAPI, max_body_bytes: int) -> None:
    """Bound every route's body to ``max_body_bytes`` and answer validation errors without the input.

    Call before adding routes: the routes added afterwards are BoundedRoutes.
    """
    api.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    api.state.max_body_bytes = max_body_bytes
    api.router.route_class = BoundedRoute


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
    """A route whose body is read within the facade's body limit (``app.state.max_body_bytes``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded_handler(request: Request) -> Response:
            return await handler(await _bounded(request, request.app.state.max_body_bytes))

        return bounded_handler


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


def _message(detail: Any) -> str:
    """An HTTP refusal's detail as the envelope's text: its ``message`` when it is a structured one."""
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        return detail["message"]
    return detail if isinstance(detail, str) else str(clean_json(detail))
