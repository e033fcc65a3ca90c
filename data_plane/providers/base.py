"""What every provider adapter provides: a few pure functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from shared.errors import GatewayError

__all__ = ["Adapter", "UpstreamRequest"]


class UpstreamRequest(NamedTuple):
    url: str
    headers: dict[str, str]
    body: bytes


class Adapter(NamedTuple):
    # (base_url, api_key, upstream_model, client body as parsed JSON) -> request
    chat_request: Callable[[str, str | None, str, dict[str, Any]], UpstreamRequest]
    # (status, body, Retry-After in seconds) of a failed upstream response -> the error
    error_from_upstream: Callable[[int, bytes, float | None], GatewayError]
    # (client body, the answer's text so far, content events so far) -> a body asking
    # the upstream to continue that answer
    continuation_body: Callable[[dict[str, Any], str, int], dict[str, Any]]
    # does this kind of upstream continue a final assistant message by default?
    continues: bool
