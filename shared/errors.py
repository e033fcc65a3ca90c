"""The gateway's error tree, and the one place that renders it in OpenAI's format.

Every error a client can get from the data plane is one of these. Each carries
its HTTP status, OpenAI error `type` and `code`. `error_json` renders the body
`{"error": {"message", "type", "param", "code"}}`; `error_event` renders the same
as a final SSE event, for errors after a stream has started.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "BudgetExceeded",
    "GatewayError",
    "InternalError",
    "MethodNotAllowed",
    "ModelNotAllowed",
    "ModelNotFound",
    "NoDeployment",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "ServiceUnavailable",
    "UpstreamError",
    "UpstreamOverloaded",
    "UpstreamRefused",
    "UpstreamTimeout",
    "echo",
    "error_event",
    "error_json",
]


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = "internal_error"
    # for upstream failures: may another attempt (on this or another deployment)
    # succeed, and how long the upstream asked us to wait
    retryable: bool = False
    retry_after: float | None = None
    detail: str = ""  # what the logs get and the client does not (an upstream's own words)

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers


class InternalError(GatewayError):
    """A bug of ours; the details go to the log, not to the client."""


class UpstreamRefused(GatewayError):
    """An upstream 4xx that the client should see as it was (status, type, code, message).
    408, 409 and 429 are worth another attempt; the rest would fail the same anywhere."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None,
        param: str | None,
        retry_after: float | None = None,
    ) -> None:
        headers: tuple[tuple[bytes, bytes], ...] = ()
        if retry_after is not None:
            headers = ((b"retry-after", b"%d" % max(round(retry_after), 1)),)
        super().__init__(message, param=param, headers=headers)
        self.status, self.type, self.code = status, type_, code
        self.retryable = status in (408, 409, 429)
        self.retry_after = retry_after


class BadRequest(GatewayError):
    status, type, code = 400, "invalid_request_error", None


class AuthenticationError(GatewayError):
    status, type, code = 401, "invalid_request_error", "invalid_api_key"


class ModelNotAllowed(GatewayError):
    status, type, code = 403, "invalid_request_error", "model_not_allowed"


class NotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class ModelNotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "model_not_found"


class MethodNotAllowed(GatewayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class RequestTimeout(GatewayError):
    """The client did not send the whole body in time; the connection then closes."""

    status, type, code = 408, "invalid_request_error", "request_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers=((b"connection", b"close"),))


class RateLimited(GatewayError):
    """Over a rate, token or concurrency limit; carries Retry-After."""

    status, type, code = 429, "requests", "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retry_after: int,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(
            message, code=code, headers=((b"retry-after", str(retry_after).encode()), *headers)
        )


class BudgetExceeded(GatewayError):
    status, type, code = 429, "insufficient_quota", "budget_exceeded"


class UpstreamError(GatewayError):
    """The upstream failed: a 5xx, a transport failure, a malformed answer. `code`
    names what happened (upstream_connect_error, upstream_reset, upstream_malformed,
    upstream_incomplete, …); the message the tenant sees is generic."""

    status, type, code = 502, "upstream_error", "upstream_error"
    retryable = True


class UpstreamOverloaded(GatewayError):
    """The upstream said it is overloaded (HTTP 503, or Anthropic's 529); worth
    another attempt. Anthropic's dialect renders it as its own 529."""

    status, type, code = 503, "upstream_error", "upstream_overloaded"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        headers: tuple[tuple[bytes, bytes], ...] = ()
        if retry_after is not None:
            headers = ((b"retry-after", b"%d" % max(round(retry_after), 1)),)
        super().__init__(message, headers=headers)
        self.retry_after = retry_after


class ServiceUnavailable(GatewayError):
    status, type, code = 503, "server_error", "service_unavailable"


class UpstreamTimeout(GatewayError):
    status, type, code = 504, "upstream_error", "upstream_timeout"
    retryable = True


class NoDeployment(GatewayError):
    """Every deployment of the route is out of rotation (open circuit, or waiting out
    a Retry-After) for longer than the request may wait."""

    status, type, code = 503, "upstream_error", "no_deployment_available"


def echo(value: str, limit: int = 64) -> str:
    """A client-supplied value as an error message may quote it: a short prefix."""
    return value if len(value) <= limit else value[:limit] + "…"


class _Detail(msgspec.Struct, omit_defaults=False):
    message: str
    type: str
    param: str | None
    code: str | None


class _Body(msgspec.Struct):
    error: _Detail


_encode = msgspec.json.Encoder().encode


def error_json(exc: GatewayError) -> bytes:
    return _encode(_Body(_Detail(exc.message, exc.type, exc.param, exc.code)))


def error_event(exc: GatewayError) -> bytes:
    return b"data: " + error_json(exc) + b"\n\n"
