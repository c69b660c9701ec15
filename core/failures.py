"""How a long-running loop (the sink's batches, the reconciler, the mirror) lives through a failure.

A failure is logged with its traceback the first time, and in one line while the same failure
repeats, so an hour-long outage costs one traceback and a count instead of thousands; the loop
waits (a growing backoff) and goes on. An outage is waited out however long it lasts. Any other
failure is a bug or a misconfiguration that waiting does not fix: once it has happened
``fatal_after`` times in a row the loop is broken (``LoopBroken``), and its process exits non-zero,
loudly, rather than running on without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from topics.errors import BeatError, Decision


class LoopBroken(BeatError):
    """A loop failed on something other than an outage too many times in a row; its cause is chained."""

    decision = Decision.DEFINITIVE


class LoopFailures:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        delays: Sequence[float],
        *,
        outage: Callable[[BaseException], bool],
        fatal_after: int,
    ) -> None:
        assert delays and fatal_after >= 1
        self._log = log
        self.what = what
        self._delays = tuple(delays)
        self._outage = outage
        self._fatal_after = fatal_after
        self.count = 0
        self._bugs = 0
        self._last: tuple[type[BaseException], str] | None = None

    def failed(self, exc: BaseException) -> float:
        """Log ``exc`` (with its traceback unless it repeats the previous failure) and return the seconds to
        wait before trying again; raise ``LoopBroken`` when a non-outage failure has repeated too often."""
        wait = self._delays[min(self.count, len(self._delays) - 1)]
        self.count += 1
        self._bugs = 0 if self._outage(exc) else self._bugs + 1
        if self._bugs >= self._fatal_after:
            # Whoever ends the loop logs this with the whole chain.
            raise LoopBroken(
                f"{self.what} failed {self._bugs} times in a row on something waiting does not fix: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        signature = (type(exc), str(exc))
        if signature != self._last:
            self._log.error(
                "%s failed (%s: %s); trying again in %gs", self.what, type(exc).__name__, exc, wait, exc_info=exc
            )
        else:
            self._log.warning(
                "%s failed again, %d times in a row (%s: %s); trying again in %gs",
                self.what,
                self.count,
                type(exc).__name__,
                exc,
                wait,
            )
        self._last = signature
        return wait

    def succeeded(self) -> None:
        if self.count:
            self._log.warning("%s works again after %d failures", self.what, self.count)
        self.count = 0
        self._bugs = 0
        self._last = None
