"""The fleet-wide budget cut-off: compares recorded spend with every budget and
appends `budget.exhausted` (and `budget.alert` at a soft budget) once per scope
and period, so every replica refuses the scope within milliseconds of the spend
being recorded. Several control planes may watch: the check is repeated under
the append lock, so each event is written once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from control_plane.store import EventStore
from shared.budgets import budgeted_scopes, period_key, recorded_spend
from shared.events import BudgetAlert, BudgetExhausted, Payload
from shared.quiet_log import Outage
from shared.state import Policy, State

__all__ = ["BudgetWatch"]

log = logging.getLogger("sluice.control_plane.budgets")

ACTOR = "system:budgets"


class BudgetWatch:
    def __init__(self, store: EventStore, interval: float) -> None:
        self._store = store
        self.interval = interval

    async def run(self) -> None:
        outage = Outage(log, "budget checks (database)")
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
                outage.ok()
            except Exception as exc:  # the database is away: try again next time
                outage.failed(exc)

    async def check(self) -> None:
        state = await self._store.current_state()
        scopes = list(budgeted_scopes(state))
        if not scopes:
            return
        today = datetime.now(UTC).date()
        async with self._store.pool.acquire() as conn:
            spent = await recorded_spend(conn, [(s, p.budget_period) for s, p in scopes], today)
        for scope, policy in scopes:
            used = spent.get(scope, 0.0)
            period = period_key(policy.budget_period, today)
            over = policy.budget_usd is not None and used >= policy.budget_usd
            soft = policy.soft_budget_usd is not None and used >= policy.soft_budget_usd
            if over and state.budget_exhausted.get(scope) != period:
                await self._append(scope, policy, BudgetExhausted(scope, period, used))
            if soft and state.budget_alerted.get(scope) != period:
                await self._append(scope, policy, BudgetAlert(scope, period, used))

    async def _append(
        self, scope: str, judged: Policy, event: BudgetExhausted | BudgetAlert
    ) -> None:
        flags = "budget_exhausted" if isinstance(event, BudgetExhausted) else "budget_alerted"

        def decide(state: State) -> list[Payload]:
            # under the append lock: only if the policy judged is still the policy
            # (a raised budget since then makes the judgement stale) and not yet said
            if dict(budgeted_scopes(state)).get(scope) != judged:
                return []
            return [] if getattr(state, flags).get(scope) == event.period else [event]

        if await self._store.append(f"budget:{scope}", decide, actor=ACTOR):
            log.info(
                "%s: %s for %s at $%.4f", scope, event.period, type(event).__name__, event.spent_usd
            )
