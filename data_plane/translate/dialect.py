"""What every inbound dialect (the API a client speaks) provides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from data_plane.translate.model import Event, Request, Response
from shared.errors import GatewayError

__all__ = ["Dialect", "StreamWriter"]


class StreamWriter(Protocol):
    """One stream to the client, written as canonical events arrive."""

    def write(self, events: list[Event]) -> bytes:
        """The bytes (framed) for these events; b"" if none are due yet."""
        ...

    def close(self) -> bytes:
        """The bytes that end a complete answer (OpenAI's `[DONE]`; Anthropic's
        `message_delta` and `message_stop` if not yet written)."""
        ...


class Dialect(NamedTuple):
    name: str  # "openai" | "anthropic": an adapter whose `wire` is this takes the fast path
    # the client's body (parsed JSON) -> the canonical request; BadRequest naming the
    # field (`param`) for anything wrong or not expressible
    request: Callable[[dict[str, Any]], Request]
    # (canonical response, the public model name) -> the client's body
    response: Callable[[Response, str], bytes]
    # (public model name, include usage in the stream) -> a writer for one stream
    stream_writer: Callable[[str, bool], StreamWriter]
    # an error as this dialect's body, and as its final stream event (framed)
    error_body: Callable[[GatewayError], bytes]
    error_event: Callable[[GatewayError], bytes]
    # the HTTP status this dialect uses for the error (Anthropic: 529 when overloaded)
    status: Callable[[GatewayError], int]
