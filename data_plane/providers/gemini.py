"""Google's Gemini API (generativelanguage.googleapis.com), keyed by an API key."""

from __future__ import annotations

import msgspec

from data_plane.providers.base import Adapter, Connection, UpstreamRequest
from data_plane.translate import gemini, gemini_embeddings
from data_plane.translate.model import EmbeddingsRequest, Request
from data_plane.translate.upstream_errors import from_upstream
from shared.errors import GatewayError

__all__ = ["ADAPTER", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"  # the version included

_encode = msgspec.json.Encoder().encode


def _headers(conn: Connection) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    if conn.secret:
        headers["x-goog-api-key"] = conn.secret
    return headers


def _base(conn: Connection) -> str:
    return (conn.base_url or DEFAULT_BASE_URL).rstrip("/")


def request(conn: Connection, model: str, req: Request) -> UpstreamRequest:
    model = model.removeprefix("models/")
    body = _encode(gemini.write_request(req, model))
    if req.stream:
        url = f"{_base(conn)}/models/{model}:streamGenerateContent?alt=sse"
    else:
        url = f"{_base(conn)}/models/{model}:generateContent"
    return UpstreamRequest(url, _headers(conn), body)


def embeddings_request(conn: Connection, model: str, req: EmbeddingsRequest) -> UpstreamRequest:
    model = model.removeprefix("models/")
    body = _encode(gemini_embeddings.write_embeddings(req, model))
    return UpstreamRequest(f"{_base(conn)}/models/{model}:batchEmbedContents", _headers(conn), body)


def error_from_upstream(status: int, body: bytes, retry_after: float | None) -> GatewayError:
    return from_upstream(status, gemini.said(body), body, retry_after)


ADAPTER = Adapter(
    wire="gemini",
    request=request,
    response=gemini.read_response,
    stream_reader=gemini.Reader,
    error_from_upstream=error_from_upstream,
    embeddings_request=embeddings_request,
    embeddings_response=gemini_embeddings.read_embeddings,
)
