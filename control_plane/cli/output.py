"""Printing what a command read: JSON with `--output json`, a rich table otherwise.

    emit(ctx, tenants, table=columns("id", "name", "created_at"))

`table` turns the data into something rich can print: `columns(...)` makes a table of
a list of objects, `fields(...)` shows one object as field/value rows. Without `table`
the data is printed as JSON whatever the output format.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from control_plane.cli.connection import OUTPUT_KEY, Output, output

__all__ = ["OutputOption", "Render", "cell", "columns", "console", "emit", "err_console", "fields"]

Render = Callable[[Any], RenderableType]


def _chosen(ctx: typer.Context, value: Output | None) -> None:
    if value is not None:
        ctx.meta[OUTPUT_KEY] = value


# `--output` of `sluice` itself and of every command that reads: a command declares it
# as `_output: OutputOption = None` and `emit` honours it.
OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        expose_value=False,
        callback=_chosen,
        help="json, or table (the default)",
        show_default=False,
    ),
]


def console() -> Console:
    """Standard output; when it is not a terminal (a pipe, a file) and `COLUMNS` does not
    say, wide enough that tables keep an id on one line."""
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=200 if wide else None)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit(ctx: typer.Context, data: Any, table: Render | None = None) -> None:
    if output(ctx) is Output.json or table is None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    console().print(table(data))


def cell(value: Any) -> str:
    """A value as a table cell: nested values as compact JSON, None as blank."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def columns(*names: str, title: str | None = None) -> Render:
    """A renderer showing `names` of each object of a list (a single object: one row)."""

    def render(data: Any) -> RenderableType:
        rows: Sequence[Any] = data if isinstance(data, list) else [data]
        table = Table(title=title, show_lines=False)
        for name in names:
            table.add_column(name)
        for row in rows:
            table.add_row(*(cell(row.get(name)) for name in names))
        return table

    return render


def fields(*names: str, title: str | None = None) -> Render:
    """A renderer showing one object as field/value rows (all its fields when `names` is empty)."""

    def render(data: Any) -> RenderableType:
        table = Table(title=title, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for name in names or tuple(data):
            table.add_row(name, cell(data.get(name)))
        return table

    return render
