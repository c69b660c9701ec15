"""The legacy server's 3-level stacked limits on profile refreshes (legacy §5).

A refresh must fit under a global daily limit, a global per-minute limit and a limit of its own handle or id
(20,000/day, 60/min and 1/s by default: ``BEAT_API_REFRESH_*_LIMIT``). The legacy nested three Redis rate
limiters under the ``beat_server_`` prefix; the keys here have the same names. A refresh that does not fit is
refused at once (the route answers "Concurrency Limit Exceeded", code 2): nothing waits for a slot.

The counting is ``providers.ratelimit``'s sliding log, admitted under all three keys atomically (in Redis when
``BEAT_REDIS_URL`` is set, so every facade shares them; in this process otherwise). Unlike the legacy nesting, a
refresh refused by an inner level spends nothing of the outer ones. A refresh counts from its admission, as the
legacy's counters did, not for as long as it runs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from core.settings import Settings
from providers.ratelimit import MemoryRateStore, Rate, RateLimitConfigError, RateStore, RedisRateStore, Slot, Turn
from topics.errors import BeatError, Decision

PREFIX = "beat_server_"
# Every caller of these keys is the facade, at one priority: no caller holds another back.
_TURN = Turn(queue="beat_server")


@dataclass(frozen=True, slots=True)
class LimitKeys:
    """The key names of one limited route (without the prefix); ``each`` is followed by the handle or id."""

    daily: str
    minute: str
    each: str


INSTAGRAM_BY_HANDLE = LimitKeys(
    "refresh_profile_insta_daily", "refresh_profile_insta_per_minute", "refresh_profile_insta_per_handle_"
)
INSTAGRAM_BY_ID = LimitKeys(
    "refresh_profile_insta_by_id_daily", "refresh_profile_insta_by_id_per_minute", "refresh_profile_insta_per_id_"
)
YOUTUBE_BY_ID = LimitKeys(
    "refresh_profile_yt_by_id_daily", "refresh_profile_yt_by_id_per_minute", "refresh_profile_yt_per_id_"
)


class LimitExceeded(BeatError):
    """A refresh does not fit under its limits; one of them has room again in ``wait`` seconds."""

    decision = Decision.TRANSIENT

    def __init__(self, wait: float) -> None:
        super().__init__(f"a refresh limit is full for another {wait:.3f} s")
        self.wait = wait


def _rate(settings: Settings, name: str) -> Rate:
    try:
        return Rate.parse(getattr(settings, name))
    except RateLimitConfigError as exc:
        raise RateLimitConfigError(f"BEAT_{name.upper()}: {exc}") from None


class RefreshLimits:
    def __init__(self, store: RateStore, daily: Rate, minute: Rate, each: Rate, *, prefix: str = PREFIX) -> None:
        self._store = store
        self.rates = (daily, minute, each)
        self._prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> RefreshLimits:
        """The configured limits, in Redis when ``redis_url`` is set; a bad rate stops start-up naming it."""
        rates = [_rate(settings, f"api_refresh_{level}_limit") for level in ("daily", "minute", "each")]
        store: RateStore = RedisRateStore(settings.redis_url) if settings.redis_url else MemoryRateStore()
        return cls(store, *rates)

    def keys(self, route: LimitKeys, subject: str) -> tuple[str, str, str]:
        return (
            f"{self._prefix}{route.daily}",
            f"{self._prefix}{route.minute}",
            f"{self._prefix}{route.each}{subject}",
        )

    async def take(self, route: LimitKeys, subject: str) -> None:
        """Count one refresh of ``subject`` (a handle or id) on ``route``, or raise LimitExceeded at once.

        A Redis that does not answer raises DependencyDown (the facade answers 503): no refresh goes out
        uncounted."""
        keys = self.keys(route, subject)
        member = uuid.uuid4().hex
        wait = await self._store.admit(keys, self.rates, member, _TURN)
        if wait > 0:
            raise LimitExceeded(wait)
        # Dated now: the refresh counts from its admission, whatever it costs afterwards.
        await Slot(self._store, keys, member).release()

    async def ping(self) -> None:
        await self._store.ping()

    async def aclose(self) -> None:
        await self._store.aclose()
