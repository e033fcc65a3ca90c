"""Spend so far this UTC month, per key, from the admin API's usage report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control_plane.console.api import AdminApi
from control_plane.console.usage import add_up

__all__ = ["month_spend", "month_start"]


def month_start() -> datetime:
    return datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def month_spend(api: AdminApi, **filters: Any) -> dict[Any, dict[str, float]]:
    """This month's numbers (requests, cost, ...) by key id, the days summed."""
    report = await api.get(
        "/usage", since=month_start().isoformat(), bucket="day", group_by="key", **filters
    )
    return add_up(report["data"], "key_id")
