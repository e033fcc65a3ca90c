"""The OpenAI adapter over recorded wire-format fixtures."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from data_plane.providers import azure_openai, openai
from data_plane.providers.base import Connection
from data_plane.translate.model import EmbeddingsRequest, Message, Request, Text
from shared.errors import UpstreamError, UpstreamOverloaded, UpstreamRefused, error_json

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
adapter = openai.ADAPTER
azure = azure_openai.ADAPTER
CONN = Connection("http://up:1/v1", "sk-up", {})
AZURE = Connection("https://res.openai.azure.com", "az-key", {"api_version": "2025-01-01"})
REQUEST = Request(model="public", messages=[Message("user", [Text("hi")])], stream=True)


def test_native_request_replaces_only_the_model() -> None:
    assert adapter.native_request is not None
    body = {"model": "public", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = adapter.native_request(CONN, "upstream-model", body, True)
    assert request.url == "http://up:1/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-up"
    assert request.headers["accept-encoding"] == "identity"
    assert msgspec.json.decode(request.body) == {**body, "model": "upstream-model"}
    assert body["model"] == "public"  # the caller's dict is left alone
    keyless = adapter.native_request(CONN._replace(secret=None), "m", body, True)
    assert "authorization" not in keyless.headers


def test_a_translated_request_goes_to_chat_completions() -> None:
    request = adapter.request(CONN, "upstream-model", REQUEST)
    assert request.url == "http://up:1/v1/chat/completions"
    assert msgspec.json.decode(request.body) == {
        "model": "upstream-model",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert adapter.embeddings_request is not None
    embeddings = adapter.embeddings_request(CONN, "emb", EmbeddingsRequest("public", ["a"]))
    assert embeddings.url == "http://up:1/v1/embeddings"
    assert msgspec.json.decode(embeddings.body) == {"model": "emb", "input": ["a"]}
    assert adapter.wire == "openai"
    assert adapter.embeddings_response is not None


def test_azure_addresses_the_deployment_with_its_api_key() -> None:
    request = azure.request(AZURE, "gpt4o-prod", REQUEST)
    assert request.url == (
        "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
        "?api-version=2025-01-01"
    )
    assert request.headers["api-key"] == "az-key"
    assert "authorization" not in request.headers
    assert "model" not in msgspec.json.decode(request.body)
    assert azure.native_request is not None
    body = {"model": "public", "messages": [{"role": "user", "content": "hi"}]}
    native = azure.native_request(AZURE._replace(options={}), "dep", body, False)
    assert native.url.endswith("/openai/deployments/dep/chat/completions?api-version=2024-10-21")
    assert msgspec.json.decode(native.body) == {"messages": body["messages"]}
    assert body["model"] == "public"
    assert azure.embeddings_request is not None
    embeddings = azure.embeddings_request(AZURE, "emb", EmbeddingsRequest("public", ["a"]))
    assert embeddings.url == (
        "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2025-01-01"
    )
    assert azure.wire == "openai"


def test_azure_content_filter_errors_name_the_categories() -> None:
    body = (FIXTURES.parent / "azure_openai" / "error_content_filter.json").read_bytes()
    exc = azure.error_from_upstream(400, body, None)
    assert (exc.status, exc.code, exc.param) == (400, "content_filter", "prompt")
    assert exc.message.endswith("(filtered: self_harm)")


def test_a_missing_model_passes_through_with_its_code() -> None:
    body = (FIXTURES / "error_model_not_found.json").read_bytes()
    exc = adapter.error_from_upstream(404, body, None)
    assert isinstance(exc, UpstreamRefused)
    assert (exc.status, exc.code, exc.type) == (404, "model_not_found", "invalid_request_error")


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
    exc = adapter.error_from_upstream(500, body, None)
    assert isinstance(exc, UpstreamError)
    assert exc.status == 502
    assert exc.retryable
    assert exc.message == "The upstream failed (HTTP 500)."
    assert b"internal" not in error_json(exc)
    assert exc.detail.startswith("HTTP 500")


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
    assert adapter.continuation_body is not None
    asked = adapter.continuation_body(body, "tok0 tok1", 2)
    assert asked["messages"][-1] == {"role": "assistant", "content": "tok0 tok1"}
    assert asked["messages"][:-1] == body["messages"]
    assert asked["continue_final_message"] is True
    assert asked["max_tokens"] == 48
    assert body["max_tokens"] == 50


def test_an_overloaded_upstream_is_worth_another_attempt() -> None:
    body = (FIXTURES / "error_server_error.json").read_bytes()
    exc = adapter.error_from_upstream(503, body, 3.0)
    assert isinstance(exc, UpstreamOverloaded)
    assert (exc.status, exc.code, exc.retry_after) == (503, "upstream_overloaded", 3.0)
    assert exc.retryable
    assert "Sorry about that" not in exc.message
