"""What a flow gets to work with, and how its results become events with deterministic ids."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, cast

from core.queries import StoredData
from providers.crawler import AllSourcesFailed, Crawler
from providers.errors import BadResponse, NoCredential, RetriableProviderError
from providers.operations import Operation
from topics import registry
from topics.limits import clean_texts, json_problem
from topics.models import Model, Payload, ScrapeRequest, deterministic_id, utcnow

if TYPE_CHECKING:
    from agents.flows.assets import AssetRuntime
    from agents.flows.gpt import GptRuntime
    from agents.flows.report_tools import ReportTools
    from providers.youtube.ray import RayClient
    from providers.youtube.youtube_web import YouTubeWebClient

T = TypeVar("T")
C = TypeVar("C")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

# A later page that fails transiently is asked again this many times within the attempt, this far apart.
PAGE_RETRIES = 2
PAGE_RETRY_WAIT = 1.0
# The longest known wait (Retry-After, a rested key) a flow sits out itself rather than end its attempt.
MAX_IN_FLOW_WAIT = 10.0
E = TypeVar("E", bound=Model)
P = TypeVar("P", bound=Payload)


@dataclass(frozen=True, slots=True)
class FlowTools:
    """Credential-free services some flows call beside the crawler; None where not configured."""

    youtube_web: YouTubeWebClient | None = None
    ray: RayClient | None = None
    gpt: GptRuntime | None = None
    # Where the collection reports say their files are: the deployment's name and the asset store's bucket.
    environment: str = "local"
    bucket: str | None = None

    async def aclose(self) -> None:
        if self.gpt is not None:
            await self.gpt.aclose()


@dataclass
class FlowContext:
    request: ScrapeRequest
    crawler: Crawler
    queries: StoredData | None = None
    wait_scale: float = 1.0
    assets: AssetRuntime | None = None
    tools: FlowTools | None = None
    reports: ReportTools | None = None
    events: list[tuple[str, str, Model]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def request_id(self) -> str:
        assert self.request.id is not None
        return self.request.id

    async def wait(self, seconds: float) -> None:
        """A wait between pages or before a retry; scaled by configuration (tests run near zero)."""
        if seconds * self.wait_scale > 0:
            await asyncio.sleep(seconds * self.wait_scale)

    async def fetch(
        self, operation: Operation[C, *Ts, R], *args: *Ts, only: str | None = None, handle: str | None = None
    ) -> tuple[R, str]:
        """A provider call through the crawler's source fallback; remembers which source answered.

        A later page (``only`` pins the first page's source) that fails transiently is asked again within
        the attempt: a retry of the whole request would start again from the first page, and a flow of
        many pages would rarely get through a flaky provider whole.
        """

        async def call() -> tuple[R, str]:
            return await self.crawler.fetch(operation, *args, only=only, handle=handle, request_id=self.request_id)

        if only is None:
            result, source = await call()
        else:
            result, source = await self.retrying(call, retries=PAGE_RETRIES, sleep=PAGE_RETRY_WAIT)
        self.used(source)
        return result, source

    def used(self, source: str) -> None:
        """Record a source that answered, for the request's status (each once, in order of first use)."""
        if source not in self.sources:
            self.sources.append(source)

    def _append(self, topic: str, key: str, event: E) -> E:
        """Keep ``event`` for producing. Text the store cannot hold (a NUL, a lone surrogate in a bio) is
        cleaned; a number it cannot hold (beyond int64, NaN, infinity) refuses the answer behind it, and the
        request fails naming the field instead of completing without its row."""
        cleaned: dict[str, Any] = {}
        for name, value in event:
            # Datetimes and enums were made by Beat; everything else may carry what a provider said.
            if isinstance(value, (datetime, Enum)):
                continue
            if isinstance(value, list) and value and all(isinstance(item, Model) for item in value):
                continue  # a page's activities: each was emitted, so checked and cleaned, before the page
            if json_problem(value, name) is None:
                continue  # the common case: one walk, nothing to clean
            # Cleaning the text may leave nothing wrong; what is left is a number the store cannot hold.
            text_clean = clean_texts(value)
            problem = json_problem(text_clean, name)
            if problem:
                raise BadResponse(problem, source=getattr(event, "source", None))
            cleaned[name] = text_clean
        if cleaned:
            event = event.model_copy(update=cleaned)
        self.events.append((topic, key, event))
        return event

    def _event_id(self, kind: str, key: str) -> str:
        return deterministic_id(self.request_id, self.request.attempt, kind, key, len(self.events))

    def emit(self, payload: P, **extra_dimensions: Any) -> P:
        """Stamp ``payload`` into its log event and keep it for producing; returns the event.

        The topic and key come from the registry. ``extra_dimensions`` are the flow's own additions to
        what the source said (keywords, a collaboration); they win over the payload's dimensions.
        """
        spec = registry.for_payload(payload)
        if payload.kind not in spec.kinds:
            # Each topic's kinds are part of its published schema; a new one is added to the registry first.
            raise ValueError(f"{spec.name} carries no kind {payload.kind!r}; known: {', '.join(spec.kinds)}")
        values = payload.carried()
        if extra_dimensions:
            if "dimensions" not in values:
                raise TypeError(f"a {type(payload).__name__} has no dimensions to add {', '.join(extra_dimensions)} to")
            values["dimensions"] = {**values["dimensions"], **extra_dimensions}
        # The registry pairs each payload with its event class, a subclass of it.
        event = cast(
            P,
            spec.event_for(type(payload)).model_validate(
                {
                    **values,
                    "event_id": self._event_id(payload.kind, payload.event_key),
                    "request_id": self.request_id,
                    "attempt": self.request.attempt,
                    "observed_at": utcnow(),
                }
            ),
        )
        return self._append(spec.name, event.key, event)

    async def retrying(self, call: Callable[[], Awaitable[T]], *, retries: int, sleep: float) -> T:
        """``call`` again after a provider failure, up to ``retries`` more times, waiting ``sleep`` between.

        Only failures another try could fix are retried; a definitive answer is returned at once.
        """
        failures = 0
        while True:
            try:
                return await call()
            except (AllSourcesFailed, NoCredential, RetriableProviderError) as exc:
                failures += 1
                # A long known wait (a spent quota, an open circuit) is the attempt's to wait out, not the flow's.
                if failures > retries or not exc.retriable or (exc.ready_in or 0) > MAX_IN_FLOW_WAIT:
                    raise
                wait = max(sleep, exc.ready_in or 0)
            await self.wait(wait)

    def summary(self, **extra: Any) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for topic, _, _ in self.events:
            counts[topic] = counts.get(topic, 0) + 1
        return {"events": counts, **extra}
