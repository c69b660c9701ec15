"""Source selection with fallback: walk a fetch type's priority list, fall through on retriable errors.

Priority lists are data (legacy §3.1 defaults, overridable). A retriable failure of
one source (timeout, 5xx, 429, quota) or a credential problem (refused token, no
usable credential, an operation the source does not support) moves on to the next
source within the same attempt; the request fails only when every source has failed,
and the error names each source tried and why. Sources without a built client are
skipped, so the lists can name every legacy source.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.credentials import CredentialPolicy, CredentialStore
from providers.errors import (
    AuthExpired,
    NoCredential,
    NotSupported,
    ProviderError,
    QuotaExceeded,
    RetriableProviderError,
)

log = logging.getLogger(__name__)

PRIORITIES: dict[str, tuple[str, ...]] = {
    "fetch_profile_by_id": ("rapidapi-jotucker", "rapidapi-arraybobo"),
    "fetch_profile_by_handle": ("graphapi", "rapidapi-arraybobo", "rapidapi-jotucker", "lama", "rapidapi-bestsolutions"),
    "fetch_profile_posts_by_id": ("rapidapi-jotucker", "lama", "rapidapi-arraybobo"),
    "fetch_profile_posts_by_handle": ("graphapi",),
    "fetch_reels_posts": ("rapidapi-arraybobo", "rocketapi"),
    "fetch_post_by_shortcode": ("rapidapi-arraybobo", "rapidapi-jotucker", "rocketapi", "lama"),
    "fetch_post_insights": ("graphapi",),
    "fetch_profile_insights": ("graphapi",),
    "fetch_story_insights": ("graphapi",),
    "fetch_stories_by_handle": ("graphapi",),
    "fetch_post_comments": ("rapidapi-jotucker",),
    "fetch_post_likes": ("rapidapi-jotucker",),
    "fetch_following": ("rapidapi-jotucker", "lama"),
    "fetch_followers": ("rocketapi", "rapidapi-jotucker"),
    "fetch_hashtag_posts": ("rapidapi-jotucker", "lama"),
    "fetch_tagged_posts_by_profile_id": ("rapidapi-arraybobo",),
    "fetch_story_posts_by_profile_id": ("rapidapi-arraybobo", "rocketapi", "lama"),
    # YouTube
    "fetch_yt_profiles": ("ytapitoken",),
    "fetch_yt_posts": ("ytapitoken",),
    "fetch_yt_playlist_items": ("ytapitoken",),
    "fetch_yt_genre_search": ("ytapitoken",),
    "fetch_yt_activities": ("ytapitoken",),
    "fetch_yt_subscriptions": ("ytapitoken",),
    "fetch_yt_channel_posts": ("ytapitoken", "yt-v31", "rapidapi-yt"),
    "fetch_yt_search": ("ytapitoken", "rapidapi-yt-search"),
    "fetch_yt_comments": ("ytapitoken", "rapidapi-yt-search"),
    "fetch_yt_profile_insights": ("ytapi",),
    # Shopify
    "fetch_orders": ("shopify",),
}

# Followers are spread by weight rather than by priority (legacy: rocketapi 0.7 / jotucker 0.3).
WEIGHTS: dict[str, dict[str, float]] = {
    "fetch_followers": {"rocketapi": 0.7, "rapidapi-jotucker": 0.3},
}

# Sources whose credential belongs to one account: a caller acting for an account (insights,
# stories) names its handle; without one (business_discovery lookups) any credential serves.
# YouTube Analytics credentials belong to a channel, Shopify's to a store.
PER_HANDLE_SOURCES = frozenset({"graphapi", "ytapi", "shopify"})


# (fetch type, source) pairs whose every failure falls through to the next source. Graph's
# business_discovery only sees business and creator accounts, so its "no such user" is no
# verdict on the handle (legacy: profile by handle retried without graphapi when Graph raised).
FALL_THROUGH_ALWAYS = frozenset({("fetch_profile_by_handle", "graphapi")})


class AllSourcesFailed(ProviderError):
    """Every source of a fetch type failed or had no usable credential; the message lists each."""


@dataclass(frozen=True, slots=True)
class Attempt:
    source: str
    reason: str


class Crawler:
    def __init__(
        self,
        credentials: CredentialStore,
        policy: CredentialPolicy,
        clients: dict[str, object],
        priorities: dict[str, Sequence[str]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._credentials = credentials
        self._policy = policy
        self._clients = clients
        self._priorities = {**PRIORITIES, **(priorities or {})}
        self._rng = rng or random.Random()

    def sources_for(self, fetch_type: str) -> list[str]:
        sources = [source for source in self._priorities[fetch_type] if source in self._clients]
        weights = WEIGHTS.get(fetch_type)
        if weights and sources:
            # The weighted pick goes first; the others stay as fallbacks in priority order.
            first = self._rng.choices(sources, weights=[weights.get(s, 0.0) for s in sources])[0]
            sources = [first, *(s for s in sources if s != first)]
        return sources

    async def fetch(
        self,
        fetch_type: str,
        operation: str,
        *args: Any,
        only: str | None = None,
        handle: str | None = None,
        request_id: str | None = None,
    ) -> tuple[Any, str]:
        """Call ``operation(*args)`` on the first source of ``fetch_type`` that answers; return (result, source).

        ``only`` pins a source (later pages stick to the first page's source); ``handle``
        is the account a per-handle source (Graph) must act for.
        """
        sources = [only] if only else self.sources_for(fetch_type)
        tried: list[Attempt] = []
        for source in sources:
            method = getattr(self._clients.get(source), operation, None)
            if method is None:
                tried.append(Attempt(source, f"does not support {operation}"))
                continue
            credential = await self._credentials.pick(source, handle if source in PER_HANDLE_SOURCES else None)
            if credential is None:
                tried.append(Attempt(source, "no enabled credential" + (f" for {handle}" if handle else "")))
                continue
            try:
                return await method(*args, credential=credential, request_id=request_id), source
            except QuotaExceeded as exc:
                await self._policy.rest(credential, exc.retry_after)
                tried.append(Attempt(source, f"QuotaExceeded: {exc.message}"))
            except AuthExpired as exc:
                await self._policy.expire(credential)
                tried.append(Attempt(source, f"AuthExpired: {exc.message}"))
            except (RetriableProviderError, NotSupported) as exc:
                tried.append(Attempt(source, f"{type(exc).__name__}: {exc.message}"))
            except ProviderError as exc:
                if (fetch_type, source) not in FALL_THROUGH_ALWAYS:
                    raise
                tried.append(Attempt(source, f"{type(exc).__name__}: {exc.message}"))
            log.info("%s failed for %s (%s); trying the next source", source, fetch_type, tried[-1].reason)
        summary = "; ".join(f"{a.source}: {a.reason}" for a in tried) or "no source has a client"
        if tried and all(a.reason.startswith("no enabled credential") for a in tried):
            raise NoCredential(f"{fetch_type}: no source is available ({summary})")
        raise AllSourcesFailed(f"{fetch_type}: every source failed ({summary})")
