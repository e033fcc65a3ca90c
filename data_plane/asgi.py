"""Small ASGI helpers: headers, request bodies, whole responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from data_plane.translate.dialect import Dialect
from shared.errors import GatewayError, PayloadTooLarge

__all__ = [
    "JSON",
    "Receive",
    "Responder",
    "Scope",
    "Send",
    "header",
    "read_body",
    "send_error",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = (b"content-type", b"application/json")


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header `name` (lower-case bytes), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; `PayloadTooLarge` past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...] = (JSON,),
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


class Responder:
    """Wraps `send` and remembers whether the response has started."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def send_error(out: Responder, exc: GatewayError, dialect: Dialect) -> None:
    """The one way an error reaches a client: an error body in the client's dialect,
    or, once the response has started (a stream), that dialect's final error event."""
    if out.started:
        body = dialect.error_event(exc)
        await out({"type": "http.response.body", "body": body, "more_body": False})
    else:
        body = dialect.error_body(exc)
        await send_response(out, dialect.status(exc), body, (JSON, *exc.headers))
