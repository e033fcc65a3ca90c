"""`sluice profile`: named connections (URL and token) in the profiles file."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from control_plane.cli import profiles
from control_plane.cli.common import secret
from control_plane.cli.errors import CliError
from control_plane.cli.output import OutputOption, emit

__all__ = ["register"]

app = typer.Typer(name="profile", help="Named control planes to connect to.")


@app.command("set")
def set_(
    name: str,
    url: Annotated[str | None, typer.Option(help="The control plane's URL.")] = None,
    token_env: Annotated[
        str | None, typer.Option(metavar="VAR", help="Store the token this variable holds.")
    ] = None,
    ask_token: Annotated[bool, typer.Option(help="Ask for the token (not echoed).")] = False,
    default: Annotated[bool, typer.Option(help="Use it when no profile is named.")] = False,
) -> None:
    """Create or change a profile (what is not given stays as it is)."""
    if token_env and ask_token:
        raise CliError("--token-env or --ask-token, not both")
    token = secret(token_env, ask_token, "admin token")
    file = profiles.path()
    stored = profiles.load(file)
    current = stored.profiles.get(name, profiles.Profile())
    stored.profiles[name] = profiles.Profile(url=url or current.url, token=token or current.token)
    if default:
        stored.default = name
    profiles.save(file, stored)
    typer.echo(f"profile {name} saved in {file}")


@app.command("list")
def list_(ctx: typer.Context, _output: OutputOption = None) -> None:
    """The profiles (never their tokens)."""
    stored = profiles.load(profiles.path())
    shown = [
        {
            "name": name,
            "url": p.url,
            "token": p.token is not None,
            "default": name == stored.default,
        }
        for name, p in sorted(stored.profiles.items())
    ]
    emit(ctx, shown, _table)


def _table(shown: list[dict[str, object]]) -> Table:
    table = Table()
    for column in ("name", "url", "token", "default"):
        table.add_column(column)
    for p in shown:
        table.add_row(
            str(p["name"]),
            str(p["url"] or ""),
            "set" if p["token"] else "",
            "*" if p["default"] else "",
        )
    return table


@app.command()
def delete(name: str) -> None:
    """Remove a profile."""
    file = profiles.path()
    stored = profiles.load(file)
    if stored.profiles.pop(name, None) is None:
        raise CliError(f"no profile {name!r} in {file}")
    if stored.default == name:
        stored.default = None
    profiles.save(file, stored)
    typer.echo(f"profile {name} removed")


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Settings")
