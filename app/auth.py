"""Who may call the facade: every route needs an API key with a scope, unless it is on the open list.

Protection is the default. ``protect(api, settings)`` installs a middleware that finds the route a request
matches, the way the router will, and checks the key before the route runs; a route nobody listed as open
is protected whether it is an APIRoute, a mount or one added by a router included later.

* **Open**: ``/healthz``, ``/readyz``, ``GET /heartbeat``, ``/openapi.json``, ``/docs`` (and its OAuth
  redirect page), ``GET /`` and everything under ``/ui/`` (a status page that asks for a key in its own
  script). Nothing else.
* **Scopes**: a route declares the scope it needs with ``dependencies=[requires(ADMIN)]``, on the route or
  on a whole ``APIRouter``; without one, GET and HEAD need ``read`` and every other method ``submit``.
  ``PUT /heartbeat``, retries and re-drives declare ``admin``.
* **Keys** come as ``Authorization: Bearer <key>`` or ``x-api-key: <key>``: a missing or unknown key is a
  401, a key without the scope a 403 (on a ``LegacyRoute`` both in the legacy envelope, with that HTTP
  status). Keys are never logged: they live in headers, which nothing here or in uvicorn writes out.
* **Where keys come from**: ``BEAT_API_KEYS`` (read once) and the ``api_key`` table (``beat keys``), reloaded
  every ``BEAT_API_KEY_REFRESH`` seconds, so a new or revoked key takes effect within that. While Postgres
  does not answer, the last copy stands, and the environment's keys work whatever Postgres does.
* **No key at all**: on a loopback address every route is open (``beat api`` warns); elsewhere the facade
  does not start (``check_exposure``), and if every key is revoked later, every protected route is a 401.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api_errors import LegacyRoute
from app.api_models import LegacyEnvelope, Problem
from app.key_store import live_keys, mark_used
from core.api_keys import ADMIN, READ, SCOPES, SUBMIT, KnownKey, match_key, parse_env_keys
from core.outage import is_outage
from core.settings import Settings
from topics.errors import BeatError, Decision

log = logging.getLogger(__name__)

__all__ = ["ADMIN", "READ", "SUBMIT", "KeyRing", "NotExposable", "check_exposure", "protect", "requires"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
OPEN_GETS = frozenset({"/", "/heartbeat"})
OPEN_PREFIX = "/ui/"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The facade's first read of the keys waits this long for Postgres; the facade starts either way.
FIRST_LOAD_TIMEOUT = 5.0
BEARER, API_KEY_HEADER = "bearerAuth", "apiKeyHeader"


class _Requires:
    """The marker ``requires`` puts among a route's dependencies; the middleware reads it, so calling it is a
    no-op."""

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r} (scopes: {', '.join(SCOPES)})")
        self.scope = scope

    async def __call__(self) -> None:
        return None


def requires(scope: str) -> Any:
    """``dependencies=[requires(ADMIN)]``: the scope a route (or every route of a router) needs, instead of
    the default (``read`` for GET and HEAD, ``submit`` for the rest)."""
    return Depends(_Requires(scope))


def is_open(method: str, path: str) -> bool:
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIX) or path == OPEN_PREFIX.rstrip("/"):
        return True
    return method in ("GET", "HEAD") and path in OPEN_GETS


def declared_scope(route: Any) -> str | None:
    for dependency in getattr(route, "dependencies", None) or ():
        if isinstance(dependency.dependency, _Requires):
            return dependency.dependency.scope
    return None


def route_scope(route: Any, method: str) -> str:
    """The scope ``method`` on ``route`` (None: no route matched) needs."""
    return declared_scope(route) or (READ if method in READ_METHODS else SUBMIT)


def matched_route(api: FastAPI, scope: Scope) -> Any:
    """The route the router will run for this request (first full match, else the first partial one, which
    answers 405), as a route context; None when none matches (a 404)."""
    partial = None
    for context in iter_route_contexts(api.routes):
        match, _ = context.matches(scope)
        if match is Match.FULL:
            return context
        if match is Match.PARTIAL and partial is None:
            partial = context
    return partial


def is_legacy(route: Any) -> bool:
    return route is not None and isinstance(getattr(route, "original_route", route), LegacyRoute)


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key of ``Authorization: Bearer`` or ``x-api-key`` (Bearer first); None when neither carries one."""
    bearer = api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key" and value.strip():
            api_key = value.decode("latin-1").strip()
    return bearer or api_key


