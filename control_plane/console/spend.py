"""Spend so far this UTC month, from the admin API's usage report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control_plane.console.api import AdminApi

__all__ = ["month_spend", "month_start"]


def month_start() -> datetime:
    return datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def month_spend(api: AdminApi, group_by: str, **filters: Any) -> list[dict[str, Any]]:
    """This month's usage, one row per `group_by` value (the days summed)."""
    report = await api.get(
        "/usage", since=month_start().isoformat(), bucket="day", group_by=group_by, **filters
    )
    totals: dict[Any, dict[str, Any]] = {}
    for row in report["data"]:
        key = tuple(row.get(d) for d in report["group_by"])
        total = totals.setdefault(key, {**row, "requests": 0, "cost_usd": 0.0, "errors": 0})
        for name in ("requests", "cost_usd", "errors"):
            total[name] += row[name]
    return list(totals.values())
