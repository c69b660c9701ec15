"""Typed provider errors: the class carries the decision (contract §2), the message is for people.

The family sits under ``BeatError`` (``topics/errors.py``); ``decision`` is transient or definitive, and
``retriable`` says the same as a boolean. Every error says whether another try could succeed and, when the
wait has a known end (a Retry-After, a rested credential, a circuit's next probe), how many
seconds until then (``ready_in``; a retry due then spends no attempt).

    ProviderError                       .decision, .retriable, .ready_in
    ├── RetriableProviderError          transient: the next source may answer, else the request is retried
    │   ├── ProviderTimeout
    │   ├── ProviderUnavailable         5xx or connection failure
    │   ├── QuotaExceeded               429 / quota; retry_after seconds when the provider said (per credential)
    │   ├── BadResponse                 an answer that does not parse: the provider changed shape or answered garbage
    │   └── CircuitOpen                 the source's breaker is open; ready_in = its next probe
    ├── DefinitiveProviderError         the answer itself is the verdict: FAILED at once
    │   ├── ProfileMissing              the entity does not exist
    │   ├── PostMissing
    │   ├── InputRejected               the provider refused the input (a 4xx that is not auth, quota or absence)
    │   ├── Forbidden
    │   ├── AuthExpired                 the token was refused (per credential; the next credential may serve)
    │   ├── NotSupported                the source cannot do this operation
    │   ├── UrlSignatureExpired         a CDN link past its expiry: the body "URL signature expired"
    │   ├── AssetTooLarge               a download over the configured size cap
    │   └── AssetUnavailable            the CDN refused a download (404, 410, another 4xx)
    ├── BudgetWait                      transient: a daily budget is spent (BEAT_BUDGET_MODE=retry); ready_in =
    │                                   its reset; the call was not made, so no breaker counts it
    ├── BudgetExhausted                 definitive: a daily budget is spent (BEAT_BUDGET_MODE=fail)
    └── per instance, from what every source of a fetch type said (``failed`` builds them):
        ├── NoCredential                no usable credential: definitive when none is configured (or every
        │                               one is expired or disabled), transient with ready_in when they rest
        └── AllSourcesFailed            transient when any source failed transiently, else definitive;
                                        ready_in only when every transient failure was a known wait
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from topics.errors import BeatError, Decision


class ProviderError(BeatError):
    decision = Decision.DEFINITIVE

    def __init__(self, message: str, *, source: str | None = None, ready_in: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        # Seconds until a known ready time (Retry-After, a rested credential, a breaker's probe): a retry
        # due then spends no attempt.
        self.ready_in = ready_in

    @property
    def retriable(self) -> bool:
        """Transient: another try could succeed (contract §2); the request is retried rather than failed."""
        return self.decision is Decision.TRANSIENT

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


class RetriableProviderError(ProviderError):
    decision = Decision.TRANSIENT


class ProviderTimeout(RetriableProviderError):
    pass


class ProviderUnavailable(RetriableProviderError):
    pass


class QuotaExceeded(RetriableProviderError):
    def __init__(self, message: str, *, source: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, source=source, ready_in=retry_after)
        self.retry_after = retry_after


class BadResponse(RetriableProviderError):
    """A provider that changed shape or answered garbage may answer properly next time, or another
    source may; it counts toward the source's breaker like a 5xx."""


class CircuitOpen(RetriableProviderError):
    """The crawler skipped the source without calling it; ``ready_in`` is its next probe."""


class DefinitiveProviderError(ProviderError):
    decision = Decision.DEFINITIVE


class ProfileMissing(DefinitiveProviderError):
    pass


class PostMissing(DefinitiveProviderError):
    pass


class InputRejected(DefinitiveProviderError):
    pass


class Forbidden(DefinitiveProviderError):
    pass


class AuthExpired(DefinitiveProviderError):
    pass


class NotSupported(DefinitiveProviderError):
    pass


class UrlSignatureExpired(DefinitiveProviderError):
    """Upstream re-queues the asset from a fresher URL; fetching this one again cannot succeed."""


class AssetTooLarge(DefinitiveProviderError):
    pass


class AssetUnavailable(DefinitiveProviderError):
    pass


class BudgetWait(ProviderError):
    """A daily budget (providers/budgets.py) has no room for the call; ``ready_in`` is when it resets."""

    decision = Decision.TRANSIENT


class BudgetExhausted(ProviderError):
    """A daily budget has no room for the call, and the configuration says to fail rather than wait."""

    decision = Decision.DEFINITIVE


class _Verdict(ProviderError):
    """An error whose class cannot carry the decision: it sums up what several sources said."""

    def __init__(
        self, message: str, *, retriable: bool, source: str | None = None, ready_in: float | None = None
    ) -> None:
        super().__init__(message, source=source, ready_in=ready_in)
        self.decision = Decision.TRANSIENT if retriable else Decision.DEFINITIVE


class NoCredential(_Verdict):
    def __init__(
        self, message: str, *, retriable: bool = False, source: str | None = None, ready_in: float | None = None
    ) -> None:
        super().__init__(message, retriable=retriable, source=source, ready_in=ready_in)


class AllSourcesFailed(_Verdict):
    """Every source of a fetch type failed or had no usable credential; the message lists each."""


@dataclass(frozen=True, slots=True)
class SourceFailure:
    """Why one source did not answer: ``transient`` if a later try could succeed, ``wait`` the seconds
    until it surely can (a rested credential, an open circuit) when that is known."""

    source: str
    reason: str
    transient: bool
    wait: float | None = None
    no_credential: bool = False


def failed(fetch_type: str, failures: Sequence[SourceFailure]) -> NoCredential | AllSourcesFailed:
    """The verdict on a fetch type none of whose sources answered.

    Transient if any source may answer later. A retry then waits for a known ready time only when every
    transient failure was such a wait; it is due at the earliest, when the first source can serve again
    (a source that failed for good, such as one without the operation, never delays it).
    """
    summary = "; ".join(f"{f.source}: {f.reason}" for f in failures) or "no source has a client"
    transient = [f for f in failures if f.transient]
    waits = [f.wait for f in transient]
    ready_in = min(waits) if transient and all(w is not None for w in waits) else None  # type: ignore[type-var]
    if failures and all(f.no_credential for f in failures):
        return NoCredential(
            f"{fetch_type}: no source is available ({summary})", retriable=bool(transient), ready_in=ready_in
        )
    return AllSourcesFailed(
        f"{fetch_type}: every source failed ({summary})", retriable=bool(transient), ready_in=ready_in
    )
