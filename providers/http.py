"""The one HTTP layer every provider client goes through.

It owns the timeouts, turns transport failures and error statuses into typed
provider errors, and records every call as a TraceLog without secrets: the
trace keeps method, host, path, status, latency and the credential *id* only,
never the query string (YouTube's ``key=``) or headers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from opentelemetry.trace import SpanKind

from core.metrics import PROVIDER_CALL_DURATION, PROVIDER_CALLS, RATELIMIT_WAIT, child, status_class
from core.tracing import TRACER
from providers.drift import current_operation
from providers.errors import ProviderTimeout, ProviderUnavailable, QuotaExceeded
from providers.http_transport import AiohttpTransport
from providers.parsing import wait_seconds
from providers.ratelimit import RateLimiter
from providers.sources import base_url
from providers.spending import Spending
from topics.errors import BeatError, Decision
from topics.models import TraceLog, utcnow

log = logging.getLogger(__name__)


class _UrlsWithoutQuery(logging.Filter):
    """httpx logs every request's full URL at INFO; YouTube's ``key`` and Graph's ``access_token``
    travel in the query, so its records keep scheme, host and path only, at whatever level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(arg.copy_with(query=None) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


logging.getLogger("httpx").addFilter(_UrlsWithoutQuery())

TraceSink = Callable[[TraceLog], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Credential:
    id: str
    source: str
    secrets: dict[str, Any] = field(repr=False)
    handle: str | None = None
    # Consecutive quota answers when it was picked (CredentialPolicy doubles its rest on each).
    quota_strikes: int = 0


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return wait_seconds(float(value))
    except ValueError:
        try:
            return wait_seconds((parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class _Call:
    source: str
    method: str
    url: str
    path: str
    credential: Credential | None
    request_id: str | None


class _ConnectionLost(BeatError):
    """The connection failed before an answer came back; ``error`` is what the caller gets if it stays lost."""

    decision = Decision.TRANSIENT

    def __init__(self, error: ProviderUnavailable) -> None:
        super().__init__(error.message)
        self.error = error


class ProviderHttp:
    def __init__(
        self,
        *,
        base_urls: dict[str, str],
        timeout: float,
        trace_sink: TraceSink | None = None,
        max_connections: int = 200,
        limiter: RateLimiter | None = None,
        spending: Spending | None = None,
    ) -> None:
        self._base_urls = base_urls
        self._trace_sink = trace_sink
        self._limiter = limiter
        self._spending = spending
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=limits,
            transport=AiohttpTransport(limits),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        source: str,
        method: str,
        path: str,
        *,
        credential: Credential | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
        secrets_as_headers: bool = True,
        host_vars: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one call; return the response for any status below 500 except 429.

        By default the credential's secrets are the request headers (RapidAPI, Lama,
        RocketAPI, Shopify). A client whose provider takes its token elsewhere (Graph's
        ``access_token``, YouTube's ``key``) passes ``secrets_as_headers=False`` and puts
        it in ``params`` itself; the trace never records the query string either way.
        ``host_vars`` fill a base URL that names its host per call (Shopify's ``https://{store}``).
        ``data`` is a form-encoded body (Google's OAuth token endpoint); like ``json``, it is never traced.

        With spending, the call's cost is first reserved under its daily budgets (``BudgetWait`` or
        ``BudgetExhausted`` when one has no room) and counted once it went out. With a limiter, the call then
        waits for its slot under the source's and the credential's limits, and releases it once the call is
        over, however it ended.
        """
        url = base_url(source, self._base_urls)
        if host_vars:
            url = url.format(**host_vars)
        url += path
        all_headers = dict(headers or {})
        if credential is not None and secrets_as_headers:
            all_headers.update({str(k): str(v) for k, v in credential.secrets.items()})
        call = _Call(source, method, url, path, credential, request_id)
        try:
            response = await self._send(call, params=params, json=json, data=data, headers=all_headers)
        except _ConnectionLost as lost:
            # A dropped or refused connection is usually one bad socket, and a GET is safe to repeat: once
            # more on the same source, in a slot of its own, before the crawler gives up on the source.
            # A timeout is not repeated: a hanging path would cost the timeout twice (the breaker keeps it).
            if method != "GET":
                raise lost.error from lost.__cause__
            log.info(
                "%s %s %s lost its connection (%s); sending it once more", source, method, path, lost.error.message
            )
            try:
                response = await self._send(call, params=params, json=json, data=data, headers=all_headers)
            except _ConnectionLost as again:
                raise again.error from again.__cause__
        status = response.status_code
        if status == 429:
            raise QuotaExceeded(
                f"{method} {path} answered 429", source=source, retry_after=retry_after_seconds(response.headers)
            )
        if status >= 500:
            raise ProviderUnavailable(f"{method} {path} answered {status}", source=source)
        return response

    async def _send(self, call: _Call, **content: Any) -> httpx.Response:
        """One try: reserve its cost, wait for a slot, send, count, trace; a transport failure as a typed error."""
        cost = 0.0
        if self._spending is not None:
            # Before the slot: a call its budget refuses must not take a slot either.
            cost = await self._spending.reserve(call.source, call.path)
        slot = None
        if self._limiter is not None:
            waiting = time.perf_counter()
            slot = await self._limiter.acquire(call.source, call.credential.id if call.credential else None)
            child(RATELIMIT_WAIT, call.source).observe(time.perf_counter() - waiting)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        operation = current_operation()
        # The path only: a query may carry a key (YouTube's), and headers and bodies carry secrets.
        span = TRACER.start_span(
            f"{call.source} {call.method}",
            kind=SpanKind.CLIENT,
            attributes={
                "beat.source": call.source,
                "beat.operation": operation,
                "http.request.method": call.method,
                "url.path": call.path.split("?", 1)[0],
            },
        )
        try:
            response = await self._client.request(call.method, call.url, **content)
            status = response.status_code
            return response
        except httpx.TimeoutException as exc:
            error = "timeout"
            raise ProviderTimeout(f"{call.method} {call.path} timed out", source=call.source) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            error = type(exc).__name__
            raise _ConnectionLost(
                ProviderUnavailable(f"{call.method} {call.path} failed: {error}", source=call.source)
            ) from exc
        except httpx.TransportError as exc:
            error = type(exc).__name__
            raise ProviderUnavailable(f"{call.method} {call.path} failed: {error}", source=call.source) from exc
        finally:
            if slot is not None:
                await slot.release()
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None:
                span.set_attribute("error.type", error)
            span.end()
            child(PROVIDER_CALLS, call.source, operation, status_class(status, error)).inc()
            child(PROVIDER_CALL_DURATION, call.source, operation).observe(time.perf_counter() - started)
            if self._spending is not None:
                self._spending.spent(call.source, call.credential.id if call.credential else None, cost)
            await self._trace(
                call.source, call.method, call.url, status, started, call.credential, error, call.request_id
            )

    async def _trace(
        self,
        source: str,
        method: str,
        url: str,
        status: int | None,
        started: float,
        credential: Credential | None,
        error: str | None,
        request_id: str | None,
    ) -> None:
        if self._trace_sink is None:
            return
        parsed = httpx.URL(url)
        record = TraceLog(
            id=str(uuid.uuid4()),
            request_id=request_id,
            source=source,
            method=method,
            host=parsed.host,
            path=parsed.path,
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            credential_id=credential.id if credential else None,
            error=error,
        )
        try:
            await self._trace_sink(record)
        except Exception:  # a lost trace must never fail the call it describes
            log.warning("could not record trace for %s %s", method, parsed.path, exc_info=True)
