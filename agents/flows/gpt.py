"""GPT enrichment (legacy §6): the six flows and the OpenAI client they share.

The client is the ``openai`` package's async client against any OpenAI-compatible endpoint
(``BEAT_OPENAI_BASE_URL``, e.g. https://api.openai.com/v1), or Azure OpenAI with
``BEAT_OPENAI_API_TYPE=azure`` (the base URL is then the resource endpoint and
``BEAT_OPENAI_MODEL`` the deployment). Every HTTP call it makes is a TraceLog with source
``openai``: method, host, path, status, latency; never headers, query or key.

Each flow asks its prompt section (temperature 0, [system, user]), re-asks while the answer is
not consumable (``gpt_rules.RULES``), post-processes the audience answers reproducibly and emits
one ``gpt_enrichment`` ProfileLog keyed by handle, which the sink writes to
``instagram_gpt_enrichment`` only. An answer still unusable after the re-asks fails the request
with what was wrong, and nothing is emitted.
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
import uuid
from typing import Any

import httpx
import openai

from agents.flows import gpt_rules as rules
from agents.flows.context import FlowContext
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
from topics.models import Platform, Profile, TraceLog
from topics.params import GptAudienceAgeGenderParams, GptData, GptParams

log = logging.getLogger(__name__)

SOURCE = "openai"
TEMPERATURE = 0
# One SDK retry absorbs a dropped connection or a passing 5xx/429; the flow's timeout bounds the rest.
MAX_RETRIES = 1
NOT_CONFIGURED = (
    "GPT enrichment is not configured: set BEAT_OPENAI_API_KEY and BEAT_OPENAI_BASE_URL "
    "(and BEAT_OPENAI_API_TYPE=azure for Azure OpenAI)"
)

# The request a call belongs to, for its trace: the SDK gives the transport no way to carry it.
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gpt_request_id", default=None)


class GptNotConfigured(DefinitiveProviderError):
    pass


class GptAnswerRejected(DefinitiveProviderError):
    """The model's answers stayed unusable through every re-ask."""


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


class GptRuntime:
    """The OpenAI client, the prompts of the configured version and the age/gender baseline."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        prompts: rules.Prompts,
        baseline: rules.AgeGenderBaseline,
        *,
        model: str | None = None,
    ) -> None:
        self._client = client
        self.prompts = prompts
        self.baseline = baseline
        self._model = model

    @classmethod
    def from_settings(cls, settings: Settings, trace_sink: TraceSink | None = None) -> GptRuntime | None:
        """None when no endpoint or key is configured. The prompts and the baseline are read either way,
        so a missing prompt version or section stops the worker at start, not each request."""
        prompts = rules.load_prompts(settings.prompt_version)
        baseline = rules.load_baseline()
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
        return cls(client, prompts, baseline, model=settings.openai_model)

    @property
    def source(self) -> str:
        """The events' source label (legacy ``openapi_<PROMPT_VERSION>``)."""
        return f"openapi_{self.prompts.version}"

    async def ask(self, section: str, data: GptData, *, request_id: str | None = None) -> str | None:
        """One question; the reply's text (None when the model gave no text)."""
        prompt = self.prompts.section(section)
        token = _request_id.set(request_id)
        try:
            completion = await self._client.chat.completions.create(
                model=self._model or prompt.model,
                temperature=TEMPERATURE,
                messages=[
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user_message(handle=data.handle, name=data.name, bio=data.bio)},
                ],
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


# The flows


def _runtime(ctx: FlowContext) -> GptRuntime:
    gpt = ctx.tools.gpt if ctx.tools is not None else None
    if gpt is None:
        raise GptNotConfigured(NOT_CONFIGURED, source=SOURCE)
    ctx.used(gpt.source)
    return gpt


async def _answer(ctx: FlowContext, gpt: GptRuntime, flow: str, section: str, data: GptData) -> tuple[Any, int]:
    """The first consumable answer (merged over the re-asks as the section's rules say) and how many
    asks it took."""
    section_rules = rules.RULES[section]
    asks = 1 + section_rules.reasks
    kept: rules.Answer | None = None
    problems: list[str] = []
    for ask in range(1, asks + 1):
        reply = await gpt.ask(section, data, request_id=ctx.request_id)
        try:
            answer = section_rules.read(reply, data.handle)
        except rules.AnswerInvalid as exc:
            problems.append(f"answer {ask}: {exc}")
            continue
        kept = section_rules.merge(kept, answer)
        problem = section_rules.problem(kept)
        if problem is None:
            return kept, ask
        problems.append(f"answer {ask}: {problem}")
    raise GptAnswerRejected(
        f"{flow}: no usable answer for {data.handle!r} in {asks} asks: " + "; ".join(problems), source=SOURCE
    )


