"""OpenAI chat completions answers, whole and streamed, both ways, and error
bodies, over the wire-format fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from data_plane.translate import openai_chat
from data_plane.translate.model import (
    BlockStart,
    BlockStop,
    Delta,
    Event,
    Finish,
    Response,
    Start,
    StreamError,
    Text,
    Thinking,
    ToolCall,
    Usage,
    UsageEvent,
)
from shared.errors import UpstreamError

FIXTURES = Path(__file__).parent / "fixtures"
OPENAI = FIXTURES / "openai"
STREAMS = [
    "openai/chat_completion_stream.sse",
    "openai/chat_completion_stream_no_usage.sse",
    "openai/chat_completion_stream_failed_midway.sse",
    "openai/chat_completion_stream_content_filter.sse",
    "openai/chat_completion_stream_no_done.sse",
    "openai/chat_completion_stream_malformed_event.sse",
    "openai/chat_completion_stream_tool_calls.sse",
    "openai/chat_completion_stream_error_chunk.sse",
    "openai/chat_completion_stream_reasoning.sse",
    "azure_openai/chat_completion_stream_filtered.sse",
]


def plain(events: list[Event]) -> list[Any]:
    """Events as comparable values (a StreamError by its error's class and code)."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, StreamError):
            out.append(("error", type(event.error).__name__, event.error.code))
        else:
            out.append(msgspec.to_builtins(event))
    return out


def merged(events: list[Event]) -> list[Any]:
    """`plain`, consecutive deltas of one block joined (a writer may join them)."""
    out: list[Any] = []
    for event in events:
        last = out[-1] if out else None
        if (
            isinstance(event, Delta)
            and isinstance(last, Delta)
            and (last.index, last.kind) == (event.index, event.kind)
        ):
            out[-1] = Delta(last.index, last.kind, last.value + event.value)
        else:
            out.append(event)
    return plain(out)


def read_stream(data: bytes, *pieces: int) -> tuple[list[Event], int]:
    reader = openai_chat.Reader()
    events: list[Event] = []
    start = 0
    for end in (*pieces, len(data)):
        events.extend(reader.feed(data[start:end]))
        start = end
    return events, reader.malformed


# -- responses --------------------------------------------------------------------


def test_a_response_reads_text_and_usage() -> None:
    resp = openai_chat.read_response((OPENAI / "chat_completion.json").read_bytes())
    assert resp.content == [Text("Hello! How can I help you today?")]
    assert resp.stop_reason == "end"
    assert resp.usage == Usage(input_tokens=18, output_tokens=9)
    assert (resp.id, resp.created) == ("chatcmpl-CfQ2nR8vTzK4mW1yHs7aBd0xLpE3u", 1732612345)


def test_a_response_reads_tool_calls() -> None:
    resp = openai_chat.read_response((OPENAI / "chat_completion_tool_calls.json").read_bytes())
    assert resp.content == [
        ToolCall("call_Qx1aLz0bXk7yP2nE4rT9uWcd", "get_weather", '{"city":"Paris"}'),
        ToolCall("call_Vb8mNq3sHj6tR1oK5wY2eZfg", "get_weather", '{"city":"Lyon"}'),
    ]
    assert resp.stop_reason == "tool_use"
    assert resp.usage == Usage(input_tokens=82, output_tokens=46, cached_input_tokens=64)


def test_azure_annotations_are_tolerated() -> None:
    body = (FIXTURES / "azure_openai" / "chat_completion_filtered.json").read_bytes()
    resp = openai_chat.read_response(body)
    assert resp.content == [Text("Hello! How can I help you today?")]
    assert resp.usage is not None
    assert resp.usage.input_tokens == 18


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b'{"choices": []}', b'{"choices": [{"message": 3}]}', b"null"]
)
def test_an_unreadable_response_is_upstream_malformed(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        openai_chat.read_response(body)
    assert caught.value.code == "upstream_malformed"


@pytest.mark.parametrize("name", ["chat_completion.json", "chat_completion_tool_calls.json"])
def test_a_written_response_is_a_chat_completion_and_reads_back(name: str) -> None:
    resp = openai_chat.read_response((OPENAI / name).read_bytes())
    written = openai_chat.write_response(resp, "public-model")
    completion = ChatCompletion.model_validate(json.loads(written))
    assert completion.model == "public-model"
    assert completion.id.startswith("chatcmpl-")
    again = openai_chat.read_response(written)
    assert msgspec.structs.replace(again, model=resp.model) == resp


def test_a_written_response_carries_reasoning_and_a_fresh_id() -> None:
    resp = Response(
        id="msg_01",
        model="claude",
        content=[Thinking("think"), Text("a"), Text("b")],
        stop_reason="max_tokens",
        usage=Usage(input_tokens=5, output_tokens=7, reasoning_tokens=3),
    )
    body = json.loads(openai_chat.write_response(resp, "pub"))
    ChatCompletion.model_validate(body)
    assert body["id"] == "chatcmpl-msg_01"
    assert body["created"] > 0
    choice = body["choices"][0]
    assert choice["message"]["content"] == "ab"
    assert choice["message"]["reasoning_content"] == "think"
    assert choice["finish_reason"] == "length"
    assert body["usage"]["total_tokens"] == 12
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}


