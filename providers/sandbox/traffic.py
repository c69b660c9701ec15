"""What the sandbox has seen: sliding logs of admitted arrivals, and counters per path and per credential."""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Hashable
from typing import Any

from providers.sandbox.config import RateLimit

OUTCOMES = ("arrivals", "accepted", "rate_limited", "errors", "abandoned")


class SlidingLog:
    """Admitted arrival times per key, so a limit holds over *every* window, not just aligned ones."""

    def __init__(self) -> None:
        self._arrivals: dict[Hashable, deque[float]] = {}

    def admit(self, key: Hashable, limit: RateLimit, now: float) -> float | None:
        """Record an arrival and return None, or return the seconds until a slot frees without recording it."""
        arrivals = self._arrivals.setdefault(key, deque())
        horizon = now - limit.window
        while arrivals and arrivals[0] <= horizon:
            arrivals.popleft()
        if len(arrivals) >= limit.limit:
            # The limit may have been lowered since these arrivals, so the slot frees when the
            # arrival `limit` places from the end leaves the window, not necessarily the oldest.
            return arrivals[-limit.limit] + limit.window - now
        arrivals.append(now)
        return None

    def clear(self) -> None:
        self._arrivals.clear()


class TrafficStats:
    def __init__(self) -> None:
        self._paths: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._credentials: defaultdict[str, Counter[str]] = defaultdict(Counter)
        # Refusals by the configured limits alone, apart from injected 429s: what a client sent beyond its limit.
        self._over_limit: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def count(self, outcome: str, path: str, credential: str) -> None:
        self._paths[path][outcome] += 1
        self._credentials[credential][outcome] += 1

    def count_over_limit(self, source: str, credential: str) -> None:
        self._over_limit[source][credential] += 1

    def snapshot(self) -> dict[str, Any]:
        total: Counter[str] = Counter()
        for counts in self._paths.values():
            total.update(counts)
        return {
            "total": _row(total),
            "paths": {path: _row(counts) for path, counts in sorted(self._paths.items())},
            "credentials": {key: _row(counts) for key, counts in sorted(self._credentials.items())},
            "over_limit": {source: dict(counts) for source, counts in sorted(self._over_limit.items())},
        }

    def clear(self) -> None:
        self._paths.clear()
        self._credentials.clear()
        self._over_limit.clear()


def _row(counts: Counter[str]) -> dict[str, int]:
    return {outcome: counts[outcome] for outcome in OUTCOMES}
