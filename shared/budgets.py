"""Budget periods and recorded spend: what both planes need to judge a budget."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import asyncpg

from shared.queries import Q
from shared.state import Policy, State

__all__ = ["budgeted_scopes", "period_key", "period_start", "recorded_spend"]

_BEGINNING = date(1970, 1, 1)


def period_start(period: str | None, today: date) -> date:
    if period == "day":
        return today
    if period == "month":
        return today.replace(day=1)
    return _BEGINNING  # "total"


def period_key(period: str | None, today: date) -> str:
    """Names the current period: a budget cut off in it stays cut off until it ends."""
    return f"{period}:{period_start(period, today).isoformat()}"


def budgeted_scopes(state: State) -> Iterable[tuple[str, Policy]]:
    for tenant_id, policy in state.tenant_policies.items():
        if policy.budget_usd is not None or policy.soft_budget_usd is not None:
            yield f"tenant:{tenant_id}", policy
    for key_id, policy in state.key_policies.items():
        if policy.budget_usd is not None or policy.soft_budget_usd is not None:
            yield f"key:{key_id}", policy


async def recorded_spend(
    conn: asyncpg.Connection, scopes: list[tuple[str, str | None]], today: date
) -> dict[str, float]:
    """Spend recorded in each scope's current period, by the whole fleet."""
    by_start: dict[date, list[str]] = {}
    for scope, period in scopes:
        by_start.setdefault(period_start(period, today), []).append(scope)
    spent: dict[str, float] = {}
    for start, names in by_start.items():
        for row in await conn.fetch(Q.spend_since, names, start):
            spent[row["scope"]] = float(row["usd"])
    return spent
