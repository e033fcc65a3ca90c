"""Anthropic's Messages API (`POST {base_url}/v1/messages`).

`base_url` is the host root (default `https://api.anthropic.com`); the option
`anthropic_version` sets the `anthropic-version` header (default `2023-06-01`).
No embeddings.
"""

from __future__ import annotations

from typing import Any

import msgspec

from data_plane.providers.base import Adapter, Connection, UpstreamRequest
from data_plane.translate.anthropic_errors import said
from data_plane.translate.anthropic_messages import read_response, write_request
from data_plane.translate.anthropic_stream import Reader
from data_plane.translate.model import Request
from data_plane.translate.upstream_errors import from_upstream

__all__ = ["ADAPTER", "DEFAULT_BASE_URL", "DEFAULT_VERSION"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"

_encode = msgspec.json.Encoder().encode


def _url(conn: Connection) -> str:
    base = (conn.base_url or DEFAULT_BASE_URL).rstrip("/")
    if base.endswith("/v1"):  # tolerate a base URL given with the version path
        base = base[:-3]
    return f"{base}/v1/messages"


def _headers(conn: Connection) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept-encoding": "identity",
        "anthropic-version": conn.options.get("anthropic_version") or DEFAULT_VERSION,
    }
    if conn.secret:
        headers["x-api-key"] = conn.secret
    return headers


def request(conn: Connection, upstream_model: str, req: Request) -> UpstreamRequest:
    return UpstreamRequest(_url(conn), _headers(conn), _encode(write_request(req, upstream_model)))


def native_request(
    conn: Connection, upstream_model: str, body: dict[str, Any], stream: bool
) -> UpstreamRequest:
    """The client's own Anthropic body, its model replaced (and `stream` as asked)."""
    body = {**body, "model": upstream_model}
    if stream:
        body["stream"] = True
    elif body.get("stream"):
        body["stream"] = False
    return UpstreamRequest(_url(conn), _headers(conn), _encode(body))


ADAPTER = Adapter(
    wire="anthropic",
    request=request,
    response=read_response,
    stream_reader=Reader,
    error_from_upstream=lambda status, body, retry_after: from_upstream(
        status, said(body), body, retry_after
    ),
    native_request=native_request,
)
