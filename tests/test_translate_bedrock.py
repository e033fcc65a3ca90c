"""Bedrock's Converse API as an upstream kind: requests written and signed, answers
and event streams read, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from data_plane.providers import bedrock as provider
from data_plane.providers.base import Connection
from data_plane.translate import bedrock, bedrock_stream
from data_plane.translate.model import (
    BlockStart,
    BlockStop,
    Delta,
    Event,
    Finish,
    Image,
    Message,
    Request,
    Start,
    StreamError,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
    UsageEvent,
)
from data_plane.translate.upstream_errors import Said
from shared.errors import (
    BadRequest,
    GatewayError,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRefused,
)
from tests.fakes.eventstream_encode import encode_event, encode_exception

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CALL_ID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
SECRET = json.dumps({"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG"})
MODEL = "anthropic.claude-sonnet-4-20250514-v1:0"


def _request(**overrides: Any) -> Request:
    fields: dict[str, Any] = {
        "model": "public",
        "messages": [
            Message(
                "user",
                [
                    Text("What's the weather in Paris? Here is a photo."),
                    Image(media_type="image/png", data=PNG),
                ],
            ),
            Message(
                "assistant",
                [
                    Thinking("I should call the tool.", signature="EqoBCkgIARABGAIiQL2fWm6y"),
                    ToolCall(CALL_ID, "get_weather", '{"city": "Paris"}'),
                ],
            ),
            Message("user", [ToolResult(CALL_ID, [Text("18C, cloudy")])]),
        ],
        "system": [Text("You are a concise assistant.")],
        "max_tokens": 2048,
        "temperature": 1,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [WEATHER],
        "tool_choice": ToolChoice("auto"),
        "user": "end-user-7",
        "thinking_budget": 1024,
    }
    fields.update(overrides)
    return Request(**fields)


def _norm(events: list[Event]) -> list[Any]:
    return [
        (type(e.error).__name__, e.error.status, e.error.code, e.error.message)
        if isinstance(e, StreamError)
        else e
        for e in events
    ]


# -- requests ------------------------------------------------------------------------


def test_write_request_matches_the_documented_shape() -> None:
    expected = json.loads((FIXTURES / "converse_request.json").read_bytes())
    assert bedrock.write_request(_request(), MODEL) == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("required"), {"any": {}}),
        (ToolChoice("tool", "get_weather"), {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: ToolChoice, expected: dict[str, Any]) -> None:
    body = bedrock.write_request(_request(tool_choice=choice), MODEL)
    assert body["toolConfig"]["toolChoice"] == expected


def test_a_minimal_request_and_other_blocks() -> None:
    minimal = Request("m", [Message("user", [Text(""), Text("hi")])], system=[Text("")])
    body = bedrock.write_request(minimal, MODEL)  # blank text (refused by Converse) left out
    assert body == {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    messages = [
        Message("assistant", [Thinking(redacted="ZW5jcnlwdGVk"), ToolCall("c", "f", "")]),
        Message("user", [ToolResult("c", [Image(media_type="image/JPEG", data="AA==")], True)]),
    ]
    body = bedrock.write_request(Request("m", messages, tool_choice=ToolChoice("none")), MODEL)
    assert body["messages"][0]["content"] == [
        {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}},
        {"toolUse": {"toolUseId": "c", "name": "f", "input": {}}},
    ]
    assert body["messages"][1]["content"] == [
        {
            "toolResult": {
                "toolUseId": "c",
                "content": [{"image": {"format": "jpeg", "source": {"bytes": "AA=="}}}],
                "status": "error",
            }
        }
    ]
    assert "toolConfig" not in body


def _refused(req: Request) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        bedrock.write_request(req, MODEL)
    return caught.value


def test_refusals_name_the_field() -> None:
    url = Message("user", [Text("see"), Image(url="https://example.com/a.png")])
    error = _refused(Request("m", [url]))
    assert error.param == "messages[0].content[1]"
    assert "by URL" in error.message
    tiff = Message("user", [Image(media_type="image/tiff", data="AA==")])
    assert _refused(Request("m", [tiff])).param == "messages[0].content[0]"
    in_result = Message("user", [ToolResult("c", [Text("a"), Image(url="https://x/y.png")])])
    assert _refused(Request("m", [in_result])).param == "messages[0].content[0].content[1]"
    assert _refused(_request(reasoning_effort="low")).param == "reasoning_effort"
    assert _refused(_request(tool_choice=ToolChoice("none"))).param == "tool_choice"
    assert _refused(_request(tool_choice=ToolChoice("tool"))).param == "tool_choice"
    assert _refused(_request(tools=[], tool_choice=ToolChoice("required"))).param == "tool_choice"
    bad_args = [Message("assistant", [ToolCall("c", "f", "{nope")])]
    assert _refused(Request("m", bad_args)).param == "messages[0].content[0].arguments"


# -- whole answers -------------------------------------------------------------------


def test_read_response() -> None:
    resp = bedrock.read_response((FIXTURES / "converse_response.json").read_bytes())
    assert resp.content == [
        Thinking(
            "The user wants the weather; I should call the tool.",
            signature="EqoBCkgIARABGAIiQL2fWm6y",
        ),
        Text("Let me check the weather."),
        ToolCall(CALL_ID, "get_weather", '{"city":"Paris"}'),
    ]
    assert resp.stop_reason == "tool_use"
    # Converse's inputTokens leave out the cached ones; canonical input counts them
    assert resp.usage == Usage(input_tokens=1436, output_tokens=96, cached_input_tokens=1024)
    text = bedrock.read_response((FIXTURES / "converse_response_text.json").read_bytes())
    assert (text.stop_reason, text.usage) == ("end", Usage(input_tokens=30, output_tokens=11))


@pytest.mark.parametrize(
    ("reason", "stop"),
    [
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "end"),
    ],
)
def test_stop_reasons(reason: str, stop: str) -> None:
    body = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": reason}
    assert bedrock.read_response(msgspec.json.encode(body)).stop_reason == stop


@pytest.mark.parametrize(
    "body", [b"", b"<html>502</html>", b"[]", b"{}", b'{"output": {"message": {"content": 4}}}']
)
def test_junk_answers_are_malformed(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        bedrock.read_response(body)
    assert caught.value.code == "upstream_malformed"


# -- streams -------------------------------------------------------------------------

STREAM = (FIXTURES / "converse_stream.bin").read_bytes()
THROTTLED = (FIXTURES / "converse_stream_throttled.bin").read_bytes()


def test_stream_events() -> None:
    reader = bedrock_stream.Reader()
    assert reader.feed(STREAM) == [
        Start(),
        BlockStart(0, Thinking()),
        Delta(0, "thinking", "The user wants the weather in Paris; "),
        Delta(0, "thinking", "I should call the tool."),
        Delta(0, "signature", "EqoBCkgIARABGAIiQL2fWm6y"),
        BlockStop(0),
        BlockStart(1, Text("")),
        Delta(1, "text", "Let me check "),
        Delta(1, "text", "the weather — one moment."),
        BlockStop(1),
        BlockStart(2, ToolCall(CALL_ID, "get_weather")),
        Delta(2, "arguments", '{"city": "Pa'),
        Delta(2, "arguments", 'ris"}'),
        BlockStop(2),
        Finish("tool_use"),
        UsageEvent(Usage(input_tokens=1436, output_tokens=96, cached_input_tokens=1024)),
    ]
    assert reader.malformed == 0


@pytest.mark.parametrize("data", [STREAM, THROTTLED], ids=["stream", "throttled"])
def test_stream_split_at_every_byte_gives_the_same_events(data: bytes) -> None:
    whole = _norm(bedrock_stream.Reader().feed(data))
    for cut in range(len(data) + 1):
        reader = bedrock_stream.Reader()
        assert _norm(reader.feed(data[:cut]) + reader.feed(data[cut:])) == whole


def test_a_throttled_stream_ends_with_a_429() -> None:
    events = bedrock_stream.Reader().feed(THROTTLED)
    assert events[-2] == BlockStop(0)  # the open text block is closed first
    last = events[-1]
    assert isinstance(last, StreamError)
    assert isinstance(last.error, UpstreamRefused)
    assert (last.error.status, last.error.code) == (429, "upstream_rate_limited")
    assert last.error.retryable


@pytest.mark.parametrize(
    ("exception", "kind", "code"),
    [
        ("serviceUnavailableException", UpstreamOverloaded, "upstream_overloaded"),
        ("internalServerException", UpstreamError, "upstream_stream_error"),
        ("modelStreamErrorException", UpstreamError, "upstream_stream_error"),
        ("validationException", UpstreamError, "upstream_stream_error"),
    ],
)
def test_exception_frames(exception: str, kind: type[GatewayError], code: str) -> None:
    reader = bedrock_stream.Reader()
    events = reader.feed(encode_exception(exception, b'{"message": "it broke"}'))
    (event,) = events
    assert isinstance(event, StreamError)
    assert type(event.error) is kind
    assert event.error.code == code
    assert "it broke" in event.error.detail
    assert reader.feed(STREAM) == []  # the stream ended there


def test_a_corrupt_frame_ends_the_stream_as_malformed() -> None:
    start = encode_event("messageStart", b'{"role":"assistant"}')
    delta = bytearray(encode_event("contentBlockDelta", b'{"delta":{"text":"hi"}}'))
    delta[-6] ^= 0xFF
    reader = bedrock_stream.Reader()
    events = reader.feed(start + bytes(delta))
    assert events[0] == Start()
    last = events[-1]
    assert isinstance(last, StreamError)
    assert last.error.code == "upstream_malformed"
    assert reader.malformed == 1
    assert reader.feed(STREAM) == []


def test_unreadable_payloads_are_counted_and_skipped() -> None:
    reader = bedrock_stream.Reader()
    events = reader.feed(encode_event("contentBlockDelta", b"{not json"))
    events += reader.feed(encode_event("contentBlockDelta", b'{"contentBlockIndex": 0}'))
    events += reader.feed(encode_event("someFutureEvent", b"{}"))
    events += reader.feed(STREAM)
    assert reader.malformed == 2
    assert events == bedrock_stream.Reader().feed(STREAM)


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "kind", "code"),
    [
        ("error_validation_400.json", 400, UpstreamRefused, None),
        ("error_access_denied_403.json", 403, UpstreamError, "upstream_auth_failed"),
        ("error_not_found_404.json", 404, UpstreamRefused, None),
        ("error_throttling_429.json", 429, UpstreamRefused, "upstream_rate_limited"),
        ("error_internal_500.json", 500, UpstreamError, "upstream_error"),
        ("error_service_unavailable_503.json", 503, UpstreamOverloaded, "upstream_overloaded"),
    ],
)
def test_error_from_upstream(
    name: str, status: int, kind: type[GatewayError], code: str | None
) -> None:
    body = (FIXTURES / name).read_bytes()
    error = provider.ADAPTER.error_from_upstream(status, body, 3.0)
    assert type(error) is kind
    assert error.code == code
    if status in (400, 404):
        assert error.message == json.loads(body)["message"]


def test_said_is_tolerant() -> None:
    assert bedrock.said(b'{"Message": "capitalised"}') == Said(message="capitalised")
    for junk in (b"", b"[]", b"<html/>", b'{"message": 5}'):
        assert bedrock.said(junk) == Said()


# -- the adapter: URL, headers, SigV4 --------------------------------------------------


def _boto_authorization(
    url: str, headers: dict[str, str], body: bytes, region: str, stamp: str, token: str | None
) -> str:
    """botocore's SigV4 over the same request at the same time."""
    creds = BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token)
    unsigned = {
        k: v
        for k, v in headers.items()
        if k not in ("authorization", "x-amz-date", "x-amz-security-token")
    }
    request = AWSRequest(method="POST", url=url, data=body, headers=unsigned)
    auth = SigV4Auth(creds, "bedrock", region)
    request.context["timestamp"] = stamp
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    auth._inject_signature_to_request(request, signature)
    assert request.headers["X-Amz-Date"] == stamp
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDtoken"])
def test_sigv4_verifies_as_a_server_would(token: str | None) -> None:
    """The signature, recomputed from what is sent (URL, headers, body, at the request's
    own X-Amz-Date), is the one the request carries."""
    creds = provider.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token)
    body = msgspec.json.encode(bedrock.write_request(_request(), MODEL))
    for model in (MODEL, "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.x-v1:0"):
        url = f"https://bedrock-runtime.us-west-2.amazonaws.com/model/{model}/converse-stream"
        url = url.replace(model, quote(model, safe=""))
        headers = {"content-type": "application/json", "accept": "application/json"}
        signed = provider.sign("POST", url, headers, body, creds, "us-west-2")
        stamp = signed.headers["x-amz-date"]
        assert (signed.headers.get("x-amz-security-token")) == token
        authorization = signed.headers["authorization"]
        signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        assert {"host", "x-amz-date", "content-type"} <= set(signed_names)
        expected = _boto_authorization(signed.url, signed.headers, body, "us-west-2", stamp, token)
        assert authorization == expected


