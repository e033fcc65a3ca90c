"""Small ASGI helpers: headers, request bodies, whole responses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from data_plane.translate.dialect import Dialect
from shared.errors import GatewayError, PayloadTooLarge, RequestTimeout

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


async def read_body(receive: Receive, limit: int, within: float) -> bytes:
    """The whole request body; `PayloadTooLarge` past `limit` bytes, `RequestTimeout`
    when the rest of it takes longer than `within` seconds to arrive. Most bodies
    come whole in the first message, and no timer is set for them."""
    message = await receive()
    chunk = _chunk(message, 0, limit)
    if not message.get("more_body", False):
        return chunk
    chunks = [chunk]
    size = len(chunk)
    try:
        async with asyncio.timeout(within):
            while True:
                message = await receive()
                chunk = _chunk(message, size, limit)
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {within:g} s") from None


def _chunk(message: Message, size: int, limit: int) -> bytes:
    if message["type"] == "http.disconnect":
        raise ConnectionResetError("client went away while sending the body")
    chunk: bytes = message.get("body", b"")
    if size + len(chunk) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    return chunk


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
