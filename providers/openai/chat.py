"""OpenAI-compatible chat completions: the client GPT enrichment asks, its traces and its typed errors.

The client is the ``openai`` package's async client against any OpenAI-compatible endpoint
(``BEAT_OPENAI_BASE_URL``, e.g. https://api.openai.com/v1), or Azure OpenAI with
``BEAT_OPENAI_API_TYPE=azure`` (the base URL is then the resource endpoint and
``BEAT_OPENAI_MODEL`` the deployment). Every HTTP call it makes is a TraceLog with source
``openai``: method, host, path, status, latency; never headers, query or key.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid

import httpx
import openai

from core.settings import Settings
from providers.errors import (
    AuthExpired,
    BadResponse,
    DefinitiveProviderError,
    Forbidden,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import TraceSink, retry_after_seconds
from topics.models import TraceLog

log = logging.getLogger(__name__)

SOURCE = "openai"
# One SDK retry absorbs a dropped connection or a passing 5xx/429; the flow's timeout bounds the rest.
MAX_RETRIES = 1

# The request a call belongs to, for its trace: the SDK gives the transport no way to carry it.
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gpt_request_id", default=None)


class GptRequestRejected(DefinitiveProviderError):
    """The endpoint refused the request itself (a 4xx other than 401, 403 and 429): asking again cannot help."""


class _TracedTransport(httpx.AsyncBaseTransport):
    """Records every call, failed ones included (event hooks never see a call that got no response)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, trace_sink: TraceSink | None) -> None:
        self._inner = inner
        self._trace_sink = trace_sink

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._inner.handle_async_request(request)
            status = response.status_code
            return response
        except httpx.TimeoutException:
            error = "timeout"
            raise
        except httpx.TransportError as exc:
            error = type(exc).__name__
            raise
        finally:
            await self._trace(request, status, error, started)

    async def _trace(self, request: httpx.Request, status: int | None, error: str | None, started: float) -> None:
        if self._trace_sink is None:
            return
        record = TraceLog(
            id=str(uuid.uuid4()),
            request_id=_request_id.get(),
            source=SOURCE,
            method=request.method,
            host=request.url.host,
            path=request.url.path,
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            error=error,
        )
        try:
            await self._trace_sink(record)
        except Exception:  # a lost trace must never fail the call it describes
            log.warning("could not record trace for %s %s", request.method, request.url.path, exc_info=True)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _provider_error(exc: openai.APIError) -> ProviderError:
    """The typed error for a failed call; messages name the status and OpenAI's error code, never the
    body's text (a 401 body quotes part of the key)."""
    where = "POST chat/completions"
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(f"{where} timed out", source=SOURCE)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"{where} failed: the endpoint could not be reached", source=SOURCE)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = f" ({exc.code})" if isinstance(exc.code, str) and exc.code else ""
        if isinstance(exc, openai.RateLimitError):
            return QuotaExceeded(
                f"{where} answered 429{code}",
                source=SOURCE,
                retry_after=retry_after_seconds(httpx.Headers(dict(exc.response.headers))),
            )
        if isinstance(exc, openai.AuthenticationError):
            return AuthExpired(
                f"{where} answered 401{code}: the API key was refused (BEAT_OPENAI_API_KEY)", source=SOURCE
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return Forbidden(f"{where} answered 403{code}", source=SOURCE)
        if status >= 500:
            return ProviderUnavailable(f"{where} answered {status}{code}", source=SOURCE)
        return GptRequestRejected(f"{where} answered {status}{code}", source=SOURCE)
    return BadResponse(f"{where}: {type(exc).__name__}", source=SOURCE)


class OpenAIChatClient:
    """Asks one [system, user] question per call. ``model`` is the configured one (Azure: the deployment),
    which wins over the model a caller names."""

    def __init__(self, client: openai.AsyncOpenAI, *, model: str | None = None) -> None:
        self._client = client
        self._model = model

    @classmethod
    def from_settings(cls, settings: Settings, trace_sink: TraceSink | None = None) -> OpenAIChatClient | None:
        """None when no endpoint or key is configured."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key is not None else ""
        if not settings.openai_base_url or not key:
            return None
        timeout = httpx.Timeout(settings.http_timeout)
        http = httpx.AsyncClient(transport=_TracedTransport(httpx.AsyncHTTPTransport(), trace_sink), timeout=timeout)
        client: openai.AsyncOpenAI
        if settings.openai_api_type == "azure":
            # openai takes an httpx client at run time; its annotations name only httpx2's.
            client = openai.AsyncAzureOpenAI(  # type: ignore[call-overload]
                azure_endpoint=settings.openai_base_url,
                api_key=key,
                api_version=settings.openai_api_version,
                timeout=timeout,
                max_retries=MAX_RETRIES,
                http_client=http,
            )
        else:
            client = openai.AsyncOpenAI(
                base_url=settings.openai_base_url,
                api_key=key,
                timeout=timeout,  # type: ignore[arg-type]  # see the Azure client above
                max_retries=MAX_RETRIES,
                http_client=http,  # type: ignore[arg-type]
            )
        return cls(client, model=settings.openai_model)

    async def complete(
        self, system: str, user: str, *, model: str, temperature: float, request_id: str | None = None
    ) -> str | None:
        """The reply's text (None when the model gave no text)."""
        token = _request_id.set(request_id)
        try:
            completion = await self._client.chat.completions.create(
                model=self._model or model,
                temperature=temperature,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise _provider_error(exc) from None  # their bodies quote the key; keep them out of tracebacks
        except openai.APIError as exc:
            raise _provider_error(exc) from exc
        finally:
            _request_id.reset(token)
        choices = getattr(completion, "choices", None)
        if not isinstance(choices, list):
            raise BadResponse("POST chat/completions answered without choices", source=SOURCE)
        return choices[0].message.content if choices else None

    async def aclose(self) -> None:
        await self._client.close()