# -- streams ----------------------------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_a_stream_reads_the_same_split_at_any_byte(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    whole, malformed = read_stream(data)
    expected = plain(whole)
    for at in range(1, len(data)):
        events, count = read_stream(data, at)
        assert plain(events) == expected, at
        assert count == malformed
    bytewise, _ = read_stream(data, *range(1, len(data)))
    assert plain(bytewise) == expected


def test_a_text_stream_reads_into_one_block() -> None:
    events, malformed = read_stream((OPENAI / "chat_completion_stream.sse").read_bytes())
    assert malformed == 0
    assert events[0] == Start("chatcmpl-CfQ3aJ6uYw2pN9tG5kVe8rXo1MhZs", "gpt-4o-mini-2024-07-18")
    assert events[1] == BlockStart(0, Text(""))
    text = "".join(e.value for e in events if isinstance(e, Delta))
    assert text == "Hello! How can I help you today?"
    assert events[-3:] == [
        BlockStop(0),
        Finish("end"),
        UsageEvent(Usage(input_tokens=18, output_tokens=9)),
    ]


def test_a_tool_call_stream_opens_one_block_per_call() -> None:
    data = (OPENAI / "chat_completion_stream_tool_calls.sse").read_bytes()
    events, _ = read_stream(data)
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert starts == [
        BlockStart(0, ToolCall("call_Qx1aLz0bXk7yP2nE4rT9uWcd", "get_weather")),
        BlockStart(1, ToolCall("call_Vb8mNq3sHj6tR1oK5wY2eZfg", "get_weather")),
    ]
    for index, city in ((0, "Paris"), (1, "Lyon")):
        args = "".join(e.value for e in events if isinstance(e, Delta) and e.index == index)
        assert json.loads(args) == {"city": city}
    stops = [e.index for e in events if isinstance(e, BlockStop)]
    assert stops == [0, 1]
    assert Finish("tool_use") in events
    assert events[-1] == UsageEvent(
        Usage(input_tokens=82, output_tokens=46, cached_input_tokens=64)
    )


def test_reasoning_deltas_open_a_thinking_block_before_the_text() -> None:
    events, _ = read_stream((OPENAI / "chat_completion_stream_reasoning.sse").read_bytes())
    assert [e for e in events if isinstance(e, BlockStart | BlockStop)] == [
        BlockStart(0, Thinking()),
        BlockStop(0),
        BlockStart(1, Text("")),
        BlockStop(1),
    ]
    thinking = "".join(e.value for e in events if isinstance(e, Delta) and e.kind == "thinking")
    assert thinking == "The user greets me."
    assert events[-1] == UsageEvent(Usage(input_tokens=10, output_tokens=12, reasoning_tokens=5))


def test_an_error_chunk_ends_the_stream_with_a_stream_error() -> None:
    events, _ = read_stream((OPENAI / "chat_completion_stream_error_chunk.sse").read_bytes())
    last = events[-1]
    assert isinstance(last, StreamError)
    assert isinstance(last.error, UpstreamError)
    assert last.error.code == "upstream_stream_error"
    assert "server had an error" in last.error.detail
    assert "server had an error" not in last.error.message


def test_a_malformed_event_is_dropped_and_counted() -> None:
    data = (OPENAI / "chat_completion_stream_malformed_event.sse").read_bytes()
    events, malformed = read_stream(data)
    assert malformed == 1
    assert isinstance(events[-1], UsageEvent)


