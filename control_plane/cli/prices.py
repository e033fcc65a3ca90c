"""`sluice prices`: USD per million tokens, per model, and providers' default prices."""

from __future__ import annotations

from typing import Annotated

import typer

from control_plane.cli.common import Yes, confirm
from control_plane.cli.connection import api
from control_plane.cli.lookup import provider_id
from control_plane.cli.output import OutputOption, columns, emit, fields

__all__ = ["register"]

app = typer.Typer(name="prices", help="Prices per model, from which each request's cost comes.")
Input = Annotated[float, typer.Option(help="USD per million input (prompt) tokens.")]
Output = Annotated[float, typer.Option(help="USD per million output (completion) tokens.")]
PRICE = ("model", "input_per_million", "output_per_million", "updated_at")


@app.command("list")
def list_(ctx: typer.Context, _output: OutputOption = None) -> None:
    """The price table."""
    emit(ctx, api(ctx).get("/admin/v1/prices"), columns(*PRICE))


@app.command()
def get(ctx: typer.Context, model: str, _output: OutputOption = None) -> None:
    """A model's price."""
    emit(ctx, api(ctx).get(f"/admin/v1/prices/{model}"), fields(*PRICE))


@app.command("set")
def set_(
    ctx: typer.Context,
    model: str,
    input_per_million: Input,
    output_per_million: Output,
    _output: OutputOption = None,
) -> None:
    """Set a model's price."""
    body = {"input_per_million": input_per_million, "output_per_million": output_per_million}
    emit(ctx, api(ctx).put(f"/admin/v1/prices/{model}", json=body), fields(*PRICE))


@app.command()
def clear(ctx: typer.Context, model: str, yes: Yes = False) -> None:
    """Remove a model's price (its provider's default applies, if it has one)."""
    confirm(yes, f"Remove the price of {model}?")
    api(ctx).delete(f"/admin/v1/prices/{model}")
    typer.echo(f"cleared the price of {model}")


@app.command()
def provider(
    ctx: typer.Context,
    provider: Annotated[str, typer.Argument(help="The provider's id or name.")],
    input_per_million: Input,
    output_per_million: Output,
    _output: OutputOption = None,
) -> None:
    """Set a provider's default price, for its models without a price of their own."""
    client = api(ctx)
    body = {"input_per_million": input_per_million, "output_per_million": output_per_million}
    path = f"/admin/v1/providers/{provider_id(client, provider)}/price"
    emit(ctx, client.put(path, json=body), fields("input_per_million", "output_per_million"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
