"""Budgets on the request path: the fleet's recorded spend in the current period,
plus this replica's records not yet written, against each budget; and the
fleet-wide cut-off (a `budget.exhausted` event) that every replica knows of."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.budgets import period_key
from shared.errors import BudgetExceeded
from shared.state import Policy, State

__all__ = ["Budgets"]


class Budgets:
    def __init__(self) -> None:
        self.recorded: dict[str, float] = {}  # the fleet's, from the database
        self.unwritten: dict[str, float] = {}  # this replica's, not yet in the database
        # the records this process counted in `unwritten`, by request id
        self._pending: dict[uuid.UUID, tuple[tuple[str, ...], float]] = {}

    def check(self, state: State, policies: list[tuple[str, Policy]]) -> None:
        today = None
        for scope, policy in policies:
            if policy.budget_usd is None:
                continue
            today = today or datetime.now(UTC).date()
            cut_off = state.budget_exhausted.get(scope) == period_key(policy.budget_period, today)
            spent = self.recorded.get(scope, 0.0) + self.unwritten.get(scope, 0.0)
            if cut_off or spent >= policy.budget_usd:
                kind = scope.partition(":")[0]
                raise BudgetExceeded(
                    f"This {kind} has spent its budget of ${policy.budget_usd:g} "
                    f"for the current period ({policy.budget_period})."
                )

    def add(self, scopes: tuple[str, ...], usd: float) -> None:
        """Count `usd` (negative: a correction) as spent here and not yet recorded."""
        if usd:
            for scope in scopes:
                self.unwritten[scope] = self.unwritten.get(scope, 0.0) + usd

    def pending(
        self, request_id: uuid.UUID, scopes: tuple[str, ...], usd: float, in_flight: float
    ) -> None:
        """A request ended costing `usd` (it was counted at `in_flight` while running):
        its record is written later; until then it counts here."""
        self.add(scopes, usd - in_flight)
        if usd:
            self._pending[request_id] = (scopes, usd)

    def written(self, request_ids: list[uuid.UUID]) -> None:
        """These records reached the database (the next read of spend counts them);
        records another process counted are ignored."""
        for request_id in request_ids:
            found = self._pending.pop(request_id, None)
            if found is None:
                continue
            scopes, usd = found
            for scope in scopes:
                left = self.unwritten.get(scope, 0.0) - usd
                if left <= 1e-12:
                    self.unwritten.pop(scope, None)
                else:
                    self.unwritten[scope] = left
