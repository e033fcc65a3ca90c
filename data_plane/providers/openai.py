"""OpenAI and every server that speaks its API (vLLM, llama.cpp, Azure-style proxies, …)."""

from __future__ import annotations

from typing import Any

import msgspec

from data_plane.providers.base import Adapter, UpstreamRequest
from shared.errors import GatewayError, UpstreamError, UpstreamRefused

__all__ = ["ADAPTER"]

_encode = msgspec.json.Encoder().encode


class _Detail(msgspec.Struct):
    message: str = ""
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


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


def error_from_upstream(status: int, body: bytes) -> GatewayError:
    """Client errors keep the upstream's status and message; server errors become 502."""
    try:
        detail = msgspec.json.decode(body, type=_ErrorBody).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        detail = _Detail(message=body[:300].decode("utf-8", "replace"))
    code = None if detail.code is None else str(detail.code)
    if status in (401, 403):  # the gateway's provider key, not the client's, was refused
        return UpstreamError(
            f"the upstream refused the gateway's credentials ({status})",
            code="upstream_auth_failed",
        )
    if 400 <= status < 500:
        return UpstreamRefused(
            status,
            detail.message or f"the upstream refused the request ({status})",
            detail.type or "invalid_request_error",
            code,
            detail.param,
        )
    return UpstreamError(f"the upstream failed ({status}): {detail.message}".rstrip(": "))


ADAPTER = Adapter(chat_request=chat_request, error_from_upstream=error_from_upstream)
