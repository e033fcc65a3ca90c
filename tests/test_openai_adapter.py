"""The OpenAI adapter over recorded wire-format fixtures."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from data_plane.providers import ADAPTERS
from shared.errors import UpstreamError, UpstreamRefused, error_json

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
adapter = ADAPTERS["openai"]


def test_chat_request_replaces_only_the_model() -> None:
    body = {"model": "public", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = adapter.chat_request("http://up:1/v1", "sk-up", "upstream-model", body)
    assert request.url == "http://up:1/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-up"
    assert msgspec.json.decode(request.body) == {**body, "model": "upstream-model"}
    assert body["model"] == "public"  # the caller's dict is left alone
    keyless = adapter.chat_request("http://up:1/v1", None, "m", body)
    assert "authorization" not in keyless.headers


def test_rate_limit_passes_through_with_its_status_and_retry_after() -> None:
    body = (FIXTURES / "error_rate_limit.json").read_bytes()
    exc = adapter.error_from_upstream(429, body, 2.0)
    assert isinstance(exc, UpstreamRefused)
    assert (exc.status, exc.type, exc.code) == (429, "upstream_error", "upstream_rate_limited")
    # the upstream's words name its account and organisation: the log gets them, not the tenant
    assert "Rate limit reached" not in exc.message
    assert "Rate limit reached" in exc.detail
    assert exc.retryable
    assert exc.retry_after == 2.0
    assert (b"retry-after", b"2") in exc.headers  # passed on when the client gets the 429


def test_upstream_rejecting_our_credentials_is_a_gateway_error() -> None:
    body = (FIXTURES / "error_invalid_api_key.json").read_bytes()
    exc = adapter.error_from_upstream(401, body, None)
    assert isinstance(exc, UpstreamError)
    assert (exc.status, exc.code) == (502, "upstream_auth_failed")
    assert b"sk-proj" not in error_json(exc)  # the upstream's message about our key stays here


def test_a_client_error_without_a_code_keeps_code_null() -> None:
    body = b'{"error": {"message": "messages is required", "type": "invalid_request_error"}}'
    exc = adapter.error_from_upstream(400, body, None)
    assert (exc.status, exc.code, exc.message) == (400, None, "messages is required")
    assert not exc.retryable  # it would fail the same everywhere


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>bad gateway at internal-lb-7.corp</html>",
        b'{"error": 3}',
        b'{"error": {"message": "db-3.internal down"}}',
    ],
)
def test_server_errors_are_generic_for_the_client_and_detailed_for_the_log(body: bytes) -> None:
    exc = adapter.error_from_upstream(503, body, None)
    assert isinstance(exc, UpstreamError)
    assert exc.status == 502
    assert exc.retryable
    assert exc.message == "The upstream failed (HTTP 503)."
    assert b"internal" not in error_json(exc)
    assert exc.detail.startswith("HTTP 503")


def test_context_length_and_content_filter_keep_their_codes() -> None:
    body = (FIXTURES / "error_context_length_exceeded.json").read_bytes()
    exc = adapter.error_from_upstream(400, body, None)
    assert (exc.status, exc.code, exc.param) == (400, "context_length_exceeded", "messages")
    assert not exc.retryable
    body = (FIXTURES / "error_azure_content_filter.json").read_bytes()
    exc = adapter.error_from_upstream(400, body, None)
    assert (exc.status, exc.code) == (400, "content_filter")
    assert "(filtered: " in exc.message  # the reason reaches the client
    assert not exc.retryable


def test_a_continuation_asks_to_continue_the_final_assistant_message() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "go"}], "max_tokens": 50}
    asked = adapter.continuation_body(body, "tok0 tok1", 2)
    assert asked["messages"][-1] == {"role": "assistant", "content": "tok0 tok1"}
    assert asked["messages"][:-1] == body["messages"]
    assert asked["continue_final_message"] is True
    assert asked["max_tokens"] == 48
    assert body["max_tokens"] == 50
