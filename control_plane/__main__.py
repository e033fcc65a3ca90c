"""`python -m control_plane [--host H] [--port P]`: the admin API under uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from control_plane.app import create_app
from shared.config import ConfigError, Settings
from shared.logs import setup_logging


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="sluice control-plane")
    parser.add_argument("--host", default=settings.control_plane_host)
    parser.add_argument("--port", type=int, default=settings.control_plane_port)
    args = parser.parse_args(argv)
    setup_logging(settings.log_level)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        parser.exit(2, f"sluice control-plane: {exc}\n")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
