"""Console: the usage report with filters, as a chart and a table, and the same rows as
CSV. The filters go to the admin API's `GET /usage` as they are (a date becomes the
start of that UTC day); the API checks them, and its problem shows next to the field."""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.response import Template

from control_plane.console.api import AdminApi, ApiError
from control_plane.console.base import admin_api, page
from control_plane.console.charts import (
    METRICS,
    bar_chart,
    bucket_label,
    chart_from_rows,
    format_value,
    time_buckets,
)

__all__ = ["HANDLERS", "NUMBERS", "add_up", "tenant_names", "usage_csv_text"]

NUMBERS = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")
DIMENSIONS = {  # group_by's dimensions: the row's field, the column's heading
    "tenant": ("tenant_id", "Tenant"),
    "key": ("key_id", "Key"),
    "model": ("model", "Model"),
    "operation": ("operation", "Operation"),
    "dialect": ("dialect", "Dialect"),
}
GROUPINGS = [
    ("tenant", "Tenant"),
    ("model", "Model"),
    ("key", "Key"),
    ("tenant,model", "Tenant and model"),
    ("operation", "Operation"),
    ("dialect", "Client API"),
    ("", "Nothing (totals only)"),
]
FILTERS = ("since", "until", "tenant_id", "key_id", "model", "bucket", "group_by", "metric")
DEFAULT_DAYS = 7
MAX_CHART_BUCKETS = 400  # longer ranges chart only the buckets that have usage


@dataclass
class Report:
    """A usage report as the page shows it, or the API's problem with the filters."""

    form: dict[str, str]
    body: dict[str, Any] | None = None
    errors: dict[str, str] | None = None
    status: int = 200


def add_up(rows: list[dict[str, Any]], by: str | None = None) -> dict[Any, dict[str, float]]:
    """The rows' numbers summed per value of their field `by` (None: all in one)."""
    sums: dict[Any, dict[str, float]] = {}
    for row in rows:
        total = sums.setdefault(row.get(by) if by else None, dict.fromkeys(NUMBERS, 0.0))
        for name in NUMBERS:
            total[name] += row.get(name) or 0
    return sums


async def tenant_names(api: AdminApi) -> dict[str, str]:
    """The names of the tenants the session may see, by id."""
    return {t["id"]: t["name"] for t in await api.get("/tenants", limit=1000)}


def _day_start(text: str, days: int = 0) -> str:
    """A date from the form as the start of that UTC day (plus `days`); any other text
    as it is, for the API to judge."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return text
    with contextlib.suppress(OverflowError):  # past the last day: the API will say so
        day += timedelta(days=days)
    return f"{day.isoformat()}T00:00:00Z"


def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The filters asked for, with the defaults for those left out."""
    today = datetime.now(UTC).date()
    form = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    form["since"] = form["since"] or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    form["until"] = form["until"] or today.isoformat()
    form["bucket"] = form["bucket"] or "day"
    if "group_by" not in request.query_params:
        form["group_by"] = "tenant"
    if form["metric"] not in METRICS:
        form["metric"] = "requests"
    return form


async def _report(api: AdminApi, form: dict[str, str]) -> Report:
    params = {
        "since": _day_start(form["since"]),
        "until": _day_start(form["until"], days=1),  # the `until` day is included
        **{name: form[name] for name in ("tenant_id", "key_id", "model", "bucket")},
        "group_by": form["group_by"] or ",",  # no dimension: the API's empty list
    }
    reply = await api.call("GET", "/usage", params=params)
    if reply.status in (400, 422):
        return Report(form, errors=reply.field_errors(), status=reply.status)
    if not reply.ok:
        raise ApiError(reply)
    return Report(form, body=reply.body)


def _label(row: dict[str, Any], dims: list[str], names: dict[str, str]) -> str:
    """A row's group, as words: the tenant's name, the model, ..."""
    parts = []
    for dim in dims:
        value = row.get(DIMENSIONS[dim][0])
        parts.append("(none)" if value is None else names.get(value, str(value)))
    return " · ".join(parts) or "All"


