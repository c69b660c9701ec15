"""GPT enrichment (legacy §6): the six flows and the runtime they share.

The runtime pairs the chat client (``providers/openai/chat.py``: the OpenAI or Azure OpenAI endpoint,
its traces and typed errors) with the prompts of the configured version and the age/gender baseline.
Each flow asks its prompt section (temperature 0, [system, user]), re-asks while the answer is
not consumable (``gpt_rules.RULES``), post-processes the audience answers reproducibly and emits
one ``gpt_enrichment`` ProfileLog keyed by handle, which the sink writes to
``instagram_gpt_enrichment`` only. An answer still unusable after the re-asks fails the request
with what was wrong, and nothing is emitted.
"""

from __future__ import annotations

import random
from typing import Any

from agents.flows import gpt_rules as rules
from agents.flows.context import FlowContext
from core.settings import Settings
from providers.errors import DefinitiveProviderError
from providers.http import TraceSink
from providers.openai.chat import SOURCE, OpenAIChatClient
from topics.models import Platform, Profile
from topics.params import GptAudienceAgeGenderParams, GptData, GptParams

TEMPERATURE = 0
NOT_CONFIGURED = (
    "GPT enrichment is not configured: set BEAT_OPENAI_API_KEY and BEAT_OPENAI_BASE_URL "
    "(and BEAT_OPENAI_API_TYPE=azure for Azure OpenAI)"
)


class GptNotConfigured(DefinitiveProviderError):
    pass


class GptAnswerRejected(DefinitiveProviderError):
    """The model's answers stayed unusable through every re-ask."""


class GptRuntime:
    """The chat client, the prompts of the configured version and the age/gender baseline."""

    def __init__(self, chat: OpenAIChatClient, prompts: rules.Prompts, baseline: rules.AgeGenderBaseline) -> None:
        self._chat = chat
        self.prompts = prompts
        self.baseline = baseline

    @classmethod
    def from_settings(cls, settings: Settings, trace_sink: TraceSink | None = None) -> GptRuntime | None:
        """None when no endpoint or key is configured. The prompts and the baseline are read either way,
        so a missing prompt version or section stops the worker at start, not each request."""
        prompts = rules.load_prompts(settings.prompt_version)
        baseline = rules.load_baseline()
        chat = OpenAIChatClient.from_settings(settings, trace_sink)
        return None if chat is None else cls(chat, prompts, baseline)

    @property
    def source(self) -> str:
        """The events' source label (legacy ``openapi_<PROMPT_VERSION>``)."""
        return f"openapi_{self.prompts.version}"

    async def ask(self, section: str, data: GptData, *, request_id: str | None = None) -> str | None:
        """One question; the reply's text (None when the model gave no text)."""
        prompt = self.prompts.section(section)
        return await self._chat.complete(
            prompt.system,
            prompt.user_message(handle=data.handle, name=data.name, bio=data.bio),
            model=prompt.model,
            temperature=TEMPERATURE,
            request_id=request_id,
        )

    async def aclose(self) -> None:
        await self._chat.aclose()


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