def _emit(ctx: FlowContext, gpt: GptRuntime, section: str, handle: str, asks: int, dimensions: dict[str, Any]) -> dict:
    ctx.emit(
        Profile(
            platform=Platform.INSTAGRAM,
            source=gpt.source,
            profile_id=handle,
            handle=handle,
            kind="gpt_enrichment",
            dimensions={"handle": handle, **dimensions},
        )
    )
    return ctx.summary(prompt_version=gpt.prompts.version, section=section, asks=asks)


def _seed(gpt: GptRuntime, section: str, handle: str) -> random.Random:
    return rules.seeded_random(gpt.prompts.version, section, handle)


def _gender(value: str | None) -> str | None:
    return value.strip().upper() if value else value


def _text(value: str | None) -> str | None:
    return value.strip() if value else value


async def refresh_instagram_gpt_data_base_gender(ctx: FlowContext, params: GptParams) -> dict:
    gpt, section, data = _runtime(ctx), rules.BASE_GENDER, params.data
    answer, asks = await _answer(ctx, gpt, "refresh_instagram_gpt_data_base_gender", section, data)
    return _emit(ctx, gpt, section, data.handle, asks, {"gender": _gender(answer.gender)})


async def refresh_instagram_gpt_data_base_location(ctx: FlowContext, params: GptParams) -> dict:
    gpt, section, data = _runtime(ctx), rules.BASE_LOCATION, params.data
    answer, asks = await _answer(ctx, gpt, "refresh_instagram_gpt_data_base_location", section, data)
    return _emit(
        ctx,
        gpt,
        section,
        data.handle,
        asks,
        {"city": _text(answer.city), "state": _text(answer.state), "country": _text(answer.country)},
    )


async def refresh_instagram_gpt_data_base_categ_lang_topics(ctx: FlowContext, params: GptParams) -> dict:
    gpt, section, data = _runtime(ctx), rules.BASE_CATEG_LANG_TOPICS, params.data
    answer, asks = await _answer(ctx, gpt, "refresh_instagram_gpt_data_base_categ_lang_topics", section, data)
    # Lists, where legacy stringified the categories: the sink stores them as jsonb.
    return _emit(
        ctx,
        gpt,
        section,
        data.handle,
        asks,
        {"categories": answer.categories, "languages": answer.languages, "topics": answer.topics},
    )


async def refresh_instagram_gpt_data_audience_age_gender(ctx: FlowContext, params: GptAudienceAgeGenderParams) -> dict:
    gpt, section, data = _runtime(ctx), rules.AUDIENCE_AGE_GENDER, params.data
    answer, asks = await _answer(ctx, gpt, "refresh_instagram_gpt_data_audience_age_gender", section, data)
    baseline = gpt.baseline.for_category(data.category)
    shares = rules.normalise_age_gender(answer.audience.age_gender, baseline, _seed(gpt, section, data.handle))
    # row_data is the answer the numbers came from (legacy kept the first answer even when a re-ask replaced it).
    return _emit(
        ctx,
        gpt,
        section,
        data.handle,
        asks,
        {"audience_gender_age": shares, "row_data": answer.model_dump(mode="json")},
    )


async def refresh_instagram_gpt_data_audience_cities(ctx: FlowContext, params: GptParams) -> dict:
    gpt, section, data = _runtime(ctx), rules.AUDIENCE_CITIES, params.data
    answer, asks = await _answer(ctx, gpt, "refresh_instagram_gpt_data_audience_cities", section, data)
    cities = rules.spread_cities(answer.audience.cities, _seed(gpt, section, data.handle))
    return _emit(
        ctx, gpt, section, data.handle, asks, {"audience_city": cities, "row_data": answer.model_dump(mode="json")}
    )


async def refresh_instagram_gpt_data_gender_location_lang(ctx: FlowContext, params: GptParams) -> dict:
    gpt, section, data = _runtime(ctx), rules.GENDER_LOCATION_LANG, params.data
    answer, asks = await _answer(ctx, gpt, "refresh_instagram_gpt_data_gender_location_lang", section, data)
    return _emit(
        ctx,
        gpt,
        section,
        data.handle,
        asks,
        {
            "city": _text(answer.city),
            "state": _text(answer.state),
            "country": _text(answer.country),
            "languages": answer.languages,
            "gender": _gender(answer.gender),
        },
    )
