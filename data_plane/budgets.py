"""Budgets on the request path: the fleet's recorded spend in the current period,
plus this replica's records not yet written, and those written since the spend
was last read, against each budget; and the fleet-wide cut-off (a
`budget.exhausted` event) that every replica knows of."""

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
        # records written but maybe not yet in `recorded`: (write number, scopes, usd)
        self._settling: list[tuple[int, tuple[str, ...], float]] = []
        self._writes = 0

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
        """These records reached the database. They count here until a read of the
        recorded spend that began after they were written (`refreshed`) has them:
        in between, they are in neither. Records another process counted are ignored."""
        for request_id in request_ids:
            found = self._pending.pop(request_id, None)
            if found is not None:
                self._writes += 1
                self._settling.append((self._writes, *found))

    def mark(self) -> int:
        """Before reading the recorded spend: what has been written so far."""
        return self._writes

    def refreshed(self, recorded: dict[str, float], mark: int) -> None:
        """The recorded spend, read after `mark`: the records written by then are in it
        and stop counting here; those written since still count."""
        self.recorded = recorded
        settled = [entry for entry in self._settling if entry[0] <= mark]
        if not settled:
            return
        self._settling = [entry for entry in self._settling if entry[0] > mark]
        for _, scopes, usd in settled:
            for scope in scopes:
                left = self.unwritten.get(scope, 0.0) - usd
                if left <= 1e-12:
                    self.unwritten.pop(scope, None)
                else:
                    self.unwritten[scope] = left
