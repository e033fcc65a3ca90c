"""`python -m data_plane [--host H] [--port P]`: one data-plane replica under uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from data_plane.app import DataPlane
from shared.config import ConfigError, Settings
from shared.logs import setup_logging


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="sluice data-plane")
    parser.add_argument("--host", default=settings.data_plane_host)
    parser.add_argument("--port", type=int, default=settings.data_plane_port)
    args = parser.parse_args(argv)
    setup_logging(settings.log_level)
    try:
        app = DataPlane(settings)
    except ConfigError as exc:
        parser.exit(2, f"sluice data-plane: {exc}\n")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
