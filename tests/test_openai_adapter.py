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


def test_rate_limit_passes_through_with_its_status_and_code() -> None:
    exc = adapter.error_from_upstream(429, (FIXTURES / "error_rate_limit.json").read_bytes())
    assert isinstance(exc, UpstreamRefused)
    assert (exc.status, exc.type, exc.code) == (429, "requests", "rate_limit_exceeded")
    assert exc.message.startswith("Rate limit reached")


def test_upstream_rejecting_our_credentials_is_a_gateway_error() -> None:
    body = (FIXTURES / "error_invalid_api_key.json").read_bytes()
    exc = adapter.error_from_upstream(401, body)
    assert isinstance(exc, UpstreamError)
    assert (exc.status, exc.code) == (502, "upstream_auth_failed")
    assert b"sk-proj" not in error_json(exc)  # the upstream's message about our key stays here


def test_a_client_error_without_a_code_keeps_code_null() -> None:
    body = b'{"error": {"message": "messages is required", "type": "invalid_request_error"}}'
    exc = adapter.error_from_upstream(400, body)
    assert (exc.status, exc.code, exc.message) == (400, None, "messages is required")


@pytest.mark.parametrize("body", [b"", b"<html>bad gateway</html>", b'{"error": 3}'])
def test_server_errors_and_unreadable_bodies(body: bytes) -> None:
    exc = adapter.error_from_upstream(503, body)
    assert isinstance(exc, UpstreamError)
    assert exc.status == 502
