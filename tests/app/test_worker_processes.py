"""``beat worker --processes N``: N children in one consumer group, each owning partitions; a killed child
started again without losing a request; SIGTERM draining them all. And the in-process rate limits split
among the processes, so together they never exceed a limit."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid

import httpx
import psutil
import pytest

from app.supervision import STABLE_AFTER, Child, restart_delay
from app.worker_processes import check_shares, child_settings, process_count
from core.settings import load_settings
from core.topic_admin import request_partitions
from providers.ratelimit import (
    DEFAULT_SOURCE_RATES,
    MemoryRateStore,
    Rate,
    RateLimitConfigError,
    RateLimiter,
    configured_rates,
)
from providers.sandbox.config import SandboxConfig
from tests.conftest import isolated
from tests.support import ROOT, BeatProcess, beat_env, partition_owners, produce_requests, wait_terminal
from topics import names

BASIC = "refresh_profile_basic"


def _children(proc: BeatProcess) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children()


async def _both_own(proc: BeatProcess, topic: str, timeout: float) -> dict[int, list[int]]:
    """Once both children own partitions of ``topic``: what each owns."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.alive(), proc.log_tail()
        pids = {child.pid for child in _children(proc)}
        owners = partition_owners(proc.log_path.read_text(errors="replace"), topic)
        if len(pids) == 2 and all(owners.get(pid) for pid in pids):
            return {pid: owners[pid] for pid in pids}
        assert time.monotonic() < deadline, f"not both children own {topic}: {owners}, children {pids}\n" + (
            proc.log_tail()
        )
        await asyncio.sleep(0.25)


def _provider_calls(sandbox) -> int:
    return httpx.get(f"{sandbox.url}/_sandbox/stats").json()["total"]["arrivals"]


async def _complete(broker: str, topic: str, pool, tag: str, n: int) -> list[str]:
    bodies = [{"params": {"handle": f"{tag}_{uuid.uuid4().hex[:8]}"}} for _ in range(n)]
    return await produce_requests(broker, topic, bodies, key_field="handle")


async def test_two_processes_share_the_group_survive_a_kill_and_drain(broker, database_url, session_dir, pool):
    settings = {"flow_concurrency": '{"refresh_profile_basic": 10}', "broker_session_timeout": "6"}
    async with isolated(broker, database_url, session_dir, SandboxConfig(latency=0.5), "procs", **settings) as (
        prefix,
        spawn,
        sandbox,
    ):
        topic = f"{prefix}{names.scrape_topic(BASIC)}"
        supervisor = spawn("worker", "--processes", "2", "--flows", BASIC)

        # (a) Both children joined the one group, and each owns some of the flow's partitions.
        first, second = (await _both_own(supervisor, topic, timeout=60)).values()
        assert sorted(first + second) == list(range(request_partitions(load_settings(), BASIC))), (first, second)
        ids = await _complete(broker, topic, pool, "procs", 40)
        statuses = await wait_terminal(pool, ids, timeout=60)
        assert list(statuses.values()) == ["COMPLETE"] * len(ids), statuses

        # (b) A child killed mid-work (each has 50 requests of 0.5 s, 10 at a time) is started again, and
        # its requests complete all the same, redelivered rather than re-driven by the reconciler.
        victim = _children(supervisor)[0]
        calls_before = _provider_calls(sandbox)
        ids = await _complete(broker, topic, pool, "kill", 100)
        await asyncio.sleep(1.0)
        victim.send_signal(signal.SIGKILL)
        statuses = await wait_terminal(pool, ids, timeout=90)
        assert list(statuses.values()) == ["COMPLETE"] * len(ids), statuses
        # One provider call per request, and more: the victim's calls in flight were made again.
        assert _provider_calls(sandbox) - calls_before > len(ids)
        redrives = await pool.fetchval("SELECT sum(redrives) FROM scrape_request_log WHERE id = ANY($1)", ids)
        assert redrives == 0
        restarted = _children(supervisor)
        assert len(restarted) == 2 and victim.pid not in {child.pid for child in restarted}
        assert f"(pid {victim.pid}) exited with code -9; restarting it" in supervisor.log_path.read_text()
        await _both_own(supervisor, topic, timeout=60)

        # (c) SIGTERM to the supervisor drains both children; it exits 0 once they have.
        children = _children(supervisor)
        assert supervisor.terminate(timeout=60) == 0, supervisor.log_tail()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive
        assert supervisor.log_path.read_text().count("drained: in-flight work finished and offsets committed") >= 2