def test_request_url_headers_and_body() -> None:
    conn = Connection("", SECRET, {"region": "eu-central-1"})
    req = provider.ADAPTER.request(conn, MODEL, _request(stream=True))
    # the path as the HTTP client sends it (its `:` unescaped), and signed so
    assert req.url == (
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/"
        "anthropic.claude-sonnet-4-20250514-v1:0/converse-stream"
    )
    assert req.headers["accept"] == "application/vnd.amazon.eventstream"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-central-1/bedrock/aws4_request" in req.headers["authorization"]
    assert "x-amz-security-token" not in req.headers
    assert msgspec.json.decode(req.body) == bedrock.write_request(_request(), MODEL)
    local = Connection("http://127.0.0.1:8123/", SECRET, {"region": "us-east-1"})
    whole = provider.ADAPTER.request(local, "amazon.nova-lite-v1:0", _request())
    assert whole.url == "http://127.0.0.1:8123/model/amazon.nova-lite-v1:0/converse"
    assert provider.ADAPTER.wire == "bedrock"


@pytest.mark.parametrize(
    "secret",
    [
        None,
        "",
        "not json",
        "[]",
        '{"access_key_id": "A"}',
        '{"access_key_id": "", "secret_access_key": "s"}',
    ],
)
def test_bad_credentials_are_no_provider(secret: str | None) -> None:
    with pytest.raises(UpstreamError) as caught:
        provider.ADAPTER.request(Connection("", secret, {"region": "us-east-1"}), MODEL, _request())
    assert caught.value.code == "no_provider"
    assert "access_key_id" in caught.value.message


def test_a_missing_region_is_no_provider() -> None:
    with pytest.raises(UpstreamError) as caught:
        provider.ADAPTER.request(Connection("", SECRET, {}), MODEL, _request())
    assert caught.value.code == "no_provider"
