"""Source selection with fallback: walk a fetch type's priority list, fall through on retriable errors.

A fetch type is an ``Operation`` (``providers/operations.py``): the client method a source must have,
typed from the flow's arguments to its result. Priority lists are data keyed by the fetch type's name
(legacy §3.1 defaults, overridable). Within one attempt:

- a source whose circuit is open is skipped without a call (``providers/breaker.py``);
- a 429/quota answer or a refused token tries the source's next usable credential (each at most
  once) before the next source; quota and auth failures count toward that credential's circuit;
- a timeout, 5xx, connection failure or an answer that does not parse moves on to the next source
  and counts toward the source's circuit; so does an operation the source does not support (without
  counting), and a source without a usable credential;
- a definitive answer (the entity does not exist, the input was refused) ends the fetch at once.

When no source answered, ``errors.failed`` sums up why: the error names each source tried and
says whether a later attempt could succeed and when (``retriable``, ``ready_in``). Sources without
a built client are skipped, so the lists can name every legacy source.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import TypeVar, TypeVarTuple

from core.logs import source_context
from core.metrics import PARSE_FAILURES, child
from providers.breaker import Admission, Breaker, credential_scope, source_scope
from providers.credential_cache import CredentialCache
from providers.credentials import CredentialPolicy
from providers.drift import ParseRate, answer_drifted, calling
from providers.errors import (
    AllSourcesFailed,
    AuthExpired,
    BadResponse,
    BudgetExhausted,
    BudgetWait,
    NoCredential,
    NotSupported,
    ProviderError,
    QuotaExceeded,
    RetriableProviderError,
    SourceFailure,
    failed,
)
from providers.http import Credential
from providers.operations import Method, Operation
from topics.errors import BeatError, Decision

__all__ = ["PRIORITIES", "AllSourcesFailed", "Crawler", "NoCredential"]

log = logging.getLogger(__name__)

C = TypeVar("C")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

# By fetch type name (``providers/operations.py``), the keys ``BEAT_SOURCE_PRIORITIES`` overrides.
PRIORITIES: dict[str, tuple[str, ...]] = {
    "fetch_profile_by_id": ("rapidapi-jotucker", "rapidapi-arraybobo"),
    "fetch_profile_by_handle": (
        "graphapi",
        "rapidapi-arraybobo",
        "rapidapi-jotucker",
        "lama",
        "rapidapi-bestsolutions",
    ),
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

DRIFT_NOTE = " (drift alarm: too many recent answers drifted or did not parse)"


class Crawler:
    def __init__(
        self,
        credentials: CredentialCache,
        policy: CredentialPolicy,
        clients: dict[str, object],
        priorities: Mapping[str, Sequence[str]] | None = None,
        rng: random.Random | None = None,
        breaker: Breaker | None = None,
        parse_rate: ParseRate | None = None,
    ) -> None:
        self._parse_rate = parse_rate
        self._credentials = credentials
        self._policy = policy
        self._clients = clients
        self._priorities = {**PRIORITIES, **(priorities or {})}
        self._rng = rng or random.Random()
        self._breaker = breaker

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
        operation: Operation[C, *Ts, R],
        *args: *Ts,
        only: str | None = None,
        handle: str | None = None,
        request_id: str | None = None,
    ) -> tuple[R, str]:
        """Call ``operation`` with ``args`` on the first source of its fetch type that answers; return
        (result, source).

        ``only`` pins a source (later pages stick to the first page's source); ``handle``
        is the account a per-handle source (Graph) must act for.
        """
        fetch_type = operation.name
        sources = [only] if only else self.sources_for(fetch_type)
        failures: list[SourceFailure] = []
        for source in sources:
            client = self._clients.get(source)
            if not operation.served_by(client):
                failures.append(SourceFailure(source, f"does not support {operation.method_name}", transient=False))
                continue
            account = handle if source in PER_HANDLE_SOURCES else None
            try:
                with calling(fetch_type), source_context(source):
                    return await self._call(source, operation.method(client), args, account, request_id), source
            except _SourceFailed as exc:
                failures.append(exc.failure)
            except ProviderError as exc:
                if (fetch_type, source) not in FALL_THROUGH_ALWAYS:
                    raise
                failures.append(SourceFailure(source, f"{type(exc).__name__}: {exc.message}", transient=False))
            log.info("%s failed for %s (%s); trying the next source", source, fetch_type, failures[-1].reason)
        raise failed(fetch_type, failures)

    async def _call(
        self, source: str, method: Method[*Ts, R], args: tuple[*Ts], handle: str | None, request_id: str | None
    ) -> R:
        """One source's answer, trying its credentials in turn on per-key refusals; raise ``_SourceFailed``
        when it has none, or the definitive error it answered."""
        scope = source_scope(source)
        gate = await self._admit(scope)
        if gate is not None and not gate.allowed:
            raise _SourceFailed(
                SourceFailure(source, f"circuit open, next probe in {gate.wait:.3g}s", transient=True, wait=gate.wait)
            )
        probe = gate is not None and gate.probe
        tried: list[str] = []
        refused: list[SourceFailure] = []  # the per-key refusals of this source's credentials
        try:
            while True:
                credential = await self._credentials.pick(source, handle, tried)
                if credential is None:
                    raise _SourceFailed(
                        await self._keys_refused(source, handle, refused)
                        if refused
                        else await self._no_credential(source, handle)
                    )
                tried.append(credential.id)
                key_gate = await self._admit(credential_scope(source, credential.id))
                if key_gate is not None and not key_gate.allowed:
                    refused.append(
                        SourceFailure(
                            source, f"credential {credential.id}'s circuit is open", transient=True, wait=key_gate.wait
                        )
                    )
                    continue
                key_probe = key_gate is not None and key_gate.probe
                try:
                    result = await method(*args, credential=credential, request_id=request_id)
                except BudgetWait as exc:
                    # Nothing was called: the source is fine, only its budget (or the flow's) is spent.
                    raise _SourceFailed(
                        SourceFailure(source, f"BudgetWait: {exc.message}", transient=True, wait=exc.ready_in)
                    ) from exc
                except BudgetExhausted:
                    raise
                except QuotaExceeded as exc:
                    rest = await self._policy.rest(credential, exc.retry_after)
                    await self._key_failed(credential, exc, key_probe)
                    # Another call's success may come first, but this key cannot serve before its rest is over.
                    refused.append(SourceFailure(source, f"QuotaExceeded: {exc.message}", transient=True, wait=rest))
                    continue
                except AuthExpired as exc:
                    await self._policy.expire(credential)
                    await self._key_failed(credential, exc, key_probe)
                    refused.append(SourceFailure(source, f"AuthExpired: {exc.message}", transient=False))
                    continue
                except NotSupported as exc:
                    await self._answered(scope, probe, credential, key_probe)
                    probe = False
                    raise _SourceFailed(SourceFailure(source, f"NotSupported: {exc.message}", transient=False)) from exc
                except RetriableProviderError as exc:
                    if isinstance(exc, BadResponse):
                        child(PARSE_FAILURES, source).inc()
                    drifting = self._drifting(source, isinstance(exc, BadResponse))
                    if self._breaker is not None:
                        await self._breaker.failed(
                            scope,
                            f"{type(exc).__name__}: {exc.message}" + (DRIFT_NOTE if drifting else ""),
                            probe=probe,
                            threshold=1 if drifting else None,
                        )
                    probe = False
                    raise _SourceFailed(
                        SourceFailure(source, f"{type(exc).__name__}: {exc.message}", transient=True, wait=exc.ready_in)
                    ) from exc
                except ProviderError:
                    # A definitive answer is still an answer: the source works.
                    await self._answered(scope, probe, credential, key_probe)
                    probe = False
                    raise
                if self._drifting(source, answer_drifted()) and self._breaker is not None:
                    # The answer parsed but lacks fields the parser expects, as most recent ones did: the
                    # source has changed shape; it is skipped until a probe answers whole again.
                    await self._breaker.failed(
                        scope, "answers lack expected fields" + DRIFT_NOTE, probe=probe, threshold=1
                    )
                else:
                    await self._answered(scope, probe, credential, key_probe)
                await self._policy.answered(credential)
                probe = False
                return result
        finally:
            if probe and self._breaker is not None:
                # Admitted as the probe but never called: let the next caller probe.
                await self._breaker.abandon(scope)

    def _drifting(self, source: str, bad: bool) -> bool:
        """Count one answer of ``source``; True when its recent answers drifted or failed to parse too often."""
        return self._parse_rate is not None and self._parse_rate.record(source, bad)

    async def _admit(self, scope: str) -> Admission | None:
        return None if self._breaker is None else await self._breaker.admit(scope)

    async def _answered(self, scope: str, probe: bool, credential: Credential, key_probe: bool) -> None:
        if self._breaker is None:
            return
        await self._breaker.succeeded(scope, probe=probe)
        await self._breaker.succeeded(credential_scope(credential.source, credential.id), probe=key_probe)

    async def _key_failed(self, credential: Credential, exc: ProviderError, probe: bool) -> None:
        if self._breaker is not None:
            await self._breaker.failed(
                credential_scope(credential.source, credential.id), f"{type(exc).__name__}: {exc.message}", probe=probe
            )

    async def _keys_refused(self, source: str, handle: str | None, refused: list[SourceFailure]) -> SourceFailure:
        """A source each of whose credentials was refused: ready when its first key is, counting the keys
        that were resting before this call."""
        transient = [f for f in refused if f.transient]
        waits = [f.wait for f in transient if f.wait is not None]
        wait = min(waits) if transient and len(waits) == len(transient) else None
        if wait is not None and (resting := (await self._credentials.availability(source, handle)).rest_in) is not None:
            wait = min(wait, resting)
        return SourceFailure(source, "; ".join(f.reason for f in refused), transient=bool(transient), wait=wait)

    async def _no_credential(self, source: str, handle: str | None) -> SourceFailure:
        availability = await self._credentials.availability(source, handle)
        reason = "no enabled credential" + (f" for {handle}" if handle else "")
        if availability.rest_in is not None:
            return SourceFailure(
                source,
                f"{reason}: every one rests, the first for {availability.rest_in:.3g}s",
                transient=True,
                wait=availability.rest_in,
                no_credential=True,
            )
        if availability.usable:
            # One was usable a moment ago (a rest just ended, another process re-enabled it): try again later.
            return SourceFailure(source, reason + " at the moment", transient=True, no_credential=True)
        return SourceFailure(source, reason, transient=False, no_credential=True)


class _SourceFailed(BeatError):
    """One source did not answer; the crawler moves on to the next."""

    decision = Decision.DEFINITIVE

    def __init__(self, failure: SourceFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure
        self.decision = Decision.TRANSIENT if failure.transient else Decision.DEFINITIVE