# The process count and the rate limit shares.


def test_an_explicit_count_wins_and_the_default_splits_every_limit() -> None:
    assert process_count(load_settings(worker_processes=3), 5) == 5
    assert process_count(load_settings(worker_processes=3), None) == 3
    # Without Redis the default never exceeds the processes the tightest limit splits among.
    limited = load_settings(source_rate_limits={"rocketapi": "1/1s"})
    assert process_count(limited, None) == 1
    # With Redis the limits are shared whole, so the default is the usable CPU count whatever they are.
    shared = load_settings(source_rate_limits={"rocketapi": "1/1s"}, redis_url="redis://127.0.0.1:6379/0")
    assert process_count(shared, None) >= 1


def test_without_redis_each_process_takes_its_share_of_every_limit() -> None:
    settings = load_settings(
        source_rate_limits={"rocketapi": "100/30s", "rapidapi-arraybobo": None},
        credential_rate_limits={"rapidapi-arraybobo": "9/1s"},
        rate_limit_processes=2,
    )
    source_rates, credential_rates = configured_rates(settings)
    assert source_rates["rocketapi"] == Rate(50, 30.0)
    assert source_rates["rapidapi-jotucker"] == Rate(2, 1.0)  # 5/1s: the odd call goes unused
    assert "rapidapi-arraybobo" not in source_rates
    assert credential_rates == {"rapidapi-arraybobo": Rate(4, 1.0)}

    # With Redis the processes count together: every limit whole.
    shared, _ = configured_rates(settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/0"}))
    assert shared["rocketapi"] == Rate(100, 30.0)


def test_a_limit_too_small_to_split_is_refused_with_the_way_out() -> None:
    settings = load_settings()  # rapidapi-bestsolutions is 2/1s
    check_shares(settings, 2)
    with pytest.raises(RateLimitConfigError, match=r"rapidapi-bestsolutions: 2/1s cannot be split among 3.*REDIS"):
        check_shares(settings, 3)
    # A supervisor that is itself one of two splits its own share again.
    assert (
        child_settings(load_settings(kafka_url="k:1", database_url="postgresql://x", rate_limit_processes=2), 3)[
            "BEAT_RATE_LIMIT_PROCESSES"
        ]
        == "6"
    )


async def test_shares_hold_the_total_under_the_limit() -> None:
    """Three limiters that cannot see each other (three processes without Redis), each calling as fast as
    it may: in no one-second window do they make more than the 6/1s limit together."""
    only_rocketapi = {**dict.fromkeys(DEFAULT_SOURCE_RATES), "rocketapi": "6/1s"}
    settings = load_settings(source_rate_limits=only_rocketapi, rate_limit_processes=3)
    admitted: list[float] = []

    async def hammer(limiter: RateLimiter, until: float) -> None:
        while time.monotonic() < until:
            slot = await limiter.acquire("rocketapi")
            admitted.append(time.monotonic())
            await slot.release()

    until = time.monotonic() + 2.5
    limiters = [RateLimiter.from_settings(settings) for _ in range(3)]
    assert all(isinstance(limiter._store, MemoryRateStore) for limiter in limiters)
    await asyncio.gather(*(hammer(limiter, until) for limiter in limiters))
    admitted.sort()
    busiest = max(sum(1 for t in admitted if start <= t < start + 1.0) for start in admitted)
    assert busiest <= 6, busiest
    assert len(admitted) >= 12, "the shares let almost nothing through"


def test_restarts_back_off_and_a_stable_child_starts_afresh() -> None:
    child = Child("worker process 1/2", ["true"], {})
    delays = []
    for restarts in range(8):
        child.restarts, child.started_at = restarts, 100.0
        delays.append(restart_delay(child, exited_at=101.0))
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    # One that ran a while before it exited is no crash loop: it starts again at once.
    assert restart_delay(child, exited_at=100.0 + STABLE_AFTER) == 0.0
    assert child.restarts == 0


def test_beat_worker_refuses_more_processes_than_a_limit_splits_among() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--processes", "3"],
        env=beat_env(kafka_url="127.0.0.1:1", database_url="postgresql://x@127.0.0.1:1/x"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "rapidapi-bestsolutions: 2/1s cannot be split among 3 processes" in result.stderr
    assert "Traceback" not in result.stderr
