"""What every upstream kind provides: a few pure functions and a stream reader.

An adapter writes requests for its kind's wire format and reads its answers into
the canonical model (`data_plane.translate.model`). When the client's dialect is
the adapter's own `wire`, the pipeline takes the fast path: the client's body is
sent as it is (`native_request`, the model replaced) and the answer relayed as
its bytes, read only for usage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from data_plane.translate.model import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    Event,
    Request,
    Response,
)
from shared.errors import GatewayError

__all__ = ["Adapter", "Connection", "StreamReader", "UpstreamRequest"]


class UpstreamRequest(NamedTuple):
    url: str
    headers: dict[str, str]
    body: bytes


class Connection(NamedTuple):
    """How to reach one provider: its base URL, its decrypted credential (an API
    key; for Bedrock, JSON of `access_key_id`, `secret_access_key` and optionally
    `session_token`) and its kind's settings (`api_version`, `region`, …)."""

    base_url: str
    secret: str | None
    options: Mapping[str, str]


class StreamReader(Protocol):
    """One upstream stream, read as it arrives: bytes (framing included) in,
    canonical events out. Malformed events are dropped and counted."""

    malformed: int

    def feed(self, chunk: bytes) -> list[Event]: ...


class Adapter(NamedTuple):
    # the dialect this kind speaks natively ("openai", "anthropic"), or its own name
    wire: str
    # (connection, upstream model, canonical request) -> the upstream request; stream
    # or not as `request.stream` says. BadRequest naming a field the kind cannot express.
    request: Callable[[Connection, str, Request], UpstreamRequest]
    # a whole answer's body -> the canonical response (UpstreamError
    # `upstream_malformed` if it cannot be read)
    response: Callable[[bytes], Response]
    # a reader for one stream
    stream_reader: Callable[[], StreamReader]
    # (status, body, Retry-After in seconds) of a failed upstream response -> the error
    error_from_upstream: Callable[[int, bytes, float | None], GatewayError]
    # the fast path: (connection, upstream model, the client's body in this kind's own
    # wire format, stream) -> the upstream request. None: the kind has no dialect of
    # its own on the inbound side (gemini, bedrock).
    native_request: Callable[[Connection, str, dict[str, Any], bool], UpstreamRequest] | None = None
    # embeddings; None: the kind serves none
    embeddings_request: Callable[[Connection, str, EmbeddingsRequest], UpstreamRequest] | None = (
        None
    )
    embeddings_response: Callable[[bytes], EmbeddingsResponse] | None = None
    # (client body, the answer's text so far, content events so far) -> a body asking
    # the upstream to continue that answer (the fast path only)
    continuation_body: Callable[[dict[str, Any], str, int], dict[str, Any]] | None = None
    # does this kind of upstream continue a final assistant message by default?
    continues: bool = False
