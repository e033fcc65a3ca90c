"""The server and development commands of `sluice` (the console script,
`control_plane.cli`, hands them here with all their arguments; `python -m
shared.tools.cli` runs them too).

    sluice run                      everything for local development (see `make run`)
    sluice control-plane [--host H] [--port P]
    sluice data-plane [--host H] [--port P] [--workers N]
    sluice fake-provider [--port P] [--tokens N] [--delay-ms D] ...
    sluice migrate                  apply the database migrations
    sluice check-sql                check every query against the schema

Each server runs as its own process (`python -m <package>`), so this launcher
depends on neither plane. Settings come from `SLUICE_*` environment variables.
"""

from __future__ import annotations

import os
import sys

import asyncpg

from shared.config import ConfigError, Settings

__all__ = ["main"]

_SERVERS = {
    "control-plane": "control_plane",
    "data-plane": "data_plane",
    "fake-provider": "tests.fakes.provider",
}


def _usage() -> str:
    return (__doc__ or "").split("\n\n")[1]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print("usage:\n" + _usage())
        return
    command, rest = args[0], args[1:]
    if command in _SERVERS:
        module = _SERVERS[command]
        os.execv(sys.executable, [sys.executable, "-m", module, *rest])
    try:
        if command == "migrate":
            from shared.migrate import migrate

            settings = Settings.from_env()
            try:
                migrate(settings.database_url)
            except (ValueError, OSError, asyncpg.PostgresError) as exc:
                sys.exit(f"sluice migrate: {type(exc).__name__}: {exc}")
            print("sluice: database migrated", file=sys.stderr)
        elif command == "check-sql":
            from shared.tools.sqlcheck import main as check_sql

            sys.exit(check_sql(rest))
        elif command == "run":
            from shared.tools.devrun import main as run

            run(rest)
        else:
            sys.exit(f"sluice: unknown command {command!r}\nusage:\n{_usage()}")
    except ConfigError as exc:
        sys.exit(f"sluice: {exc}")


if __name__ == "__main__":
    main()
