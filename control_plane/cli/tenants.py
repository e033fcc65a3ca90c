"""`sluice tenants`: list, get, create, rename, delete."""

from __future__ import annotations

from typing import Annotated

import typer

from control_plane.cli.common import IfMatch, Yes, confirm, if_match
from control_plane.cli.connection import api
from control_plane.cli.lookup import tenant_id
from control_plane.cli.output import OutputOption, columns, emit, fields

__all__ = ["register"]

app = typer.Typer(name="tenants", help="Tenants: the unit of isolation, policy and billing.")
Ref = Annotated[str, typer.Argument(help="The tenant's id or name.")]
SHOWN = fields("id", "name", "version", "created_at", "updated_at")


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    _output: OutputOption = None,
) -> None:
    """The tenants the caller may see."""
    found = api(ctx).get("/admin/v1/tenants", params={"limit": limit, "offset": offset})
    emit(ctx, found, columns("id", "name", "version", "created_at"))


@app.command()
def get(ctx: typer.Context, tenant: Ref, _output: OutputOption = None) -> None:
    """One tenant."""
    client = api(ctx)
    emit(ctx, client.get(f"/admin/v1/tenants/{tenant_id(client, tenant)}"), SHOWN)


@app.command()
def create(ctx: typer.Context, name: str, _output: OutputOption = None) -> None:
    """Create a tenant."""
    emit(ctx, api(ctx).post("/admin/v1/tenants", json={"name": name}), SHOWN)


@app.command()
def rename(
    ctx: typer.Context,
    tenant: Ref,
    new_name: str,
    version: IfMatch = None,
    _output: OutputOption = None,
) -> None:
    """Give a tenant another name."""
    client = api(ctx)
    path = f"/admin/v1/tenants/{tenant_id(client, tenant)}"
    emit(ctx, client.patch(path, json={"name": new_name}, headers=if_match(version)), SHOWN)


@app.command()
def delete(ctx: typer.Context, tenant: Ref, yes: Yes = False, version: IfMatch = None) -> None:
    """Delete a tenant; this revokes all its keys."""
    client = api(ctx)
    tid = tenant_id(client, tenant)
    confirm(yes, f"Delete tenant {tenant} ({tid}) and revoke all its keys?")
    client.delete(f"/admin/v1/tenants/{tid}", headers=if_match(version))
    typer.echo(f"deleted tenant {tid}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
