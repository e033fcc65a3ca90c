"""`sluice keys`: a tenant's client keys. The secret is printed once, at creation."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from control_plane.cli.common import Yes, confirm
from control_plane.cli.connection import Output, api, output
from control_plane.cli.lookup import tenant_id
from control_plane.cli.output import OutputOption, columns, console, emit, fields

__all__ = ["register", "show_secret"]

app = typer.Typer(name="keys", help="Client keys of the data plane's API (secrets shown once).")
Tenant = Annotated[str, typer.Argument(help="The tenant's id or name.")]
KEY_FIELDS = ("id", "tenant_id", "name", "key_prefix", "created_at", "revoked_at")


@app.command("list")
def list_(ctx: typer.Context, tenant: Tenant, _output: OutputOption = None) -> None:
    """A tenant's keys (never their secrets)."""
    client = api(ctx)
    found = client.get(f"/admin/v1/tenants/{tenant_id(client, tenant)}/keys")
    emit(ctx, found, columns("id", "name", "key_prefix", "created_at", "revoked_at"))


@app.command()
def get(ctx: typer.Context, key_id: str, _output: OutputOption = None) -> None:
    """One key (never its secret)."""
    emit(ctx, api(ctx).get(f"/admin/v1/keys/{key_id}"), fields(*KEY_FIELDS))


@app.command()
def create(
    ctx: typer.Context,
    tenant: Tenant,
    name: Annotated[str, typer.Option(help="A name to tell the key by.")] = "",
    _output: OutputOption = None,
) -> None:
    """Create a key; its secret is printed this once."""
    client = api(ctx)
    created = client.post(
        f"/admin/v1/tenants/{tenant_id(client, tenant)}/keys", json={"name": name}
    )
    show_secret(ctx, created, "key", "key", KEY_FIELDS)


@app.command()
def revoke(
    ctx: typer.Context,
    key_id: str,
    yes: Yes = False,
) -> None:
    """Revoke a key, on every data plane (revoking a revoked key changes nothing)."""
    confirm(yes, f"Revoke key {key_id}?")
    api(ctx).delete(f"/admin/v1/keys/{key_id}")
    typer.echo(f"revoked key {key_id}")


def show_secret(
    ctx: typer.Context,
    created: dict[str, Any],
    what: str,
    secret_field: str,
    shown: tuple[str, ...],
) -> None:
    """A created object whose secret the API returns once: JSON as it came, or its fields
    and then the secret on a line of its own, with a warning that it is not shown again."""
    if output(ctx) is Output.json:
        emit(ctx, created)
        return
    out = console()
    out.print(fields(*shown)(created))
    out.print(f"\nThe {what}'s secret, shown only this once. Store it now:\n")
    out.print(created[secret_field], markup=False, highlight=False, soft_wrap=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
