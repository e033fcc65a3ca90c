"""The `sluice` command: one typer app for the servers, development and administration.

`main` is the console script. Errors from the API (`ApiError`) or found before it
(`CliError`) print readably and exit 1, from any command (`_Root.invoke`)."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from control_plane.cli import (
    audit,
    declarative,
    deployments,
    keys,
    launcher,
    policies,
    prices,
    profile_commands,
    providers,
    routes,
    tenants,
    tokens,
    usage,
)
from control_plane.cli.connection import Options
from control_plane.cli.errors import ApiError, CliError, report
from control_plane.cli.output import OutputOption, err_console

__all__ = ["build", "main"]

HELP = """Sluice, a multi-tenant LLM gateway.

Admin commands talk to a control plane, URL and token as a pair from one place:
--url (with --token), else SLUICE_URL (with SLUICE_TOKEN), else a profile
(--profile, SLUICE_PROFILE, or the default one; see `sluice profile`), else
http://127.0.0.1:8081 with SLUICE_ADMIN_TOKEN. A token given by --token or
SLUICE_TOKEN goes to whichever URL is chosen; no other goes elsewhere."""


class _Root(TyperGroup):
    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (ApiError, CliError) as exc:
            report(exc, err_console())
            raise typer.Exit(1) from None


def _root(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="The control plane's URL (or SLUICE_URL).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="An admin token (better: SLUICE_TOKEN, or a profile)."),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="A profile of the profiles file (or SLUICE_PROFILE).")
    ] = None,
    _output: OutputOption = None,
) -> None:
    ctx.obj = options = Options(url=url, token=token, profile=profile)
    ctx.call_on_close(options.close)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def build() -> typer.Typer:
    app = typer.Typer(
        name="sluice",
        cls=_Root,
        help=HELP,
        invoke_without_command=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_show_locals=False,  # a local may hold a token
    )
    app.callback()(_root)
    launcher.register(app)
    for module in (
        tenants,
        keys,
        providers,
        routes,
        deployments,
        policies,
        prices,
        usage,
        audit,
        tokens,
        declarative,
    ):
        module.register(app)
    profile_commands.register(app)

    @app.command("help", hidden=True)
    def _help(ctx: typer.Context) -> None:
        parent = ctx.parent
        typer.echo(parent.get_help() if parent is not None else "")

    return app


def main() -> None:
    build()(prog_name="sluice")
