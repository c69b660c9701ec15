"""``beat worker --processes N``: N worker processes in one consumer group, under supervision.

One Python process runs on one core; the broker spreads a flow's partitions over the group's members, so
N processes work N cores. Each child is a plain ``beat worker --processes 1`` with the same flows. A child
that exits is started again with backoff (``app/supervision.py``); SIGTERM or SIGINT to the supervisor is
forwarded to every child as SIGTERM, which drains it (no new records, in-flight ones finish, offsets
committed), and the supervisor exits once they all have.

Rate limits: with ``BEAT_REDIS_URL`` the children share them in Redis. Without it each child counts only
its own calls, so each is told how many processes split the limits (``BEAT_RATE_LIMIT_PROCESSES``) and
applies its share (``providers.ratelimit.configured_rates``): together they never exceed a limit.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence

from app.cpus import usable_cpu_count
from app.supervision import Child, restart_exited
from core.health import metrics_port
from core.settings import Settings
from providers.ratelimit import configured_rates
from topics.flows import FlowSpec

log = logging.getLogger(__name__)

SUPERVISE_EVERY = 0.5
# Beyond the drain's own bound (Settings.drain_bound), what a child may take to hand back, commit and close.
DRAIN_MARGIN = 30.0


def process_count(settings: Settings, requested: int | None) -> int:
    """``--processes``, else ``BEAT_WORKER_PROCESSES``, else the usable CPU count. Without Redis that
    default is capped at the processes every rate limit can be split among (a 2/1s limit gives each of
    two processes 1/1s; three would need Redis), so a many-core host still starts."""
    if requested is not None:
        return requested
    if settings.worker_processes is not None:
        return settings.worker_processes
    usable = usable_cpu_count()
    if settings.redis_url:
        return usable
    source_rates, credential_rates = configured_rates(settings)
    limits = [*source_rates.items(), *credential_rates.items()]
    label, tightest = min(limits, key=lambda item: item[1].limit, default=("", None))
    if tightest is None or tightest.limit >= usable:
        return usable
    log.info(
        "without BEAT_REDIS_URL, %d worker processes rather than %d (the usable CPUs): %s's limit %s splits among "
        "no more",
        tightest.limit,
        usable,
        label,
        tightest,
    )
    return tightest.limit


def child_settings(settings: Settings, count: int) -> dict[str, str]:
    """The variables a child gets on top of the supervisor's environment."""
    assert settings.kafka_url and settings.database_url, "resolved before the children start"
    return {
        "BEAT_KAFKA_URL": settings.kafka_url,
        "BEAT_DATABASE_URL": settings.database_url,
        # A supervisor may itself be one of several (docker --scale): the shares multiply.
        "BEAT_RATE_LIMIT_PROCESSES": str(settings.rate_limit_processes * count),
    }


def check_shares(settings: Settings, count: int) -> None:
    """Raise RateLimitConfigError, naming the limit, when a child could not apply its share."""
    configured_rates(settings.model_copy(update={"rate_limit_processes": settings.rate_limit_processes * count}))


def drain_timeout(settings: Settings, flows: Iterable[FlowSpec]) -> float:
    """How long a worker of ``flows`` may take to drain and exit after SIGTERM before it is killed."""
    return settings.drain_bound(flows) + DRAIN_MARGIN


def run_worker_processes(settings: Settings, globs: Sequence[str], flows: Sequence[FlowSpec], count: int) -> int:
    """Supervise ``count`` workers of ``globs`` until SIGTERM or SIGINT; 0 when every child drained cleanly."""
    check_shares(settings, count)
    argv = [sys.executable, "-m", "app.cli", "worker", "--processes", "1"]
    if globs:
        argv += ["--flows", *globs]
    env = {**os.environ, **child_settings(settings, count)}
    # Child i (from 0) serves its metrics on the worker's base port + i; a base of 0 gives each a free port.
    children = [
        Child(
            f"worker process {i}/{count}",
            argv,
            {**env, "BEAT_METRICS_PORT": str(metrics_port(settings, "worker", i - 1))},
            own_session=True,
        )
        for i in range(1, count + 1)
    ]
    stopping: list[int] = []

    def _stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for child in children:
        child.start()
    log.info(
        "%d worker processes in consumer group %s: pids %s",
        count,
        settings.group("worker"),
        ", ".join(str(child.pid) for child in children),
    )
    while not stopping:
        restart_exited(children)
        time.sleep(SUPERVISE_EVERY)

    log.info("draining %d worker processes", count)
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + drain_timeout(settings, flows)
    codes = {child.name: child.wait(deadline - time.monotonic()) for child in children}
    failed = {name: code for name, code in codes.items() if code != 0}
    if failed:
        log.warning("worker processes that did not stop cleanly: %s", failed)
        return 1
    log.info("every worker process drained")
    return 0
