"""A replica's own unwritten spend: counted while in flight, until its record is
written and until a read of the fleet's recorded spend begun after that has it;
then left to the recorded spend. Nothing counted twice, nothing in neither."""

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
    mark = budgets.mark()  # a read of the recorded spend begins before the write
    budgets.written([rid])
    budgets.refreshed({}, mark)  # … so it cannot have it: still counted here
    assert budgets.unwritten["key:k"] == pytest.approx(0.05)
    budgets.refreshed({"key:k": 0.05}, budgets.mark())  # a read begun after it has it
    assert budgets.unwritten == {}
    budgets.written([rid])  # written again (a replay): not subtracted twice
    budgets.refreshed({"key:k": 0.05}, budgets.mark())
    assert budgets.unwritten == {}


def test_a_written_record_counts_until_the_recorded_spend_has_it() -> None:
    """Between its write and the next read of the recorded spend a record is in
    neither; the budget must still see it."""
    budgets = Budgets()
    policy = Policy(budget_usd=1.0, budget_period="total")
    budgets.refreshed({"key:k": 0.5}, budgets.mark())
    rid = uuid.uuid4()
    budgets.pending(rid, SCOPES, 0.5, 0.0)
    budgets.written([rid])
    with pytest.raises(BudgetExceeded):  # 0.5 recorded + 0.5 written, not yet read back
        budgets.check(State(), [("key:k", policy)])
    budgets.refreshed({"key:k": 1.0}, budgets.mark())
    with pytest.raises(BudgetExceeded):  # now in the recorded spend, counted once
        budgets.check(State(), [("key:k", policy)])
    assert budgets.unwritten == {}


def test_budget_counts_recorded_and_unwritten_spend() -> None:
    budgets = Budgets()
    policy = Policy(budget_usd=1.0, budget_period="total")
    budgets.refreshed({"key:k": 0.9}, budgets.mark())
    budgets.check(State(), [("key:k", policy)])
    budgets.pending(uuid.uuid4(), SCOPES, 0.1, 0.0)
    with pytest.raises(BudgetExceeded):
        budgets.check(State(), [("key:k", policy)])
