"""`sluice audit`: the event log, newest first, filtered; `--follow` prints new events
as they are made, oldest first, each once (polling `GET /admin/v1/events`)."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from control_plane.cli.common import Moment, moment
from control_plane.cli.connection import Api, Output, api, output
from control_plane.cli.errors import CliError
from control_plane.cli.lookup import tenant_id
from control_plane.cli.output import OutputOption, cell, console, emit

__all__ = ["newer", "register"]

PAGE = 1000  # the API's largest page


def newer(client: Api, filters: dict[str, Any], after: int) -> list[dict[str, Any]]:
    """The events past position `after` that match `filters`, oldest first."""
    found: list[dict[str, Any]] = []
    before = None
    while True:
        page = client.get("/admin/v1/events", params={**filters, "limit": PAGE, "before": before})
        fresh = [e for e in page["data"] if e["position"] > after]
        found += fresh
        if len(fresh) < len(page["data"]) or page["next_before"] is None:
            return sorted(found, key=lambda e: e["position"])
        before = page["next_before"]


def _follow(client: Api, filters: dict[str, Any], last: int, interval: float) -> Iterator[Any]:
    while True:
        time.sleep(interval)
        for event in newer(client, filters, last):
            last = event["position"]
            yield event


def _table(page: dict[str, Any]) -> Table:
    table = Table(caption=_more(page))
    for name in ("position", "created_at", "type", "stream", "actor", "data"):
        table.add_column(name, overflow="fold")
    for event in page["data"]:
        table.add_row(*(cell(event[name]) for name in ("position", "created_at", "type")),
                      event["stream"], event["actor"], _data(event["data"]))  # fmt: skip
    return table


def _data(data: dict[str, Any]) -> str:
    """An event's fields as `name=value`, those without a value left out."""
    return " ".join(f"{k}={cell(v)}" for k, v in data.items() if v is not None)


def _more(page: dict[str, Any]) -> str | None:
    older = page.get("next_before")
    return None if older is None else f"older events: --before {older}"


def _line(event: dict[str, Any]) -> str:
    return (
        f"[dim]{event['created_at']}[/] #{event['position']} [bold]{escape(event['type'])}[/]"
        f" {escape(event['stream'])} by {escape(event['actor'])} {escape(_data(event['data']))}"
    )


def audit(
    ctx: typer.Context,
    stream: Annotated[str | None, typer.Option(help="Only this stream, e.g. tenant:<id>.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only events of this type.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only by this actor, e.g. token:ci or admin:bootstrap.")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's (id or name).")] = None,
    since: Moment = None,
    until: Moment = None,
    before: Annotated[int | None, typer.Option(help="Only before this position.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then print new events as they come.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="--follow: seconds between looks.")
    ] = 2.0,
    _output: OutputOption = None,
) -> None:
    """The audit log: who changed what, when (newest first; with --follow, oldest first)."""
    client = api(ctx)
    filters = {
        "stream": stream,
        "type": type_,
        "actor": actor,
        "tenant_id": None if tenant is None else tenant_id(client, tenant),
        "since": moment(since),
    }
    if not follow:
        params = {**filters, "until": moment(until), "before": before, "limit": limit}
        emit(ctx, client.get("/admin/v1/events", params=params), _table)
        return
    if until is not None or before is not None:
        raise CliError("--follow shows what comes next: not with --until or --before")
    page = client.get("/admin/v1/events", params={**filters, "limit": limit})
    recent = sorted(page["data"], key=lambda e: e["position"])
    last = recent[-1]["position"] if recent else 0
    as_json, out = output(ctx) is Output.json, console()
    try:
        for event in itertools.chain(recent, _follow(client, filters, last, interval)):
            if as_json:  # one JSON object a line
                sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            else:
                out.print(_line(event), soft_wrap=True)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return


def register(root: typer.Typer) -> None:
    root.command("audit", rich_help_panel="Administration")(audit)
