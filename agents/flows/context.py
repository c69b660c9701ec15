"""What a flow gets to work with, and how its results become events with deterministic ids."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from providers.crawler import Crawler
from providers.models import PostData, ProfileData
from topics import names
from topics.models import LogEvent, PostLog, ProfileLog, ScrapeRequest, deterministic_id, utcnow


@dataclass
class FlowContext:
    request: ScrapeRequest
    crawler: Crawler
    wait_scale: float = 1.0
    events: list[tuple[str, str, LogEvent]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def request_id(self) -> str:
        assert self.request.id is not None
        return self.request.id

    async def wait(self, seconds: float) -> None:
        """A wait between pages or before a retry; scaled by configuration (tests run near zero)."""
        if seconds * self.wait_scale > 0:
            await asyncio.sleep(seconds * self.wait_scale)

    def used(self, source: str) -> None:
        if source not in self.sources:
            self.sources.append(source)

    def _event_id(self, kind: str, key: str) -> str:
        return deterministic_id(self.request_id, self.request.attempt, kind, key, len(self.events))

    def emit_profile(self, data: ProfileData) -> ProfileLog:
        event = ProfileLog(
            event_id=self._event_id(data.kind, f"{data.platform.value}:{data.profile_id}"),
            kind=data.kind,
            request_id=self.request_id,
            source=data.source,
            platform=data.platform,
            profile_id=data.profile_id,
            handle=data.handle,
            observed_at=utcnow(),
            metrics=data.metrics,
            dimensions=data.dimensions,
        )
        self.events.append((names.PROFILE_LOG, event.key, event))
        return event

    def emit_post(self, data: PostData, **extra_dimensions: Any) -> PostLog:
        event = PostLog(
            event_id=self._event_id(data.kind, f"{data.platform.value}:{data.shortcode}"),
            kind=data.kind,
            request_id=self.request_id,
            source=data.source,
            platform=data.platform,
            profile_id=data.profile_id,
            handle=data.handle,
            shortcode=data.shortcode,
            publish_time=data.publish_time,
            observed_at=utcnow(),
            metrics=data.metrics,
            dimensions={**data.dimensions, **extra_dimensions},
        )
        self.events.append((names.POST_LOG, event.key, event))
        return event

    def summary(self, **extra: Any) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for topic, _, _ in self.events:
            counts[topic] = counts.get(topic, 0) + 1
        return {"events": counts, **extra}
