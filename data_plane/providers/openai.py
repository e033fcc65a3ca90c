"""OpenAI and every server that speaks its API (vLLM, llama.cpp, Azure-style proxies, …)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from data_plane.providers.base import Adapter, UpstreamRequest
from shared.errors import GatewayError, UpstreamError, UpstreamRefused

__all__ = ["ADAPTER"]

log = logging.getLogger("sluice.data_plane.providers.openai")

_encode = msgspec.json.Encoder().encode
_MESSAGE_LIMIT = 500  # an upstream's message is cut here (it may quote the client's input)


class _Detail(msgspec.Struct):
    message: str | None = ""
    type: str | None = None
    param: str | None = None
    code: str | int | None = None
    innererror: dict[str, Any] | None = None  # Azure: e.g. the content filter's verdict


class _ErrorBody(msgspec.Struct):
    error: _Detail


def chat_request(
    base_url: str, api_key: str | None, upstream_model: str, body: dict[str, Any]
) -> UpstreamRequest:
    if body.get("model") != upstream_model:
        body = {**body, "model": upstream_model}
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return UpstreamRequest(f"{base_url}/chat/completions", headers, _encode(body))


def error_from_upstream(status: int, body: bytes, retry_after: float | None) -> GatewayError:
    """4xx keep the upstream's status, type, code and (shortened) message, except
    408/409/429 (the upstream's own load: a generic message, its Retry-After kept)
    and 401/403 (the gateway's credentials); 5xx become a generic 502. The
    upstream's words always go to the log (`detail`)."""
    try:
        detail = msgspec.json.decode(body, type=_ErrorBody).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        detail = _Detail(message=None)
    code = None if detail.code is None else str(detail.code)
    said = body[:_MESSAGE_LIMIT].decode("utf-8", "replace")
    if status in (401, 403):  # the gateway's provider key, not the client's, was refused
        error: GatewayError = UpstreamError(
            f"The upstream refused the gateway's credentials (HTTP {status}).",
            code="upstream_auth_failed",
        )
    elif status in (408, 409, 429):  # the upstream's own trouble (its words may name its account)
        error = UpstreamRefused(
            status,
            f"The upstream refused the request for now (HTTP {status}).",
            "upstream_error",
            "upstream_rate_limited" if status == 429 else "upstream_busy",
            None,
            retry_after=retry_after,
        )
    elif 400 <= status < 500:
        message = (detail.message or f"The upstream refused the request (HTTP {status}).")[
            :_MESSAGE_LIMIT
        ]
        if code == "content_filter":
            message = _with_filter_reason(message, detail.innererror)
        error = UpstreamRefused(
            status,
            message,
            detail.type or "invalid_request_error",
            code,
            detail.param,
            retry_after=retry_after,
        )
    else:
        error = UpstreamError(f"The upstream failed (HTTP {status}).", code="upstream_error")
        error.retry_after = retry_after
    error.detail = f"HTTP {status}: {said}"
    return error


def _with_filter_reason(message: str, inner: dict[str, Any] | None) -> str:
    """Azure's content filter names the categories it filtered in `innererror`."""
    result = (inner or {}).get("content_filter_result")
    if not isinstance(result, dict):
        return message
    filtered = [
        name
        for name, verdict in result.items()
        if isinstance(verdict, dict) and verdict.get("filtered") is True
    ]
    return f"{message} (filtered: {', '.join(filtered)})" if filtered else message


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
    chat_request=chat_request,
    error_from_upstream=error_from_upstream,
    continuation_body=continuation_body,
    continues=False,
)
