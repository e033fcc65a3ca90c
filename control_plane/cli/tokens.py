"""`sluice tokens`: named admin tokens (the secret printed once), and `sluice whoami`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from control_plane.cli.common import Yes, age, confirm, moment
from control_plane.cli.connection import api
from control_plane.cli.errors import CliError
from control_plane.cli.keys import show_secret
from control_plane.cli.lookup import tenant_id
from control_plane.cli.output import OutputOption, columns, emit, fields

__all__ = ["register"]

app = typer.Typer(name="tokens", help="Admin tokens: named, with a role, shown once.")
TOKEN_FIELDS = ("id", "name", "role", "tenant_id", "prefix", "expires_at")


class Role(StrEnum):
    platform_admin = "platform_admin"
    tenant_admin = "tenant_admin"
    viewer = "viewer"


@app.command("list")
def list_(ctx: typer.Context, _output: OutputOption = None) -> None:
    """The admin tokens in force (never their secrets)."""
    emit(ctx, api(ctx).get("/admin/v1/admin-tokens"), columns(*TOKEN_FIELDS))


@app.command()
def get(ctx: typer.Context, token_id: str, _output: OutputOption = None) -> None:
    """One admin token (never its secret)."""
    emit(ctx, api(ctx).get(f"/admin/v1/admin-tokens/{token_id}"), fields(*TOKEN_FIELDS))


@app.command()
def create(
    ctx: typer.Context,
    name: str,
    role: Annotated[Role, typer.Option(help="What the token may do.")],
    tenant: Annotated[
        str | None, typer.Option(help="The tenant (id or name) it is bound to.")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(metavar="WHEN", help="When it expires, e.g. 2027-01-31.")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option(metavar="AGE", help="e.g. 30d; the default is 90 days.")
    ] = None,
    _output: OutputOption = None,
) -> None:
    """Create an admin token; its secret is printed this once."""
    if expires is not None and expires_in is not None:
        raise CliError("--expires or --expires-in, not both")
    client = api(ctx)
    body = {"name": name, "role": role.value}
    if tenant is not None:
        body["tenant_id"] = tenant_id(client, tenant)
    if expires is not None:
        body["expires_at"] = moment(expires) or ""
    if expires_in is not None:
        ahead = age(expires_in)
        if ahead is None:
            raise CliError(f"--expires-in takes an age such as 30d or 12h, not {expires_in!r}")
        body["expires_at"] = (datetime.now(UTC) + ahead).isoformat()
    created = client.post("/admin/v1/admin-tokens", json=body)
    show_secret(ctx, created, "token", "token", TOKEN_FIELDS)


@app.command()
def revoke(ctx: typer.Context, token_id: str, yes: Yes = False) -> None:
    """Revoke an admin token, at once."""
    confirm(yes, f"Revoke admin token {token_id}?")
    api(ctx).delete(f"/admin/v1/admin-tokens/{token_id}")
    typer.echo(f"revoked admin token {token_id}")


def whoami(ctx: typer.Context, _output: OutputOption = None) -> None:
    """Who the token in use is: its actor, role and tenant."""
    emit(ctx, api(ctx).get("/admin/v1/me"), fields("actor", "role", "tenant_id"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
    root.command("whoami", rich_help_panel="Administration")(whoami)
