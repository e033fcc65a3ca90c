"""Errors in Anthropic's format: the gateway's errors for a client of the Anthropic
dialect, and an Anthropic upstream's error body read into `Said`.

Anthropic's body is `{"type": "error", "error": {"type", "message"}}`; the error
type follows the HTTP status (400 `invalid_request_error`, 401
`authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
`not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 504
`timeout_error`, 529 `overloaded_error`, other 5xx `api_error`; other 4xx
`invalid_request_error`). An overloaded upstream is Anthropic's own 529. The
body has no field for the parameter at fault, so it leads the message.
"""

from __future__ import annotations

import msgspec

from data_plane.translate.upstream_errors import Said
from shared.errors import GatewayError

__all__ = ["error_body", "error_event", "error_type", "said", "status"]

_encode = msgspec.json.Encoder().encode

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def status(exc: GatewayError) -> int:
    return 529 if exc.code == "upstream_overloaded" else exc.status


def error_type(status_code: int) -> str:
    kind = _TYPES.get(status_code)
    if kind is not None:
        return kind
    return "invalid_request_error" if status_code < 500 else "api_error"


def _message(exc: GatewayError) -> str:
    if exc.param and exc.param not in exc.message:
        return f"{exc.param}: {exc.message}"
    return exc.message


def _error(exc: GatewayError) -> bytes:
    detail = {"type": error_type(status(exc)), "message": _message(exc)}
    return _encode({"type": "error", "error": detail})


def error_body(exc: GatewayError) -> bytes:
    return _error(exc)


def error_event(exc: GatewayError) -> bytes:
    return b"event: error\ndata: " + _error(exc) + b"\n\n"


class _Detail(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class _Body(msgspec.Struct):
    error: _Detail | None = None


_decode = msgspec.json.Decoder(_Body).decode


def said(body: bytes) -> Said:
    """An Anthropic error body's message, and its type as the error's code (the
    type stays the gateway's own, which every dialect knows); nothing, if it is
    not one."""
    try:
        detail = _decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Said()
    if detail is None:
        return Said()
    return Said(message=detail.message, code=detail.type)
