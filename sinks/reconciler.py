"""The backstop of the terminal-state guarantee (contract §2). It runs inside ``beat sink``.

* PROCESSING well past its flow's timeout plus a grace period: its worker died or
  its record was skipped. Re-drive it as the next attempt, at most
  ``reconcile_max_redrives`` times, then mark it FAILED saying so.
* PENDING recorded by a submitter but never handed to the broker: produce it.

A request waiting in a topic backlog is PENDING and enqueued, and is never touched.
Every re-drive is counted in ``scrape_request_log.redrives`` and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from agents.flows.registry import FLOWS, timeout_of
from app.settings import Settings
from sinks.requests import enqueue
from topics import names
from topics.models import ErrorInfo, Platform, RequestStatus, ScrapeRequest, Status, utcnow

log = logging.getLogger(__name__)

_REQUEST_COLUMNS = "id, flow, platform, params, priority, retry_count, attempt, account_id, idempotency_key, " \
                   "created_at, expires_at, redrives"


def _request(row: asyncpg.Record, retry_count: int) -> ScrapeRequest:
    return ScrapeRequest(
        id=row["id"], flow=row["flow"], platform=Platform(row["platform"]) if row["platform"] else None,
        params=row["params"] if isinstance(row["params"], dict) else json.loads(row["params"]),
        priority=row["priority"], retry_count=retry_count, account_id=row["account_id"],
        idempotency_key=row["idempotency_key"], created_at=row["created_at"], expires_at=row["expires_at"],
    )


class Reconciler:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer

    def _deadline(self, flow: str) -> float:
        timeout = timeout_of(FLOWS[flow], self.settings.flow_timeout, self.settings.default_flow_timeout)
        return timeout + self.settings.reconcile_grace

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("reconciler pass failed; retrying next interval", exc_info=True)
            await asyncio.sleep(self.settings.reconcile_interval)

    async def run_once(self) -> dict[str, int]:
        return {"redriven": await self._redrive_stuck(), "enqueued": await self._enqueue_unsent()}

    async def _redrive_stuck(self) -> int:
        shortest = min((self._deadline(name) for name in FLOWS), default=0.0)
        rows = await self.pool.fetch(
            f"SELECT {_REQUEST_COLUMNS}, status_at FROM scrape_request_log "
            "WHERE status = 'PROCESSING' AND status_at < $1",
            utcnow() - timedelta(seconds=shortest),
        )
        redriven = 0
        for row in rows:
            if row["status_at"] > utcnow() - timedelta(seconds=self._deadline(row["flow"])):
                continue
            if row["redrives"] >= self.settings.reconcile_max_redrives:
                await self._give_up(row)
            else:
                await self._redrive(row)
                redriven += 1
        return redriven

    async def _redrive(self, row: asyncpg.Record) -> None:
        request = _request(row, retry_count=row["attempt"])
        # Claim it first: if another sink process got here, the UPDATE matches nothing.
        claimed = await self.pool.execute(
            "UPDATE scrape_request_log SET status = 'PENDING', attempt = $2, retry_count = $3, status_at = now(), "
            "redrives = redrives + 1, redriven_at = now(), updated_at = now() "
            "WHERE id = $1 AND status = 'PROCESSING' AND attempt = $4",
            request.id, request.attempt, request.retry_count, row["attempt"],
        )
        if claimed != "UPDATE 1":
            return
        log.warning("reconciler: re-driving %s (%s) as attempt %d; it was PROCESSING for too long",
                    request.id, request.flow, request.attempt)
        await enqueue(self.producer, self.settings, request)

    async def _give_up(self, row: asyncpg.Record) -> None:
        request = _request(row, retry_count=row["attempt"] - 1)
        error = ErrorInfo(
            type="Abandoned",
            message=f"no terminal status after {row['redrives']} re-drives: the worker died or the record was lost",
        )
        event = RequestStatus.of(request, Status.FAILED, error=error)
        await self.producer.send_and_wait(
            self.settings.topic(names.STATUS), event.to_bytes(), key=request.id.encode()
        )
        log.error("reconciler: %s (%s) FAILED: %s", request.id, request.flow, error.message)

    async def _enqueue_unsent(self) -> int:
        rows = await self.pool.fetch(
            f"SELECT {_REQUEST_COLUMNS} FROM scrape_request_log "
            "WHERE status = 'PENDING' AND NOT enqueued AND created_at < $1",
            utcnow() - timedelta(seconds=self.settings.reconcile_pending_after),
        )
        for row in rows:
            request = _request(row, retry_count=row["retry_count"])
            await enqueue(self.producer, self.settings, request)
            await self.pool.execute("UPDATE scrape_request_log SET enqueued = true WHERE id = $1", request.id)
            log.warning("reconciler: produced %s (%s), recorded but never handed to the broker",
                        request.id, request.flow)
        return len(rows)


async def redrive_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT COALESCE(SUM(redrives), 0) FROM scrape_request_log"))
