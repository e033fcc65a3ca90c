"""Gemini as an upstream kind: requests written, answers and streams read, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from data_plane.providers import gemini as provider
from data_plane.providers.base import Connection
from data_plane.translate import gemini, gemini_embeddings
from data_plane.translate.model import (
    BlockStart,
    BlockStop,
    Delta,
    EmbeddingsRequest,
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

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
WEATHER = Tool(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


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
                    Thinking("I should call the tool.", signature="sig"),
                    ToolCall("call_0", "get_weather", '{"city": "Paris"}'),
                ],
            ),
            Message("user", [ToolResult("call_0", [Text("18C, cloudy")])]),
        ],
        "system": [Text("You are a concise assistant.")],
        "max_tokens": 1024,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [WEATHER],
        "tool_choice": ToolChoice("auto", parallel=False),
        "user": "end-user-7",
        "thinking_budget": 512,
    }
    fields.update(overrides)
    return Request(**fields)


def _norm(events: list[Event]) -> list[Any]:
    """Events comparable by value (an error by its kind, status, code and message)."""
    return [
        (type(e.error).__name__, e.error.status, e.error.code, e.error.message)
        if isinstance(e, StreamError)
        else e
        for e in events
    ]


# -- requests ------------------------------------------------------------------------


def test_write_request_matches_the_documented_shape() -> None:
    # thinking in the history is dropped; `user` and `parallel` have no Gemini field
    assert gemini.write_request(_request(), "gemini-2.5-flash") == _fixture(
        "generate_content_request.json"
    )


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (
            ToolChoice("tool", "get_weather"),
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: ToolChoice, expected: dict[str, Any]) -> None:
    body = gemini.write_request(_request(tool_choice=choice), "m")
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_a_minimal_request_sends_only_contents() -> None:
    body = gemini.write_request(Request("m", [Message("user", [Text("hi")])]), "m")
    assert body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_an_error_result_and_a_message_left_empty() -> None:
    messages = [
        Message("user", [Text("go")]),
        Message("assistant", [Thinking("only thoughts")]),
        Message("assistant", [ToolCall("c1", "run", "")]),
        Message("user", [ToolResult("c1", [Text("boom")], is_error=True)]),
    ]
    contents = gemini.write_request(Request("m", messages), "m")["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "run", "args": {}, "id": "c1"}}]
    assert contents[2]["parts"][0]["functionResponse"]["response"] == {"error": "boom"}


def _refused(req: Request) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        gemini.write_request(req, "m")
    return caught.value


def test_refusals_name_the_field() -> None:
    url = Message("user", [Text("see"), Image(url="https://example.com/a.png")])
    error = _refused(Request("m", [url]))
    assert error.param == "messages[0].content[1]"
    assert "by URL" in error.message
    untyped = Message("user", [Image(data=PNG)])
    assert _refused(Request("m", [untyped])).param == "messages[0].content[0]"
    assert _refused(_request(reasoning_effort="high")).param == "reasoning_effort"
    bad_args = [Message("assistant", [ToolCall("c", "f", "{nope")])]
    assert _refused(Request("m", bad_args)).param == "messages[0].content[0].arguments"
    not_object = [Message("assistant", [ToolCall("c", "f", "[1]")])]
    assert _refused(Request("m", not_object)).param == "messages[0].content[0].arguments"
    orphan = [Message("user", [Text("x"), ToolResult("nobody", [Text("r")])])]
    assert _refused(Request("m", orphan)).param == "messages[0].content[1].call_id"
    pictured = [
        Message("assistant", [ToolCall("c", "f", "{}")]),
        Message("user", [ToolResult("c", [Text("a"), Image(media_type="image/png", data=PNG)])]),
    ]
    assert _refused(Request("m", pictured)).param == "messages[1].content[0].content[1]"
    assert _refused(_request(tool_choice=ToolChoice("tool"))).param == "tool_choice"


# -- whole answers -------------------------------------------------------------------


def test_read_response_with_thoughts_and_cached_tokens() -> None:
    resp = gemini.read_response((FIXTURES / "generate_content.json").read_bytes())
    assert resp.id == "mD1aaMeqJ5KxnvgPq4Ce0Qc"
    assert resp.model == "gemini-2.5-flash"
    assert resp.content == [
        Thinking("The user wants the weather; I have the tool result."),
        Text("It is 18°C and cloudy in Paris."),
    ]
    assert resp.stop_reason == "end"
    assert resp.usage == Usage(
        input_tokens=120, output_tokens=52, cached_input_tokens=64, reasoning_tokens=40
    )


def test_function_calls_get_ids_and_stop_for_tool_use() -> None:
    resp = gemini.read_response((FIXTURES / "generate_content_function_call.json").read_bytes())
    assert resp.content == [
        ToolCall("call_0", "get_weather", '{"city":"Paris"}'),
        ToolCall("call_1", "get_weather", '{"city":"Lyon"}'),
    ]
    assert resp.stop_reason == "tool_use"


def test_a_blocked_prompt_is_a_content_filter_stop() -> None:
    resp = gemini.read_response((FIXTURES / "generate_content_blocked.json").read_bytes())
    assert (resp.content, resp.stop_reason) == ([], "content_filter")


@pytest.mark.parametrize(
    ("reason", "stop"),
    [("MAX_TOKENS", "max_tokens"), ("SAFETY", "content_filter"), ("OTHER", "end")],
)
def test_finish_reasons(reason: str, stop: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert gemini.read_response(msgspec.json.encode(body)).stop_reason == stop


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>502</html>", b"[]", b'{"candidates": 5}', b'{"candidates": [{"content": 1}]}'],
)
def test_junk_answers_are_malformed(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        gemini.read_response(body)
    assert caught.value.code == "upstream_malformed"


# -- streams -------------------------------------------------------------------------

STREAM = (FIXTURES / "stream_generate_content.sse").read_bytes()


def test_stream_events() -> None:
    reader = gemini.Reader()
    events = reader.feed(STREAM)
    # the chunks before the last count the prompt alone: told once, up front, and
    # never as an answer of no tokens
    prompt = Usage(input_tokens=95)
    assert events == [
        Start("pD1aaNm3LpKxnvgP-4Ce0Qc", "gemini-2.5-flash", prompt),
        BlockStart(0, Thinking()),
        Delta(0, "thinking", "**Checking the weather**\n\nThe user asks about Paris."),
        BlockStop(0),
        BlockStart(1, Text("")),
        Delta(1, "text", "Let me look that up"),
        Delta(1, "text", " for you — one moment."),
        BlockStop(1),
        BlockStart(2, ToolCall("call_0", "get_weather")),
        Delta(2, "arguments", '{"city":"Paris","unit":"celsius"}'),
        BlockStop(2),
        Finish("tool_use"),
        UsageEvent(Usage(input_tokens=95, output_tokens=63, reasoning_tokens=32)),
    ]
    assert reader.malformed == 0


@pytest.mark.parametrize(
    "name", ["stream_generate_content.sse", "stream_generate_content_error.sse"]
)
def test_stream_split_at_every_byte_gives_the_same_events(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    whole = _norm(gemini.Reader().feed(data))
    for cut in range(len(data) + 1):
        reader = gemini.Reader()
        assert _norm(reader.feed(data[:cut]) + reader.feed(data[cut:])) == whole


def test_an_error_event_ends_the_stream() -> None:
    events = gemini.Reader().feed((FIXTURES / "stream_generate_content_error.sse").read_bytes())
    assert isinstance(events[-2], BlockStop)
    last = events[-1]
    assert isinstance(last, StreamError)
    assert isinstance(last.error, UpstreamOverloaded)
    assert "overloaded" in last.error.detail


def test_a_malformed_event_is_counted_and_skipped() -> None:
    reader = gemini.Reader()
    events = reader.feed(b'data: {"candidates": [{"cont\n\ndata: {"candidates": 7}\n\n')
    events += reader.feed(STREAM)
    assert reader.malformed == 2
    assert _norm(events) == _norm(gemini.Reader().feed(STREAM))


# -- errors --------------------------------------------------------------------------


def test_said_reads_the_status_and_message() -> None:
    said = gemini.said((FIXTURES / "error_429.json").read_bytes())
    assert said.code == "RESOURCE_EXHAUSTED"
    assert (said.message or "").startswith("You exceeded")
    listed = gemini.said(b'[{"error": {"code": 400, "message": "bad", "status": "X"}}]')
    assert (listed.message, listed.code) == ("bad", "X")
    for junk in (b"", b"[]", b"nope", b'{"error": 3}'):
        assert gemini.said(junk) == Said()


@pytest.mark.parametrize(
    ("name", "status", "kind", "code"),
    [
        ("error_400.json", 400, UpstreamRefused, "INVALID_ARGUMENT"),
        ("error_403.json", 403, UpstreamError, "upstream_auth_failed"),
        ("error_404.json", 404, UpstreamRefused, "NOT_FOUND"),
        ("error_429.json", 429, UpstreamRefused, "upstream_rate_limited"),
        ("error_500.json", 500, UpstreamError, "upstream_error"),
        ("error_503.json", 503, UpstreamOverloaded, "upstream_overloaded"),
    ],
)
def test_error_from_upstream(
    name: str, status: int, kind: type[GatewayError], code: str | None
) -> None:
    body = (FIXTURES / name).read_bytes()
    error = provider.ADAPTER.error_from_upstream(status, body, None)
    assert type(error) is kind
    assert error.code == code
    if status in (400, 404):
        assert error.status == status
        assert error.type == "invalid_request_error"  # a type every dialect knows
        assert error.message == json.loads(body)["error"]["message"]


# -- embeddings ----------------------------------------------------------------------


def test_embeddings() -> None:
    req = EmbeddingsRequest("public", ["The quick brown fox", "jumps over the lazy dog"], 4, "u")
    assert gemini_embeddings.write_embeddings(req, "gemini-embedding-001") == _fixture(
        "batch_embed_contents_request.json"
    )
    resp = gemini_embeddings.read_embeddings((FIXTURES / "batch_embed_contents.json").read_bytes())
    assert resp.vectors[1] == [-0.0321, 0.0654, -0.0987, 0.021]
    assert resp.usage is None
    with pytest.raises(UpstreamError):
        gemini_embeddings.read_embeddings(b'{"embeddings": [{"values": "x"}]}')


# -- the adapter ---------------------------------------------------------------------


def test_urls_and_headers() -> None:
    conn = Connection("", "AIza-test", {})
    whole = provider.ADAPTER.request(conn, "gemini-2.5-flash", _request())
    assert whole.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert whole.headers == {
        "content-type": "application/json",
        "accept-encoding": "identity",
        "x-goog-api-key": "AIza-test",
    }
    assert msgspec.json.decode(whole.body) == _fixture("generate_content_request.json")
    own = Connection("http://fake:9/v1beta/", "k", {})
    streamed = provider.ADAPTER.request(own, "models/g", _request(stream=True))
    assert streamed.url == "http://fake:9/v1beta/models/g:streamGenerateContent?alt=sse"
    assert provider.ADAPTER.embeddings_request is not None
    embed = provider.ADAPTER.embeddings_request(own, "e", EmbeddingsRequest("p", ["a"]))
    assert embed.url == "http://fake:9/v1beta/models/e:batchEmbedContents"
    assert provider.ADAPTER.wire == "gemini"
    assert provider.ADAPTER.native_request is None
