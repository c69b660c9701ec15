"""Source selection with fallback: walk a fetch type's priority list, fall through on retriable errors.

Priority lists are data (legacy §3.1 defaults). Sources without a built client are
skipped, so the lists can name every legacy source while providers arrive one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from providers.credentials import CredentialStore
from providers.errors import NoCredential, ProviderError, RetriableProviderError
from providers.http import Credential

log = logging.getLogger(__name__)

T = TypeVar("T")

PRIORITIES: dict[str, tuple[str, ...]] = {
    "fetch_profile_by_id": ("rapidapi-jotucker", "rapidapi-arraybobo"),
    "fetch_profile_by_handle": ("graphapi", "rapidapi-arraybobo", "rapidapi-jotucker", "lama", "rapidapi-bestsolutions"),
    "fetch_profile_posts_by_id": ("rapidapi-jotucker", "lama", "rapidapi-arraybobo"),
    "fetch_reels_posts": ("rapidapi-arraybobo", "rocketapi"),
    "fetch_post_by_shortcode": ("rapidapi-arraybobo", "rapidapi-jotucker", "rocketapi", "lama"),
}


class AllSourcesFailed(ProviderError):
    """Every source of a fetch type failed or had no usable credential; the message lists each."""


@dataclass(frozen=True, slots=True)
class Attempt:
    source: str
    reason: str


class Crawler:
    def __init__(self, credentials: CredentialStore, clients: dict[str, object]) -> None:
        self._credentials = credentials
        self._clients = clients

    def sources_for(self, fetch_type: str) -> list[str]:
        return [source for source in PRIORITIES[fetch_type] if source in self._clients]

    async def fetch(
        self,
        fetch_type: str,
        call: Callable[[object, Credential], Awaitable[T]],
        *,
        only: str | None = None,
    ) -> tuple[T, str]:
        """Run ``call(client, credential)`` on the first source that answers; return (result, source).

        ``only`` pins a source (later pages stick to the first page's source).
        """
        sources = [only] if only else self.sources_for(fetch_type)
        tried: list[Attempt] = []
        for source in sources:
            credential = await self._credentials.pick(source)
            if credential is None:
                tried.append(Attempt(source, "no enabled credential"))
                continue
            try:
                return await call(self._clients[source], credential), source
            except RetriableProviderError as exc:
                log.info("%s failed for %s (%s), trying the next source", source, fetch_type, type(exc).__name__)
                tried.append(Attempt(source, f"{type(exc).__name__}: {exc.message}"))
        summary = "; ".join(f"{a.source}: {a.reason}" for a in tried) or "no source has a client"
        if tried and all(a.reason == "no enabled credential" for a in tried):
            raise NoCredential(f"{fetch_type}: no source is available ({summary})")
        raise AllSourcesFailed(f"{fetch_type}: every source failed ({summary})")
