"""Running an ASGI app under uvicorn (uvloop, httptools) with the `--host/--port` flags,
and draining it on SIGTERM.

The drain, in order: the app is told (`Drains.drain`: its `/readyz` turns 503) and
goes on serving for `drain_delay_seconds`, while endpoints drop the pod; then uvicorn
stops accepting connections and waits for the requests in flight; after
`drain_grace_seconds` the app ends what is still open (`Drains.cut`: a stream gets
its final error event), and uvicorn cancels whatever remains `CUT_SECONDS` later.
The process exits once the last connection has closed and the lifespan has ended.
A second signal skips the rest of the delay; SIGINT is uvicorn's own (no delay; a
second one exits at once).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import uvicorn

from shared.config import ConfigError, Settings
from shared.connections import limited_http
from shared.logs import setup_logging, uvicorn_log_config

__all__ = ["CUT_SECONDS", "Drains", "serve"]

log = logging.getLogger("sluice.serve")

CUT_SECONDS = 2.0  # after the cut, for the error events to be written


@runtime_checkable
class Drains(Protocol):
    def drain(self) -> None:
        """The drain has begun: readiness turns 503; requests are still served."""

    def cut(self) -> Awaitable[None]:
        """The grace period is over: end what is still open, and return once it has."""


def serve(
    prog: str,
    make_app: Callable[[Settings], Any],
    default_address: Callable[[Settings], tuple[str, int]],
    *,
    argv: list[str] | None = None,
    parents: Sequence[argparse.ArgumentParser] = (),
    listen: Callable[[str, int], socket.socket] | None = None,
) -> None:
    """`parents`: more flags (argparse parents); `listen`: the socket to serve on,
    made from the host and port (by default uvicorn binds its own)."""
    parser = argparse.ArgumentParser(prog=prog, parents=list(parents))
    try:
        settings = Settings.from_env()
        host, port = default_address(settings)
        parser.add_argument("--host", default=host)
        parser.add_argument("--port", type=int, default=port)
        args = parser.parse_args(argv)
        setup_logging(settings.log_level, settings.log_format)
        app = make_app(settings)
    except ConfigError as exc:
        parser.exit(2, f"{prog}: {exc}\n")
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_format),
        loop="uvloop",
        http=limited_http(
            settings.header_timeout_seconds, settings.body_timeout_seconds, settings.max_connections
        ),
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # nothing reads the client's address
        server_header=False,
        timeout_graceful_shutdown=round(settings.drain_grace_seconds + CUT_SECONDS),
    )
    try:
        sockets = None if listen is None else [listen(args.host, args.port)]
    except OSError as exc:
        parser.exit(1, f"{prog}: cannot listen on {args.host}:{args.port}: {exc}\n")
    _DrainingServer(config, app, settings).run(sockets)


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: object, settings: Settings) -> None:
        super().__init__(config)
        self.app = app if isinstance(app, Drains) else None
        self.delay = settings.drain_delay_seconds
        self.grace = settings.drain_grace_seconds
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining: asyncio.Task[None] | None = None
        self.signalled = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Called in the signal handler: the first SIGTERM starts the drain on the loop."""
        if sig != signal.SIGTERM or self.signalled or self.loop is None or not self.started:
            super().handle_exit(sig, frame)
            return
        self.signalled = True
        self.loop.call_soon_threadsafe(self._start, sig)

    def _start(self, sig: int) -> None:
        self.draining = asyncio.create_task(self._drain(sig), name="sluice-drain")

    async def _drain(self, sig: int) -> None:
        log.info(
            "draining: not ready; serving for %g s more, then %g s for requests in flight",
            self.delay,
            self.grace,
        )
        if self.app is not None:
            self.app.drain()
        await asyncio.sleep(self.delay)
        super().handle_exit(sig, None)  # uvicorn stops accepting and waits for connections
        await asyncio.sleep(self.grace)
        if self.app is not None:
            log.info("drain grace period over: ending what is still open")
            await self.app.cut()
