"""A replica's own unwritten spend: counted while in flight and until its record is
written, then left to the fleet's recorded spend; nothing counted twice."""

from __future__ import annotations

import uuid

import pytest

from data_plane.budgets import Budgets
from shared.errors import BudgetExceeded
from shared.state import Policy, State

SCOPES = ("tenant:t", "key:k")


def test_in_flight_then_pending_then_written() -> None:
    budgets = Budgets()
    rid = uuid.uuid4()
    budgets.add(SCOPES, 0.01)  # admitted: the prompt's estimated cost
    assert budgets.unwritten == {"tenant:t": 0.01, "key:k": 0.01}
    budgets.pending(rid, SCOPES, 0.05, 0.01)  # ended: the real cost replaces the estimate
    assert budgets.unwritten["key:k"] == pytest.approx(0.05)
    budgets.written([uuid.uuid4()])  # someone else's record: ignored
    assert budgets.unwritten["key:k"] == pytest.approx(0.05)
    budgets.written([rid])
    assert budgets.unwritten == {}
    budgets.written([rid])  # written again (a replay): not subtracted twice
    assert budgets.unwritten == {}


def test_budget_counts_recorded_and_unwritten_spend() -> None:
    budgets = Budgets()
    policy = Policy(budget_usd=1.0, budget_period="total")
    budgets.recorded = {"key:k": 0.9}
    budgets.check(State(), [("key:k", policy)])
    budgets.pending(uuid.uuid4(), SCOPES, 0.1, 0.0)
    with pytest.raises(BudgetExceeded):
        budgets.check(State(), [("key:k", policy)])