class KeyRing:
    """The keys the facade accepts: the environment's, and a copy of Postgres's reloaded in the background."""

    def __init__(self, env_keys: list[KnownKey], *, loopback: bool, refresh: float) -> None:
        self.env_keys = env_keys
        self.stored: list[KnownKey] | None = None  # None until Postgres has answered once
        self.loopback = loopback
        self.refresh = refresh
        self.used: set[int] = set()
        self._outage_logged = False

    @property
    def keyless(self) -> bool:
        """No key configured: open, on loopback only (never-loaded Postgres keys count as none there)."""
        return self.loopback and not self.env_keys and not self.stored

    def authenticate(self, presented: str) -> KnownKey | None:
        key = match_key(presented, [*self.env_keys, *(self.stored or ())])
        if key is not None and key.key_id is not None:
            self.used.add(key.key_id)
        return key

    async def reload(self, pool: asyncpg.Pool) -> None:
        """Read the live keys again and date the last use of those used since; an outage keeps the last copy."""
        used, self.used = self.used, set()
        try:
            await mark_used(pool, used)
            self.stored = await live_keys(pool)
        except Exception as exc:
            if not is_outage(exc) and not isinstance(exc, TimeoutError):
                raise
            self.used |= used
            if not self._outage_logged:
                self._outage_logged = True
                log.warning(
                    "cannot read the API keys from Postgres (%s); using the %s; the environment's work",
                    type(exc).__name__,
                    "last copy" if self.stored is not None else "environment's only",
                )
            return
        if self._outage_logged:
            self._outage_logged = False
            log.info("the API keys are read from Postgres again")

    @asynccontextmanager
    async def refreshing(self, pool: asyncpg.Pool) -> AsyncIterator[None]:
        """Load the keys once (waiting at most ``FIRST_LOAD_TIMEOUT``), then keep reloading them until exit."""
        try:
            await asyncio.wait_for(self.reload(pool), FIRST_LOAD_TIMEOUT)
        except TimeoutError:
            log.warning("Postgres did not give the API keys within %.0f s; reading them again soon", FIRST_LOAD_TIMEOUT)

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.refresh)
                try:
                    await self.reload(pool)
                except Exception:
                    log.exception("reading the API keys failed; trying again in %.0f s", self.refresh)

        task = asyncio.create_task(loop(), name="api-key-refresh")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _refusal(status: int, message: str, legacy: bool) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if legacy:
        body: dict[str, Any] = {"status": {"type": "ERROR", "message": message, "code": status}}
    else:
        body = {"detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


class AuthMiddleware:
    """Checks every HTTP request's key against the scope of the route it matches, before the route runs."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["method"], scope["path"]) or self.keys.keyless:
            await self.app(scope, receive, send)
            return
        route = matched_route(scope["app"], scope)
        needed = route_scope(route, scope["method"])
        presented = presented_key(scope["headers"])
        key = self.keys.authenticate(presented) if presented else None
        if key is None:
            message = (
                "the API key is not valid"
                if presented
                else "an API key is required: send Authorization: Bearer <key> or x-api-key: <key>"
            )
            await _refusal(401, message, is_legacy(route))(scope, receive, send)
        elif needed not in key.scopes:
            message = f"the API key {key.name!r} does not have the {needed} scope this route needs"
            await _refusal(403, message, is_legacy(route))(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _security_responses(legacy: bool) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/LegacyEnvelope" if legacy else "#/components/schemas/Problem"}
    return {
        str(status): {"description": text, "content": {"application/json": {"schema": schema}}}
        for status, text in ((401, "no API key, or not a valid one"), (403, "the API key lacks the scope"))
    }


def document_security(api: FastAPI) -> None:
    """Declare the two ways to send a key, and on each protected operation its scope and its 401/403 answers."""

    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema:
            return api.openapi_schema
        document = generate()
        components = document.setdefault("components", {})
        components["securitySchemes"] = {
            BEARER: {"type": "http", "scheme": "bearer", "description": "an API key (`beat keys create`)"},
            API_KEY_HEADER: {"type": "apiKey", "in": "header", "name": "x-api-key"},
        }
        schemas = components.setdefault("schemas", {})
        for model in (LegacyEnvelope, Problem):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, nested in {**schema.pop("$defs", {}), model.__name__: schema}.items():
                schemas.setdefault(name, nested)
        for context in iter_route_contexts(api.routes):
            if context.path_format is None:
                continue
            for method in getattr(context, "methods", None) or ():
                operation = document["paths"].get(context.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                if is_open(method, context.path_format):
                    operation["security"] = []
                    continue
                scope = route_scope(context, method)
                operation["security"] = [{BEARER: []}, {API_KEY_HEADER: []}]
                operation["x-beat-scope"] = scope
                needs = f"Needs the `{scope}` scope."
                operation["description"] = f"{operation.get('description', '')}\n\n{needs}".strip()
                operation["responses"].update(_security_responses(is_legacy(context)))
                if is_legacy(context):
                    # A legacy route answers a refusal with HTTP 200 and the envelope, never FastAPI's 422.
                    operation["responses"].pop("422", None)
        api.openapi_schema = document
        return document

    api.openapi = openapi  # type: ignore[method-assign]


def protect(api: FastAPI, settings: Settings) -> KeyRing:
    """Put every route of ``api`` behind its keys (see the module's docstring); the KeyRing to refresh."""
    env_keys = parse_env_keys(settings.api_keys.get_secret_value()) if settings.api_keys else []
    keys = KeyRing(env_keys, loopback=is_loopback(settings.api_host), refresh=settings.api_key_refresh)
    api.add_middleware(AuthMiddleware, keys=keys)
    document_security(api)
    return keys


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


class NotExposable(BeatError):
    """The facade would serve without any key on an address others can reach."""

    decision = Decision.DEFINITIVE


def check_exposure(host: str, env_keys: int, stored_keys: int | None) -> str | None:
    """Whether ``beat api`` may serve on ``host`` with these keys (``stored_keys`` None: Postgres did not
    answer). Raises NotExposable saying why it may not; returns a warning to log, or None."""
    if env_keys or stored_keys:
        return None
    if is_loopback(host):
        return (
            f"no API key is configured: serving every route without authentication on {host} (loopback only); "
            "create one with `beat keys create` or set BEAT_API_KEYS"
        )
    if stored_keys is None:
        # Not known to be keyless: the facade starts and refuses every protected call until it reads keys.
        return (
            f"Postgres did not answer, so the API keys are not known yet: every protected route answers 401 on "
            f"{host} until they are read"
        )
    raise NotExposable(
        f"no API key is configured, and {host} is not a loopback address: the facade would serve anyone who "
        "can reach it. Create a key with `beat keys create --name NAME --scopes submit,read,admin` (or set "
        "BEAT_API_KEYS), or bind to 127.0.0.1 with BEAT_API_HOST"
    )
