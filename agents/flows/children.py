"""A report's child requests: submitted once, then waited on until they are *stored*.

A CSV export scrapes first (legacy §11.2), but where the legacy slept 30–60 s "so events land", a report
submits its scrape step as ordinary requests (its children) and reads Postgres once each is *stored*
(contract §2): COMPLETE, and every event it announced written or refused.

* A child's id is the parent's id and its index (``<parent>.<n>``), and recording it PENDING does nothing
  when the id exists: a retried report finds its children instead of submitting them again. Only the
  children this call recorded are produced; one recorded but not produced (the worker died in between) is
  produced by the reconciler, as any accepted request.
* Children go to their flow's lane for the parent's priority: an on-demand report has on-demand children.
* Waiting is polling Postgres with backoff on the event loop, not a held thread or connection, so the
  worker's other flows run meanwhile. A child that ends FAILED, EXPIRED or DEAD_LETTERED, or is not stored
  by the deadline, is reported by the caller; the others are waited for all the same.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from core.outage import POSTGRES, postgres_down, reported
from core.requests import Placed, entity_key, pending_event, record_enqueued, record_requests
from core.settings import Settings
from topics import names
from topics.flows import get_flow
from topics.models import ScrapeRequest, utcnow

# Send(topic without its prefix, key, value) -> a future resolved once the broker has the record.
Send = Callable[[str, bytes | None, bytes], Awaitable[asyncio.Future]]

FIRST_POLL = 0.2
POLL_GROWTH = 1.5
FAILED_ENDS = ("FAILED", "EXPIRED", "DEAD_LETTERED")


@dataclass(frozen=True, slots=True)
class Child:
    id: str
    flow: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChildFailure:
    id: str
    flow: str
    status: str
    error: str | None

    def as_result(self) -> dict[str, Any]:
        return {"id": self.id, "flow": self.flow, "status": self.status, "error": self.error}


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}.{index}"


class Children:
    def __init__(self, pool: asyncpg.Pool, send: Send, settings: Settings) -> None:
        self._pool = pool
        self._send = send
        self._settings = settings

    async def submit(
        self, parent: ScrapeRequest, children: Sequence[tuple[str, dict[str, Any]]], first: int = 0
    ) -> list[Child]:
        """Record and produce ``(flow, params)`` children of ``parent``, indexed from ``first``; all of them, new
        or found from an earlier attempt."""
        assert parent.id is not None
        made = [Child(child_id(parent.id, first + i), flow, params) for i, (flow, params) in enumerate(children)]
        requests = [
            ScrapeRequest(
                id=child.id,
                flow=child.flow,
                platform=get_flow(child.flow).platform,
                params=child.params,
                priority=parent.priority,
                created_at=utcnow(),
            )
            for child in made
        ]
        with reported(POSTGRES, postgres_down):
            async with self._pool.acquire() as conn:
                fresh = await record_requests(conn, requests)
        placed: list[Placed] = []
        for request in fresh:
            assert request.id is not None and request.flow is not None
            lane = names.priority_topic if self._settings.is_on_demand(request.priority) else names.scrape_topic
            key = entity_key(request.params)
            pending = pending_event(request)
            landed = await (await self._send(lane(request.flow), key.encode() if key else None, request.to_bytes()))
            await (await self._send(names.STATUS, request.id.encode(), pending.to_bytes()))
            placed.append(Placed.of(request.id, landed))
        with reported(POSTGRES, postgres_down):
            await record_enqueued(self._pool, placed)
        return made

    async def wait_stored(self, children: Sequence[Child], deadline: float) -> list[ChildFailure]:
        """Wait until every child is stored or ended otherwise, at most until ``deadline`` (``time.monotonic``);
        the children that failed or were not stored in time."""
        started = time.monotonic()
        waiting = {child.id: child for child in children}
        failures: list[ChildFailure] = []
        pause = FIRST_POLL
        while waiting:
            with reported(POSTGRES, postgres_down):
                rows = await self._pool.fetch(
                    "SELECT id, status, stored, error_type, error_message FROM scrape_request_log WHERE id = ANY($1)",
                    list(waiting),
                )
            for row in rows:
                if row["status"] == "COMPLETE" and row["stored"]:
                    waiting.pop(row["id"])
                elif row["status"] in FAILED_ENDS:
                    child = waiting.pop(row["id"])
                    error = f"{row['error_type']}: {row['error_message']}" if row["error_type"] else None
                    failures.append(ChildFailure(child.id, child.flow, row["status"], error))
            if not waiting:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                failures += [
                    ChildFailure(c.id, c.flow, "NOT_STORED", f"not stored within {deadline - started:.0f}s")
                    for c in waiting.values()
                ]
                break
            await asyncio.sleep(min(pause, left))
            pause = min(pause * POLL_GROWTH, self._settings.report_poll_max)
        return failures

    async def result_of(self, child: Child) -> dict[str, Any]:
        """A stored child's result (what its COMPLETE carried)."""
        with reported(POSTGRES, postgres_down):
            value = await self._pool.fetchval("SELECT result FROM scrape_request_log WHERE id = $1", child.id)
        return json.loads(value) if isinstance(value, str) else (value or {})
