"""Limits on slow and idle clients, in uvicorn's httptools protocol.

uvicorn bounds only the keep-alive idle time. `limited_http` adds, per connection:
the header block of each request must be complete within `header_timeout` seconds of
its first byte (of the connection's opening, for the first request), else the
connection is closed, since no response can be sent before the headers are parsed; and
a connection past `max_connections` open ones is closed as soon as it is accepted.
The body's deadline is the app's, which can answer in its own error format (408); a
body that never starts never wakes the app, so the connection is also closed once the
body is not complete `body_timeout` (plus a margin that lets the app's 408 go first)
seconds after the headers.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["limited_http"]

log = logging.getLogger("sluice.serve")

_BODY_MARGIN = 1.0  # seconds after the app's own body deadline (its 408 goes first)
_BETWEEN, _HEADERS, _BODY = "between requests", "headers", "body"


class _LimitedHttp(HttpToolsProtocol):
    header_timeout = 10.0
    body_timeout = 30.0
    max_connections = 4096
    _header_timer: TimerHandle | None = None
    _body_timer: TimerHandle | None = None
    # where the request being read is: in its headers, in its body, or between requests
    _phase = _BETWEEN

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.debug("over %d open connections: closing a new one", self.max_connections)
            transport.abort()
            return
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_expired)

    def data_received(self, data: bytes) -> None:
        """Timers are set only for a part still incomplete once a chunk is parsed: a
        request that comes whole in one chunk, as most do, sets none."""
        super().data_received(data)
        if self._phase is _HEADERS:
            if self._header_timer is None:  # a later request on a kept-alive connection
                self._header_timer = self.loop.call_later(self.header_timeout, self._header_expired)
        elif self._phase is _BODY and self._body_timer is None:
            self._body_timer = self.loop.call_later(
                self.body_timeout + _BODY_MARGIN, self._body_expired
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._phase = _HEADERS
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _BETWEEN
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def _header_expired(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _body_expired(self) -> None:
        self._body_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def limited_http(
    header_timeout: float, body_timeout: float, max_connections: int
) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with these limits (for `uvicorn.Config(http=…)`)."""
    return type(
        "LimitedHttp",
        (_LimitedHttp,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_connections": max_connections,
        },
    )
