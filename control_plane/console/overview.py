"""Console: the overview. Requests, tokens, cost and errors over the last 24 hours
(per hour) and the last 30 days (per day), by tenant and by model, from the admin
API's usage report (a tenant admin's report holds its own tenant only). A platform
identity also sees the data-plane replicas and how far behind the event log each is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, get
from litestar.response import Template

from control_plane.console.api import AdminApi
from control_plane.console.base import admin_api, is_platform, page
from control_plane.console.charts import METRICS, Chart, bar_chart, chart_from_rows, format_value
from control_plane.console.charts import time_buckets as buckets_of
from control_plane.console.usage import NUMBERS, add_up, tenant_names

__all__ = ["HANDLERS"]

# (name, heading, bucket, how many buckets)
PERIODS = [("day", "Last 24 hours", "hour", 24), ("month", "Last 30 days", "day", 30)]
GROUPS = [("tenant", "tenant_id", "Tenant"), ("model", "model", "Model")]


@dataclass
class Breakdown:
    """One period's usage by tenant or by model: the chart and the totals per group."""

    label: str  # what the groups are: "Tenant", "Model"
    chart: Chart
    svg: str
    totals: list[tuple[str, str | None, dict[str, float]]]  # name, link, numbers


@dataclass
class Period:
    heading: str
    totals: dict[str, float]
    breakdowns: list[Breakdown]


def _first(now: datetime, bucket: str, count: int) -> datetime:
    """The start of the first of `count` buckets that end with the current one."""
    start = now.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        return start.replace(hour=0) - timedelta(days=count - 1)
    return start - timedelta(hours=count - 1)


async def _period(
    api: AdminApi, heading: str, bucket: str, count: int, metric: str, names: dict[str, str]
) -> Period:
    now = datetime.now(UTC)
    first = _first(now, bucket, count)
    buckets = buckets_of(first, now, bucket)
    breakdowns, totals = [], dict.fromkeys(NUMBERS, 0.0)
    for group, column, label in GROUPS:
        report = await api.get(
            "/usage", since=first.isoformat(), until=now.isoformat(), bucket=bucket, group_by=group
        )
        rows = report["data"]
        totals = add_up(rows).get(None) or totals  # the same for either grouping
        chart = chart_from_rows(
            rows,
            buckets,
            bucket,
            metric,
            f"{METRICS[metric]} per {bucket}, {heading.lower()}, by {label.lower()}",
            dimension=column,
            names=names,
        )
        per_group = sorted(add_up(rows, column).items(), key=lambda item: -item[1]["requests"])
        breakdowns.append(
            Breakdown(
                label=label,
                chart=chart,
                svg=bar_chart(chart),
                totals=[
                    (
                        "(none)" if value is None else names.get(value, value),
                        f"/console/tenants/{value}" if group == "tenant" and value else None,
                        numbers,
                    )
                    for value, numbers in per_group
                ],
            )
        )
    return Period(heading=heading, totals=totals, breakdowns=breakdowns)


@get("/")
async def overview(request: Request[Any, Any, Any]) -> Template:
    metric = request.query_params.get("metric", "requests")
    metric = metric if metric in METRICS else "requests"
    async with admin_api(request) as api:
        names = await tenant_names(api)
        periods = [
            await _period(api, heading, bucket, count, metric, names)
            for _name, heading, bucket, count in PERIODS
        ]
        replicas = await api.get("/replicas") if is_platform(request) else None
    return page(
        request,
        "console/overview.html",
        title="Overview",
        metric=metric,
        metrics=list(METRICS.items()),
        periods=periods,
        replicas=replicas,
        fmt=format_value,
    )


HANDLERS = [overview]
