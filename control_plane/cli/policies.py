"""`sluice policies`: the limits on a tenant or a key (a key's narrow its tenant's)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from control_plane.cli.common import Yes, confirm
from control_plane.cli.connection import Api, api
from control_plane.cli.lookup import tenant_id
from control_plane.cli.output import OutputOption, emit, fields

__all__ = ["register"]

app = typer.Typer(name="policies", help="Rate, token, model and budget limits of tenants and keys.")


class Scope(StrEnum):
    tenant = "tenant"
    key = "key"


ScopeArg = Annotated[Scope, typer.Argument(help="tenant or key.")]
Owner = Annotated[str, typer.Argument(help="The tenant (id or name) or the key (id).")]
SHOWN = fields(
    "rpm", "tpm", "max_concurrent", "models", "max_tokens", "budget_usd", "budget_period",
    "soft_budget_usd", "updated_at",
)  # fmt: skip


def _path(client: Api, scope: Scope, owner: str) -> str:
    if scope is Scope.tenant:
        return f"/admin/v1/tenants/{tenant_id(client, owner)}/policy"
    return f"/admin/v1/keys/{owner}/policy"


@app.command()
def get(ctx: typer.Context, scope: ScopeArg, owner: Owner, _output: OutputOption = None) -> None:
    """A tenant's or a key's policy."""
    client = api(ctx)
    emit(ctx, client.get(_path(client, scope, owner)), SHOWN)


@app.command("set")
def set_(
    ctx: typer.Context,
    scope: ScopeArg,
    owner: Owner,
    rpm: Annotated[int | None, typer.Option(help="Requests a minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens a minute.")] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Requests at once.")] = None,
    model: Annotated[list[str] | None, typer.Option(help="Only this model; repeatable.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Largest max_tokens asked.")] = None,
    budget_usd: Annotated[float | None, typer.Option(help="Spend limit per period.")] = None,
    budget_period: Annotated[
        str | None, typer.Option(help="day, month (the default) or total.")
    ] = None,
    soft_budget_usd: Annotated[
        float | None, typer.Option(help="Spend at which an alert is logged.")
    ] = None,
    _output: OutputOption = None,
) -> None:
    """Set a policy. It replaces the whole policy: a limit not given is no limit."""
    body: dict[str, Any] = {
        "rpm": rpm,
        "tpm": tpm,
        "max_concurrent": max_concurrent,
        "models": model,
        "max_tokens": max_tokens,
        "budget_usd": budget_usd,
        "budget_period": budget_period,
        "soft_budget_usd": soft_budget_usd,
    }
    client = api(ctx)
    path = _path(client, scope, owner)
    emit(ctx, client.put(path, json={k: v for k, v in body.items() if v is not None}), SHOWN)


@app.command()
def clear(ctx: typer.Context, scope: ScopeArg, owner: Owner, yes: Yes = False) -> None:
    """Remove a policy: no limits of its own."""
    client = api(ctx)
    path = _path(client, scope, owner)
    confirm(yes, f"Remove the policy of {scope} {owner}?")
    client.delete(path)
    typer.echo(f"cleared the policy of {scope} {owner}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
