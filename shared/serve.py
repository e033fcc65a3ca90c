"""Running an ASGI app under uvicorn (uvloop, httptools) with the `--host/--port` flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import uvicorn

from shared.config import ConfigError, Settings
from shared.logs import setup_logging

__all__ = ["serve"]


def serve(
    prog: str,
    make_app: Callable[[Settings], Any],
    default_address: Callable[[Settings], tuple[str, int]],
    *,
    graceful_seconds: int,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    try:
        settings = Settings.from_env()
        host, port = default_address(settings)
        parser.add_argument("--host", default=host)
        parser.add_argument("--port", type=int, default=port)
        args = parser.parse_args(argv)
        setup_logging(settings.log_level)
        app = make_app(settings)
    except ConfigError as exc:
        parser.exit(2, f"{prog}: {exc}\n")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # nothing reads the client's address
        server_header=False,
        timeout_graceful_shutdown=graceful_seconds,
    )
