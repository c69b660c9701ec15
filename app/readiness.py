"""``GET /readyz``: whether the facade's dependencies answer, each within a short timeout.

Liveness (``/healthz``) calls nothing, so a Postgres or broker outage never gets a healthy
facade restarted; readiness names what is down, so a load balancer stops sending it work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import asyncpg
from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)

# Well under a load balancer's probe timeout, well over a healthy round trip on loopback.
CHECK_TIMEOUT = 2.0


async def _postgres(pool: asyncpg.Pool) -> None:
    await pool.fetchval("SELECT 1")


async def _broker(producer: AIOKafkaProducer) -> None:
    # A metadata request through the producer's own client: the connection submissions use.
    if not await producer.client.force_metadata_update():
        raise ConnectionError("no broker answered a metadata request")


async def _outcome(name: str, check: Awaitable[None], timeout: float) -> str:
    try:
        await asyncio.wait_for(check, timeout)
    except TimeoutError:
        log.warning("readiness: %s gave no answer within %gs", name, timeout)
        return f"no answer within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        # The answer (served without a key) gives the type; the details (hosts, users) go to the log.
        log.warning("readiness: %s is down: %r", name, exc)
        return f"down ({type(exc).__name__})"
    return "ok"


async def readiness(pool: asyncpg.Pool, producer: AIOKafkaProducer, timeout: float = CHECK_TIMEOUT) -> dict[str, str]:
    """Each dependency's state: ``ok`` or why not."""
    postgres, broker = await asyncio.gather(
        _outcome("postgres", _postgres(pool), timeout), _outcome("broker", _broker(producer), timeout)
    )
    return {"postgres": postgres, "broker": broker}
