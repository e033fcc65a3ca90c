"""OpenAI and every server that speaks its API (vLLM, llama.cpp, Azure-style proxies, …).

`base_url` includes the API's version path (`https://api.openai.com/v1`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from data_plane.providers.base import Adapter, Connection, UpstreamRequest
from data_plane.translate import openai_chat, openai_embeddings
from data_plane.translate.model import EmbeddingsRequest, Request
from data_plane.translate.upstream_errors import from_upstream
from shared.errors import GatewayError

__all__ = ["ADAPTER", "continuation_body", "error_from_upstream", "headers"]

_encode = msgspec.json.Encoder().encode


def headers(conn: Connection) -> dict[str, str]:
    out = {"content-type": "application/json", "accept-encoding": "identity"}
    if conn.secret:
        out["authorization"] = f"Bearer {conn.secret}"
    return out


def request(conn: Connection, upstream_model: str, req: Request) -> UpstreamRequest:
    body = openai_chat.write_request(req, upstream_model)
    return UpstreamRequest(f"{conn.base_url}/chat/completions", headers(conn), _encode(body))


def native_request(
    conn: Connection, upstream_model: str, body: dict[str, Any], stream: bool
) -> UpstreamRequest:
    """The client's own chat completions body, its model replaced (the caller's
    dict is left alone)."""
    if body.get("model") != upstream_model:
        body = {**body, "model": upstream_model}
    return UpstreamRequest(f"{conn.base_url}/chat/completions", headers(conn), _encode(body))


def embeddings_request(
    conn: Connection, upstream_model: str, req: EmbeddingsRequest
) -> UpstreamRequest:
    body = openai_embeddings.write_request(req, upstream_model)
    return UpstreamRequest(f"{conn.base_url}/embeddings", headers(conn), _encode(body))


def error_from_upstream(status: int, body: bytes, retry_after: float | None) -> GatewayError:
    return from_upstream(status, openai_chat.said(body), body, retry_after)


def continuation_body(body: dict[str, Any], text: str, streamed: int) -> dict[str, Any]:
    """The same request with the answer so far as a final assistant message, which
    servers such as vLLM continue (`continue_final_message`) instead of answering anew."""
    messages = body.get("messages")
    messages = list(messages) if isinstance(messages, list) else []
    out = {
        **body,
        "messages": [*messages, {"role": "assistant", "content": text}],
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    for name in ("max_completion_tokens", "max_tokens"):
        cap = out.get(name)
        if isinstance(cap, int) and not isinstance(cap, bool):
            out[name] = max(cap - streamed, 1)
    return out


ADAPTER = Adapter(
    wire="openai",
    request=request,
    response=openai_chat.read_response,
    stream_reader=openai_chat.Reader,
    error_from_upstream=error_from_upstream,
    native_request=native_request,
    embeddings_request=embeddings_request,
    embeddings_response=openai_embeddings.read_response,
    continuation_body=continuation_body,
    continues=False,
)
