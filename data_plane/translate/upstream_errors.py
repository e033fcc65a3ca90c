"""What an upstream's failed response means for the client, decided in one place.

Each upstream kind reads its own error body into `Said` (its message, type, code
and parameter, whatever it names them); `from_upstream` applies the one policy:

- 401/403: the gateway's provider credentials were refused, not the client's:
  502 `upstream_auth_failed`.
- 408/409/429: the upstream's own load: a generic message (its words may name
  its account), its status and Retry-After kept; worth another attempt.
- 503 and 529 (Anthropic's "overloaded"): 503 `upstream_overloaded`, worth
  another attempt; a dialect with a status of its own for it (Anthropic's 529)
  renders it so.
- other 4xx: the client's request was refused: status, type, code, parameter
  and (shortened) message kept.
- other 5xx: 502 `upstream_error`, generic, worth another attempt.

The upstream's own words always go to the log (`detail`), never further.
"""

from __future__ import annotations

from typing import NamedTuple

from shared.errors import (
    BadRequest,
    GatewayError,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRefused,
)

__all__ = ["MESSAGE_LIMIT", "Said", "from_upstream", "malformed", "no_reasoning_effort"]

MESSAGE_LIMIT = 500  # an upstream's message is cut here (it may quote the client's input)


class Said(NamedTuple):
    """An upstream's error body, read by its kind (None where it said nothing)."""

    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None


def from_upstream(status: int, said: Said, body: bytes, retry_after: float | None) -> GatewayError:
    error: GatewayError
    if status in (401, 403):
        error = UpstreamError(
            f"The upstream refused the gateway's credentials (HTTP {status}).",
            code="upstream_auth_failed",
        )
    elif status in (408, 409, 429):
        error = UpstreamRefused(
            status,
            f"The upstream refused the request for now (HTTP {status}).",
            "upstream_error",
            "upstream_rate_limited" if status == 429 else "upstream_busy",
            None,
            retry_after=retry_after,
        )
    elif status in (503, 529):
        error = UpstreamOverloaded(
            f"The upstream is overloaded (HTTP {status}).", retry_after=retry_after
        )
    elif 400 <= status < 500:
        message = (said.message or f"The upstream refused the request (HTTP {status}).")[
            :MESSAGE_LIMIT
        ]
        error = UpstreamRefused(
            status,
            message,
            said.type or "invalid_request_error",
            said.code,
            said.param,
            retry_after=retry_after,
        )
    else:
        error = UpstreamError(f"The upstream failed (HTTP {status}).", code="upstream_error")
        error.retry_after = retry_after
    error.detail = f"HTTP {status}: {body[:MESSAGE_LIMIT].decode('utf-8', 'replace')}"
    return error


def malformed() -> UpstreamError:
    """An answer that cannot be read (worth another attempt)."""
    return UpstreamError("The upstream's answer was malformed.", code="upstream_malformed")


def no_reasoning_effort(effort: str | None) -> None:
    """Refuse a reasoning effort, for a kind that takes a thinking budget instead."""
    if effort is not None:
        raise BadRequest(
            "`reasoning_effort` is not supported by this model's upstream; "
            "set a thinking budget instead.",
            param="reasoning_effort",
        )
