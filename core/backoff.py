"""What becomes of a request whose attempt ended transient (contract §2): its next attempt and when it is
due, or the terminal status that ends it instead. Pure: the worker and the reconciler act on the answer.

Two kinds of wait, two budgets:

* a failure without a known ready time spends an attempt (``retries_spent``) and waits the schedule's
  backoff for it; once ``retry_max_attempts`` are spent the request ends FAILED;
* a failure with one (``ready_in``: a Retry-After, a rested credential, a breaker's next probe) waits
  exactly that long and spends nothing; such waits end FAILED once the next try would come more than
  ``retry_max_wait`` after the request's first transient failure.

Either way a request whose expiry comes before its retry is due ends EXPIRED now rather than waiting to.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.settings import Settings
from topics.models import ErrorInfo, ScrapeRequest, Status


@dataclass(frozen=True, slots=True)
class Retry:
    """Produce ``request`` (the next attempt) to ``tier``; it is due at ``due_at``."""

    request: ScrapeRequest
    due_at: datetime
    tier: str


@dataclass(frozen=True, slots=True)
class Ended:
    """End the request with ``status`` (FAILED or EXPIRED) and ``error``, ``retries_spent`` attempts counted."""

    status: Status
    error: ErrorInfo
    retries_spent: int


def backoff(spent: int, settings: Settings, rng: random.Random) -> float:
    """Seconds before the retry that follows the ``spent``-th counted attempt (the schedule's last step repeats)."""
    schedule = settings.retry_schedule
    step = schedule[min(spent, len(schedule)) - 1]
    return step * rng.uniform(1 - settings.retry_jitter, 1 + settings.retry_jitter)


def tier_for(wait: float, tiers: dict[str, float]) -> str:
    """The longest tier not exceeding ``wait``, or the shortest when none does."""
    fitting = [(seconds, name) for name, seconds in tiers.items() if seconds <= wait]
    if fitting:
        return max(fitting)[1]
    return min((seconds, name) for name, seconds in tiers.items())[1]


def spend(request: ScrapeRequest, settings: Settings) -> int | None:
    """The request's counted attempts once one more is spent, or None when that exhausts the budget."""
    spent = request.retries_spent + 1
    return spent if spent < settings.retry_max_attempts else None


def exhausted(spent: int, error: ErrorInfo) -> Ended:
    return Ended(
        Status.FAILED,
        ErrorInfo(
            type=error.type,
            message=f"gave up after {spent} attempts; the last failed with {error.type}: {error.message}",
        ),
        spent,
    )


def after_transient(
    request: ScrapeRequest,
    error: ErrorInfo,
    ready_in: float | None,
    settings: Settings,
    now: datetime,
    rng: random.Random,
) -> Retry | Ended:
    """The next attempt of ``request``, whose attempt failed with ``error`` at ``now``, or how it ends."""
    first_failed_at = request.first_failed_at or now
    if ready_in is not None:
        spent = request.retries_spent
        due_at = now + timedelta(seconds=max(ready_in, 0.0))
        limit = first_failed_at + timedelta(seconds=settings.retry_max_wait)
        if due_at > limit:
            return Ended(
                Status.FAILED,
                ErrorInfo(
                    type=error.type,
                    message=f"gave up waiting: the next try would be due at {due_at.isoformat()}, past "
                    f"{settings.retry_max_wait:g}s (BEAT_RETRY_MAX_WAIT) after the first failure at "
                    f"{first_failed_at.isoformat()}; the last failed with {error.type}: {error.message}",
                ),
                spent,
            )
    else:
        counted = spend(request, settings)
        if counted is None:
            return exhausted(request.retries_spent + 1, error)
        spent = counted
        due_at = now + timedelta(seconds=backoff(spent, settings, rng))
    if request.expires_at is not None and request.expires_at <= due_at:
        return Ended(
            Status.EXPIRED,
            ErrorInfo(
                type="Expired",
                message=f"expires at {request.expires_at.isoformat()}, before its retry would be due at "
                f"{due_at.isoformat()}; the last attempt failed with {error.type}: {error.message}",
            ),
            spent,
        )
    following = request.model_copy(
        update={"retry_count": request.retry_count + 1, "retries_spent": spent, "first_failed_at": first_failed_at}
    )
    return Retry(following, due_at, tier_for((due_at - now).total_seconds(), settings.retry_tiers))
