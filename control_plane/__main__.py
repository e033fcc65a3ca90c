"""`python -m control_plane [--host H] [--port P]`: the admin API under uvicorn.

On SIGTERM (`shared.serve`) `/readyz` answers 503 at once, here, in front of the
app; the admin requests in flight finish before the process exits.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from control_plane.app import create_app
from control_plane.body_deadline import BodyDeadline
from control_plane.console.live import live_of
from control_plane.errors import PROBLEM_JSON, ProblemDetails
from shared.config import Settings
from shared.serve import serve

__all__ = ["Draining", "main"]


_NOT_READY = msgspec.json.encode(
    ProblemDetails(
        type="about:blank",
        title="Service Unavailable",
        status=503,
        detail="The control plane is shutting down.",
        instance="/readyz",
    )
)


class Draining:
    """The app, with `/readyz` answering 503 once the drain has begun."""

    def __init__(self, app: ASGIApp, on_drain: Callable[[], None] | None = None) -> None:
        self.app = app
        self.draining = False
        self._on_drain = on_drain

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if self.draining and scope["type"] == ScopeType.HTTP and scope["path"] == "/readyz":
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", PROBLEM_JSON.encode())],
            }
            body: HTTPResponseBodyEvent = {
                "type": "http.response.body",
                "body": _NOT_READY,
                "more_body": False,
            }
            await send(start)
            await send(body)
            return
        await self.app(scope, receive, send)

    def drain(self) -> None:
        self.draining = True
        if self._on_drain is not None:
            self._on_drain()

    async def cut(self) -> None:
        """Admin requests are short; uvicorn cancels any still running."""


def _draining_app(settings: Settings) -> Draining:
    app = create_app(settings)

    def end_live_streams() -> None:  # the console's: their pages reconnect, elsewhere
        live_of(app).end_all()

    return Draining(BodyDeadline(app, settings.body_timeout_seconds), end_live_streams)


def main(argv: list[str] | None = None) -> None:
    serve(
        "sluice control-plane",
        _draining_app,
        lambda s: (s.control_plane_host, s.control_plane_port),
        argv=argv,
    )


if __name__ == "__main__":
    main()
