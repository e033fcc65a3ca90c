"""Anthropic's Messages format: whole answers both ways, errors, the adapter's requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message as SDKMessage
from anthropic.types.shared import ErrorResponse

from data_plane.providers.anthropic import ADAPTER
from data_plane.providers.base import Connection
from data_plane.translate import anthropic_errors as errors
from data_plane.translate.anthropic_messages import (
    read_request,
    read_response,
    write_response,
)
from data_plane.translate.model import (
    Response,
    Text,
    Thinking,
    ToolCall,
    Usage,
)
from data_plane.translate.upstream_errors import Said
from shared.errors import (
    BadRequest,
    BudgetExceeded,
    GatewayError,
    InternalError,
    NotFound,
    PayloadTooLarge,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRefused,
    UpstreamTimeout,
)
from tests.test_translate_anthropic_requests import minimal

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# -- whole answers ------------------------------------------------------------------


def test_read_response_fixture() -> None:
    resp = read_response((FIXTURES / "message.json").read_bytes())
    assert resp.id == "msg_01Aq9w938a90dw8q"
    assert resp.stop_reason == "tool_use"
    thinking, text, call = resp.content
    assert isinstance(thinking, Thinking)
    assert thinking.signature
    assert thinking.text.startswith("The user wants")
    assert text == Text("I'll check the current weather in San Francisco for you.")
    assert isinstance(call, ToolCall)
    assert json.loads(call.arguments) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert resp.usage == Usage(
        input_tokens=2095 + 1800, output_tokens=503, cached_input_tokens=1800
    )


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b"null", b'{"id": 5}', b'{"content": []}', b'{"id":"m","content":[{}]}'],
)
def test_read_response_malformed(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        read_response(body)
    assert caught.value.code == "upstream_malformed"


@pytest.mark.parametrize(
    ("wire", "canonical"),
    [
        ("end_turn", "end"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_use"),
        ("pause_turn", "end"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "max_tokens"),
        (None, "end"),
    ],
)
def test_stop_reasons(wire: str | None, canonical: str) -> None:
    body: dict[str, Any] = {"id": "msg_1", "content": [], "stop_reason": wire}
    assert read_response(json.dumps(body).encode()).stop_reason == canonical


def test_write_response_is_a_valid_message_and_round_trips() -> None:
    resp = read_response((FIXTURES / "message.json").read_bytes())
    body = write_response(resp, "public-model")
    message = SDKMessage.model_validate_json(body)
    assert message.model == "public-model"
    assert message.id == "msg_01Aq9w938a90dw8q"
    assert message.usage.input_tokens == 2095
    assert message.usage.cache_read_input_tokens == 1800
    again = read_response(body)
    assert again.content[:2] == resp.content[:2]
    assert json.loads(again.content[2].arguments) == json.loads(resp.content[2].arguments)  # type: ignore[union-attr]
    assert again.usage == resp.usage
    assert again.stop_reason == resp.stop_reason


def test_write_response_other_upstreams() -> None:
    resp = Response(
        id="chatcmpl-9",
        model="gpt",
        content=[Text("no"), Thinking("from elsewhere"), ToolCall("call_1", "f", "")],
        stop_reason="content_filter",
        usage=None,
    )
    message = SDKMessage.model_validate_json(write_response(resp, "pub"))
    assert message.id == "msg_chatcmpl-9"
    assert message.stop_reason == "refusal"
    assert message.usage.input_tokens == 0
    assert message.content[2].input == {}  # type: ignore[union-attr]
    with pytest.raises(UpstreamError):
        write_response(Response("x", "m", [ToolCall("c", "f", "{")]), "pub")


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        (BadRequest("no", param="messages[0].content[1].type"), 400, "invalid_request_error"),
        (NotFound("none"), 404, "not_found_error"),
        (PayloadTooLarge("big"), 413, "request_too_large"),
        (BudgetExceeded("spent"), 429, "rate_limit_error"),
        (UpstreamRefused(402, "pay", "billing_error", None, None), 402, "billing_error"),
        (UpstreamRefused(403, "no", "permission_error", None, None), 403, "permission_error"),
        (UpstreamRefused(422, "eh", "invalid_request_error", None, None), 422,
         "invalid_request_error"),
        (InternalError("oops"), 500, "api_error"),
        (UpstreamError("bad"), 502, "api_error"),
        (UpstreamOverloaded("busy"), 529, "overloaded_error"),
        (UpstreamTimeout("slow"), 504, "timeout_error"),
    ],
)  # fmt: skip
def test_error_body(exc: GatewayError, status: int, kind: str) -> None:
    assert errors.status(exc) == status
    body = json.loads(errors.error_body(exc))
    assert body == {"type": "error", "error": {"type": kind, "message": body["error"]["message"]}}
    assert exc.message in body["error"]["message"]
    if kind != "request_too_large":  # not in the SDK's union (see the fixtures' README)
        assert ErrorResponse.model_validate(body).error.type == kind
    event = errors.error_event(exc)
    assert event.startswith(b"event: error\ndata: ")
    assert event.endswith(b"\n\n")
    assert json.loads(event.split(b"data: ", 1)[1]) == body


def test_error_message_names_the_param() -> None:
    body = json.loads(
        errors.error_body(BadRequest("Unknown.", param="messages[0].content[0].type"))
    )
    assert body["error"]["message"] == "messages[0].content[0].type: Unknown."
    named = BadRequest("`top_k` is not supported.", param="top_k")
    assert json.loads(errors.error_body(named))["error"]["message"] == named.message


@pytest.mark.parametrize("status", [400, 401, 404, 413, 429, 500, 529])
def test_fixture_error_bodies(status: int) -> None:
    raw = (FIXTURES / f"error_{status}.json").read_bytes()
    said = errors.said(raw)
    body = json.loads(raw)
    assert said == Said(message=body["error"]["message"], code=body["error"]["type"])
    if status != 413:
        ErrorResponse.model_validate(body)


@pytest.mark.parametrize(
    "raw", [b"", b"<html>502</html>", b"[]", b'{"error": "x"}', b'{"error": {"type": 5}}', b"null"]
)
def test_said_tolerates_junk(raw: bytes) -> None:
    assert errors.said(raw) == Said()


def test_adapter_errors() -> None:
    read = ADAPTER.error_from_upstream
    bad = read(400, (FIXTURES / "error_400.json").read_bytes(), None)
    assert isinstance(bad, UpstreamRefused)
    assert (bad.status, bad.type, bad.message) == (
        400,
        "invalid_request_error",
        "max_tokens: Field required",
    )
    assert read(401, (FIXTURES / "error_401.json").read_bytes(), None).code == (
        "upstream_auth_failed"
    )
    overloaded = read(529, (FIXTURES / "error_529.json").read_bytes(), 3.0)
    assert isinstance(overloaded, UpstreamOverloaded)
    assert errors.status(overloaded) == 529
    assert "Overloaded" in overloaded.detail
    limited = read(429, (FIXTURES / "error_429.json").read_bytes(), 10.0)
    assert limited.retryable
    assert limited.retry_after == 10.0
    assert "50 input tokens" not in limited.message  # the upstream's account stays private
    assert read(500, b"junk", None).code == "upstream_error"


# -- the adapter's requests ------------------------------------------------------------


def test_adapter_requests() -> None:
    conn = Connection("https://api.anthropic.com/", "sk-ant-secret", {})
    req = read_request(minimal(stream=True))
    out = ADAPTER.request(conn, "claude-up", req)
    assert out.url == "https://api.anthropic.com/v1/messages"
    assert out.headers == {
        "content-type": "application/json",
        "accept-encoding": "identity",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant-secret",
    }
    sent = json.loads(out.body)
    assert sent["model"] == "claude-up"
    assert sent["stream"] is True
    assert ADAPTER.wire == "anthropic"
    assert ADAPTER.embeddings_request is None
    assert ADAPTER.continuation_body is None
    assert ADAPTER.native_request is not None
    custom = Connection("http://127.0.0.1:9/v1", None, {"anthropic_version": "2024-01-01"})
    body = fixture("request.json")
    native = ADAPTER.native_request(custom, "claude-up", body, False)
    assert native.url == "http://127.0.0.1:9/v1/messages"
    assert native.headers["anthropic-version"] == "2024-01-01"
    assert "x-api-key" not in native.headers
    sent = json.loads(native.body)
    assert sent == {**body, "model": "claude-up", "stream": False}
    assert body["model"] == "claude-sonnet-4-5"  # the client's body is left alone
    assert json.loads(ADAPTER.native_request(custom, "u", minimal(), True).body)["stream"] is True
    assert "stream" not in json.loads(ADAPTER.native_request(custom, "u", minimal(), False).body)
    assert ADAPTER.response((FIXTURES / "message.json").read_bytes()).id.startswith("msg_")
    assert ADAPTER.stream_reader().malformed == 0
