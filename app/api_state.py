"""What every facade route shares: settings, the Postgres pool, the producer and the heartbeat flag.

Routers in other modules reach it with ``Depends(api_state)`` instead of closing over ``create_api``'s
locals, so a group of routes can live in a module of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import Request

from core.settings import Settings
from providers.budgets import BudgetStore, open_store


@dataclass
class ApiState:
    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    # PUT /heartbeat clears it so a load balancer drains this instance before a deploy (legacy behaviour).
    heartbeat: bool = True
    _budgets: BudgetStore | None = None

    def budget_store(self) -> BudgetStore:
        """The store the workers reserve their budgets in (Redis when configured), opened on first use."""
        if self._budgets is None:
            self._budgets = open_store(self.settings)
        return self._budgets


def api_state(request: Request) -> ApiState:
    """The running facade's state (a FastAPI dependency); set by ``create_api``'s lifespan."""
    state: ApiState = request.app.state.beat
    return state
