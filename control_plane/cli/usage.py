"""`sluice usage`: requests, tokens and cost, by day (or hour) or by model, tenant,
key, operation or dialect, with a totals row. From `GET /admin/v1/usage`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from control_plane.cli.common import Moment, moment
from control_plane.cli.connection import Api, api
from control_plane.cli.lookup import tenant_id, tenants
from control_plane.cli.output import OutputOption, emit

__all__ = ["register", "summed"]

COUNTS = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")


class By(StrEnum):
    day = "day"
    hour = "hour"
    model = "model"
    tenant = "tenant"
    key = "key"
    operation = "operation"
    dialect = "dialect"


_ID_FIELD = {"tenant": "tenant_id", "key": "key_id"}


def summed(report: dict[str, Any], by: By) -> dict[str, Any]:
    """The report's rows as one row per day/hour, or per value of `by` over the whole
    period (the buckets added up), and their totals."""
    field = "bucket" if by in (By.day, By.hour) else _ID_FIELD.get(by, by.value)
    rows: dict[str, dict[str, Any]] = {}
    for row in report["data"]:
        label = str(row.get(field) or "")
        acc = rows.setdefault(label, {by.value: label, **dict.fromkeys(COUNTS, 0)})
        for name in COUNTS:
            acc[name] += row[name]
    ordered = sorted(rows.values(), key=lambda r: r[by.value])
    totals = {name: sum(r[name] for r in ordered) for name in COUNTS}
    for row in [*ordered, totals]:
        row["cost_usd"] = round(row["cost_usd"], 9)
    return {
        "since": report["since"],
        "until": report["until"],
        "by": by.value,
        "rows": ordered,
        "totals": totals,
    }


def _table(summary: dict[str, Any], names: dict[str, str]) -> Table:
    by = summary["by"]
    table = Table(
        title=f"Usage from {_time(summary['since'])} to {_time(summary['until'])} UTC",
        show_footer=True,
        footer_style="bold",
    )
    total = summary["totals"]
    table.add_column(by, footer="total")
    for name in COUNTS:
        table.add_column(name.replace("_", " "), justify="right", footer=_number(name, total))
    for row in summary["rows"]:
        label = row[by]
        if by in ("day", "hour"):
            shown = _time(label)[: 10 if by == "day" else 16]
        else:
            shown = f"{names[label]} ({label[:8]})" if label in names else label
        table.add_row(shown or "-", *(_number(name, row) for name in COUNTS))
    return table


def _time(iso: str) -> str:
    """`2026-01-31T12:00:00.123Z` as `2026-01-31 12:00` (UTC)."""
    return iso.replace("T", " ")[:16]


def _number(name: str, row: dict[str, Any]) -> str:
    value = row[name]
    return f"${value:,.6f}" if name == "cost_usd" else f"{value:,}"


def _names(client: Api, summary: dict[str, Any]) -> dict[str, str]:
    """Tenant names, when the rows are tenants."""
    if summary["by"] != "tenant":
        return {}
    return {str(t["id"]): t["name"] for t in tenants(client)}


def report(
    ctx: typer.Context,
    since: Moment = None,
    until: Moment = None,
    by: Annotated[By, typer.Option(help="Rows: a day or hour each, or a value each.")] = By.day,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant (id or name).")] = None,
    key: Annotated[str | None, typer.Option(help="Only this key (id).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    operation: Annotated[str | None, typer.Option(help="chat, messages or embeddings.")] = None,
    dialect: Annotated[str | None, typer.Option(help="openai or anthropic.")] = None,
    _output: OutputOption = None,
) -> None:
    """Requests, tokens and cost (since 24 hours ago by default), with totals."""
    client = api(ctx)
    params = {
        "since": moment(since),
        "until": moment(until),
        "bucket": "day" if by is By.day else "hour",
        "group_by": "" if by in (By.day, By.hour) else by.value,
        "tenant_id": None if tenant is None else tenant_id(client, tenant),
        "key_id": key,
        "model": model,
        "operation": operation,
        "dialect": dialect,
    }
    summary = summed(client.get("/admin/v1/usage", params=params), by)
    emit(ctx, summary, lambda data: _table(data, _names(client, data)))


def register(root: typer.Typer) -> None:
    root.command("usage", rich_help_panel="Administration")(report)
