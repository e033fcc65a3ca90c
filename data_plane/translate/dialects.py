"""The inbound dialects, by the name an adapter's `wire` matches."""

from __future__ import annotations

from data_plane.translate import anthropic_errors, anthropic_messages, anthropic_stream, openai_chat
from data_plane.translate.dialect import Dialect
from shared.errors import GatewayError, error_event, error_json

__all__ = ["ANTHROPIC", "OPENAI"]


def _own_status(exc: GatewayError) -> int:
    return exc.status


OPENAI = Dialect(
    name="openai",
    request=openai_chat.read_request,
    response=openai_chat.write_response,
    stream_writer=openai_chat.Writer,
    error_body=error_json,
    error_event=error_event,
    status=_own_status,
)

ANTHROPIC = Dialect(
    name="anthropic",
    request=anthropic_messages.read_request,
    response=anthropic_messages.write_response,
    stream_writer=anthropic_stream.Writer,
    error_body=anthropic_errors.error_body,
    error_event=anthropic_errors.error_event,
    status=anthropic_errors.status,
)