def _chart_buckets(body: dict[str, Any], rows: list[dict[str, Any]]) -> list[datetime]:
    """Every bucket of the range, or only those with usage when there are too many."""
    bucket = body["bucket"]
    first = datetime.fromisoformat(body["since"]).astimezone(UTC)
    first = first.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        first = first.replace(hour=0)
    until = datetime.fromisoformat(body["until"])
    span = (until - first) / (timedelta(days=1) if bucket == "day" else timedelta(hours=1))
    if span <= MAX_CHART_BUCKETS:
        return time_buckets(first, until, bucket)
    return sorted({datetime.fromisoformat(row["bucket"]) for row in rows})


async def _page(request: Request[Any, Any, Any]) -> tuple[Report, dict[str, str]]:
    form = _form(request)
    async with admin_api(request) as api:
        names = await tenant_names(api)
        return await _report(api, form), names


@get("/usage")
async def usage(request: Request[Any, Any, Any]) -> Template:
    report, names = await _page(request)
    return _render(request, report, names)


def _render(request: Request[Any, Any, Any], report: Report, names: dict[str, str]) -> Template:
    form, body = report.form, report.body
    context: dict[str, Any] = {"rows": [], "chart": None, "svg": "", "totals": None, "dims": []}
    if body is not None:
        dims = body["group_by"]
        rows = sorted(body["data"], key=lambda r: (r["bucket"], _label(r, dims, names)))
        for row in rows:
            row["_group"] = _label(row, dims, names)
            row["_bucket"] = bucket_label(
                datetime.fromisoformat(row["bucket"]), body["bucket"], full=True
            )
        metric = form["metric"]
        chart = chart_from_rows(
            rows,
            _chart_buckets(body, rows),
            body["bucket"],
            metric,
            f"{METRICS[metric]} per {body['bucket']}, by {', '.join(dims) or 'nothing'}",
            dimension="_group" if dims else None,
        )
        context = {
            "rows": rows,
            "chart": chart,
            "svg": bar_chart(chart),
            "totals": add_up(rows).get(None),
            "dims": [(d, *DIMENSIONS[d]) for d in dims],
        }
    csv_link = "/console/usage.csv?" + urlencode(form)
    return page(
        request,
        "console/usage.html",
        status=report.status,
        title="Usage",
        form=form,
        errors=report.errors or {},
        tenants=sorted(names.items(), key=lambda item: item[1]),
        names=names,
        groupings=GROUPINGS,
        metrics=list(METRICS.items()),
        csv_link=csv_link if report.body is not None else "",
        fmt=format_value,
        **context,
    )


def _safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def usage_csv_text(body: dict[str, Any], names: dict[str, str]) -> str:
    """The report's rows as CSV: a header, then one line per row of the API's report."""
    columns: list[str] = ["bucket"]
    for dim in body["group_by"]:
        columns.append(DIMENSIONS[dim][0])
        if dim == "tenant":
            columns.append("tenant_name")
    columns.extend(NUMBERS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    keys = [DIMENSIONS[dim][0] for dim in body["group_by"]]
    for row in sorted(body["data"], key=lambda r: [r["bucket"], *(str(r.get(k)) for k in keys)]):
        cells = {**row, "tenant_name": names.get(row.get("tenant_id") or "", "")}
        writer.writerow([_safe_cell(cells.get(c, "")) for c in columns])
    return out.getvalue()


@get("/usage.csv")
async def usage_csv(request: Request[Any, Any, Any]) -> Response[str] | Template:
    report, names = await _page(request)
    if report.body is None:
        return _render(request, report, names)
    form = report.form
    filename = f"sluice-usage-{form['since']}-to-{form['until']}.csv"
    filename = "".join(c for c in filename if c.isalnum() or c in "-_.")
    return Response(
        usage_csv_text(report.body, names),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


HANDLERS = [usage, usage_csv]
