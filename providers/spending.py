"""The cost side of every provider call: its cost looked up, reserved under the budgets, and counted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from providers.budgets import BudgetGuard
from providers.costs import CostTable, SpendLedger, current_flow

if TYPE_CHECKING:
    from core.settings import Settings


class Spending:
    """``reserve`` before a call (raises at a budget's limit), ``spent`` once it went out."""

    def __init__(self, costs: CostTable, guard: BudgetGuard, ledger: SpendLedger) -> None:
        self.costs = costs
        self.guard = guard
        self.ledger = ledger

    @classmethod
    def from_settings(cls, settings: Settings, pool: asyncpg.Pool | None) -> Spending:
        """Spend goes to ``pool``'s ``provider_spend`` (None: counted for budgets only, never written)."""
        return cls(CostTable.from_settings(settings), BudgetGuard.from_settings(settings), SpendLedger(pool))

    def start(self) -> None:
        self.ledger.start()

    async def reserve(self, source: str, path: str) -> float:
        """The call's cost, reserved under its source's and flow's budgets."""
        cost = self.costs.cost(source, path)
        await self.guard.reserve(source, current_flow(), cost)
        return cost

    def spent(self, source: str, credential_id: str | None, cost: float) -> None:
        self.ledger.spent(source, credential_id, current_flow(), cost)

    async def aclose(self) -> None:
        await self.ledger.aclose()
        await self.guard.aclose()