def test_azure_annotation_chunks_do_not_start_the_answer() -> None:
    data = (FIXTURES / "azure_openai" / "chat_completion_stream_filtered.sse").read_bytes()
    events, malformed = read_stream(data)
    assert malformed == 0
    assert events[0] == Start("chatcmpl-AzR5uW7zRo3qM9tL4xYf0cNe2GiHd", "gpt-4o-2024-08-06")
    text = "".join(e.value for e in events if isinstance(e, Delta))
    assert text == "Hello! How can I help you today?"
    assert isinstance(events[-1], UsageEvent)


def test_spaced_and_compact_json_give_the_same_usage() -> None:
    data = (OPENAI / "chat_completion_stream.sse").read_bytes()
    frames = data.split(b"\n\n")
    usage_frame = next(f for f in frames if b'"usage":{' in f)
    spaced = b"data: " + json.dumps(json.loads(usage_frame[6:])).encode()
    assert b", " in spaced
    compact_events, _ = read_stream(data)
    spaced_events, _ = read_stream(data.replace(usage_frame, spaced))
    assert compact_events[-1] == spaced_events[-1] == UsageEvent(Usage(18, 9))


# -- writing a stream ---------------------------------------------------------------


def write_stream(events: list[Event], include_usage: bool, batch: int = 1) -> list[Any]:
    writer = openai_chat.Writer("public-model", include_usage)
    out = b""
    for at in range(0, len(events), batch):
        out += writer.write(events[at : at + batch])
    out += writer.close()
    assert out.endswith(b"data: [DONE]\n\n")
    payloads = [frame[6:] for frame in out.split(b"\n\n") if frame]
    assert payloads[-1] == b"[DONE]"
    return [json.loads(payload) for payload in payloads[:-1]]


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_written_chunks_are_valid_and_say_the_same(name: str, batch: int) -> None:
    events, _ = read_stream((FIXTURES / name).read_bytes())
    events = [e for e in events if not isinstance(e, StreamError)]
    chunks = write_stream(events, include_usage=True, batch=batch)
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks]
    assert len({(c.id, c.created, c.model) for c in parsed}) == 1
    assert parsed[0].model == "public-model"
    assert parsed[0].choices[0].delta.role == "assistant"
    # read back, the written stream says what the upstream's did
    written = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    again, malformed = read_stream(written)
    assert malformed == 0
    assert merged(again[1:]) == merged(events[1:])


def test_usage_waits_for_the_end_and_only_if_asked() -> None:
    events: list[Event] = [
        Start("msg_1", "claude", usage=Usage(input_tokens=5)),
        BlockStart(0, Text("")),
        Delta(0, "text", "hi"),
        BlockStop(0),
        Finish("stop_sequence"),
        UsageEvent(Usage(input_tokens=5, output_tokens=2)),
    ]
    chunks = write_stream(events, include_usage=True)
    assert chunks[0]["id"] == "chatcmpl-msg_1"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 7
    assert [c for c in chunks if "usage" in c] == [chunks[-1]]
    without = write_stream(events, include_usage=False)
    assert all("usage" not in c for c in without)


def test_thinking_goes_out_as_reasoning_content_and_signatures_stay_out() -> None:
    events: list[Event] = [
        Start("x", "m"),
        BlockStart(0, Thinking()),
        Delta(0, "thinking", "a"),
        Delta(0, "thinking", "b"),
        Delta(0, "signature", "sig"),
        BlockStop(0),
        BlockStart(1, Text("")),
        Delta(1, "text", "answer"),
        BlockStop(1),
        Finish("end"),
    ]
    chunks = write_stream(events, include_usage=False, batch=100)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "ab"},
        {"content": "answer"},
        {},
    ]
    assert b"sig" not in json.dumps(chunks).encode()


def test_said_reads_openai_and_azure_error_bodies() -> None:
    said = openai_chat.said((OPENAI / "error_invalid_tool_choice.json").read_bytes())
    assert (said.type, said.param, said.code) == ("invalid_request_error", "tool_choice", None)
    azure = openai_chat.said((FIXTURES / "azure_openai" / "error_content_filter.json").read_bytes())
    assert azure.code == "content_filter"
    assert azure.message is not None
    assert azure.message.endswith("(filtered: self_harm)")
    assert openai_chat.said(b'{"error": {"message": "m", "code": 429}}').code == "429"
    for junk in (b"", b"[]", b'{"error": 1}', b"<html>"):
        assert openai_chat.said(junk) == (None, None, None, None)
