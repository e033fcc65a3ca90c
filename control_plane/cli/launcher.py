"""`sluice run | control-plane | data-plane | fake-provider | migrate | check-sql`: the
development and server commands, handed with all their arguments (`--help` too) to
`shared.tools.cli`, which runs each server as its own process."""

from __future__ import annotations

from collections.abc import Callable

import typer

__all__ = ["register"]

COMMANDS = {
    "run": "Everything for local development (what `make run` starts).",
    "control-plane": "The admin API: [--host H] [--port P].",
    "data-plane": "Data-plane replicas: [--host H] [--port P] [--workers N].",
    "fake-provider": "The fake upstream of the tests: [--port P] [--tokens N] ...",
    "migrate": "Apply the database migrations.",
    "check-sql": "Check every query against the schema.",
}
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _launcher(name: str) -> Callable[[typer.Context], None]:
    def launch(ctx: typer.Context) -> None:
        from shared.tools.cli import main  # the servers' settings, asyncpg: only here

        main([name, *ctx.args])

    launch.__name__ = name.replace("-", "_")
    return launch


def register(app: typer.Typer) -> None:
    for name, summary in COMMANDS.items():
        app.command(
            name,
            help=summary,
            context_settings=_PASS_THROUGH,
            add_help_option=False,
            rich_help_panel="Servers and development",
        )(_launcher(name))
