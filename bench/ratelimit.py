"""Shared rate limits against the sandbox: how much of a provider's budget two Beat processes use.

    python bench/ratelimit.py [--windows 3] [--warmup-windows 1] [--callers 64] [--redis-url URL]

The sandbox enforces 100 calls / 30 s on each of two ArrayBobo credentials, counting
arrivals in its own sliding log, so the budget is 200 calls per 30 s. Beat is
configured with the same per-credential limit and the per-source default lifted.
Two worker processes share one RateLimiter in Redis (BEAT_REDIS_URL, default
redis://127.0.0.1:6379/0, under a key prefix of their own that is deleted afterwards).
Each runs CALLERS concurrent callers that loop on ``ArrayBoboClient.profile_by_handle``
through ProviderHttp, each call on its process's least recently used credential.
Every caller always waits for a slot, so demand exceeds the budget throughout.

utilization = calls the sandbox accepted during the measured windows (after the
warm-up ones, so the first window's burst is not counted) / the budget for them.
provider_429s counts every 429 the sandbox answered during the whole run.

Calls go out in waves a window apart (the first window's burst repeats), so a few
windows' count hides a slot that is reused a little late each time. sustained
therefore divides the window by the mean time from a call's answer to the answer of
the call LIMIT later on the same credential, which is how long one slot takes to
serve one call, over the measured windows: the utilization a long run tends to.
Progress lines go to stdout; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from collections import Counter, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Imported once the repository root is on sys.path: the bench runs as a script.

import httpx  # noqa: E402
import redis  # noqa: E402

from core.settings import load_settings  # noqa: E402
from providers.errors import ProviderError  # noqa: E402
from providers.http import Credential, ProviderHttp  # noqa: E402
from providers.instagram.arraybobo import SOURCE, ArrayBoboClient  # noqa: E402
from providers.ratelimit import KEY_PREFIX, RateLimiter  # noqa: E402
from providers.sandbox import SandboxConfig, SandboxServer  # noqa: E402

LIMIT, WINDOW = 100, 30
HOST = "instagram-scraper-2022.p.rapidapi.com"
CREDENTIALS = [
    Credential(id=f"bench-{n}", source=SOURCE, secrets={"x-rapidapi-key": f"k{n}", "x-rapidapi-host": HOST})
    for n in (1, 2)
]
# Workers need a moment to import and connect; they all start calling at the same instant.
START_DELAY = 5.0


async def _work(
    sandbox_url: str, redis_url: str, prefix: str, start_at: float, stop_at: float, callers: int
) -> tuple[Counter[str], dict[str, list[float]]]:
    settings = load_settings(
        redis_url=redis_url,
        source_rate_limits={SOURCE: None},
        credential_rate_limits={SOURCE: f"{LIMIT}/{WINDOW}s"},
    )
    limiter = RateLimiter.from_settings(settings, key_prefix=prefix)
    http = ProviderHttp(base_urls={SOURCE: f"{sandbox_url}/{SOURCE}"}, timeout=30.0, limiter=limiter)
    bobo = ArrayBoboClient(http)
    least_recent = deque(CREDENTIALS)
    outcomes: Counter[str] = Counter()
    answered: dict[str, list[float]] = {credential.id: [] for credential in CREDENTIALS}

    async def caller() -> None:
        while time.time() < stop_at:
            credential = least_recent.popleft()
            least_recent.append(credential)
            try:
                await bobo.profile_by_handle("lena.travels", credential=credential)
                outcomes["ok"] += 1
                answered[credential.id].append(time.time())
            except ProviderError as exc:
                outcomes[type(exc).__name__] += 1

    await asyncio.sleep(max(0.0, start_at - time.time()))
    await asyncio.gather(*(caller() for _ in range(callers)))
    await http.aclose()
    await limiter.aclose()
    return outcomes, answered


def _worker(
    sandbox_url: str,
    redis_url: str,
    prefix: str,
    start_at: float,
    stop_at: float,
    callers: int,
    results: multiprocessing.Queue,
) -> None:
    outcomes, answered = asyncio.run(_work(sandbox_url, redis_url, prefix, start_at, stop_at, callers))
    results.put((dict(outcomes), answered))


def _sustained(answered: dict[str, list[float]], since: float, until: float) -> float:
    """The window / the mean time one slot takes per call, from answers in [since, until)."""
    gaps = []
    for times in answered.values():
        times.sort()
        gaps += [times[i] - times[i - LIMIT] for i in range(LIMIT, len(times)) if since <= times[i] < until]
    return WINDOW / statistics.fmean(gaps)


def _accepted(sandbox_url: str) -> tuple[int, int]:
    total = httpx.get(f"{sandbox_url}/_sandbox/stats").json()["total"]
    return total["accepted"], total["rate_limited"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--windows", type=int, default=3, help="measured windows of 30 s")
    parser.add_argument("--warmup-windows", type=int, default=1)
    parser.add_argument("--callers", type=int, default=64, help="concurrent callers per worker process")
    parser.add_argument("--redis-url", default=os.environ.get("BEAT_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    prefix = f"{KEY_PREFIX}bench-{uuid.uuid4().hex[:8]}:"
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    config = SandboxConfig(rate_limits={"*": f"{LIMIT}/{WINDOW}"})
    try:
        with SandboxServer(config) as sandbox:
            start_at = time.time() + START_DELAY
            measure_from = start_at + args.warmup_windows * WINDOW
            measure_to = measure_from + args.windows * WINDOW
            # Demand goes on a little past the measured interval, so its end is not a drain.
            stop_at = measure_to + 2.0
            workers = [
                spawn.Process(
                    target=_worker, args=(sandbox.url, args.redis_url, prefix, start_at, stop_at, args.callers, results)
                )
                for _ in range(2)
            ]
            for process in workers:
                process.start()
            print(
                f"2 workers x {args.callers} callers, 2 credentials x {LIMIT}/{WINDOW}s; warm-up "
                f"{args.warmup_windows * WINDOW} s, measuring {args.windows * WINDOW} s",
                flush=True,
            )
            time.sleep(max(0.0, measure_from - time.time()))
            accepted_before, _ = _accepted(sandbox.url)
            for window in range(args.windows):
                time.sleep(max(0.0, measure_from + (window + 1) * WINDOW - time.time()))
                accepted, rejected = _accepted(sandbox.url)
                print(f"window {window + 1}: accepted {accepted - accepted_before} so far, 429s {rejected}", flush=True)
            accepted_after, _ = _accepted(sandbox.url)
            outcomes: Counter[str] = Counter()
            answered: dict[str, list[float]] = {credential.id: [] for credential in CREDENTIALS}
            for _ in workers:
                counts, times = results.get(timeout=120)
                outcomes.update(counts)
                for credential_id, done in times.items():
                    answered[credential_id] += done
            for process in workers:
                process.join()
            _, provider_429s = _accepted(sandbox.url)
    finally:
        client = redis.Redis.from_url(args.redis_url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()

    budget = 2 * LIMIT * args.windows
    measured = accepted_after - accepted_before
    sustained = _sustained(answered, measure_from, measure_to)
    print(
        f"accepted {measured} of a budget of {budget} in {args.windows * WINDOW} s; sustained {sustained:.4f}; "
        f"caller outcomes {dict(outcomes)}",
        flush=True,
    )
    print(
        json.dumps(
            {
                "utilization": round(measured / budget, 4),
                "provider_429s": provider_429s,
                "sustained": round(sustained, 4),
                "accepted": measured,
                "budget": budget,
                "seconds": args.windows * WINDOW,
                "callers": 2 * args.callers,
                "outcomes": dict(outcomes),
            }
        )
    )


if __name__ == "__main__":
    main()
