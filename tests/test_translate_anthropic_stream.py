"""Anthropic's streamed answers: the upstream reader and the client writer."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as SDKMessage
from anthropic.types import RawMessageStreamEvent

from data_plane.translate.anthropic_stream import Reader, Writer
from data_plane.translate.model import (
    BlockStart,
    BlockStop,
    Delta,
    Event,
    Finish,
    Start,
    StreamError,
    Text,
    Thinking,
    ToolCall,
    Usage,
    UsageEvent,
)
from shared.errors import UpstreamError, UpstreamOverloaded

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
STREAMS = [
    "message_stream_tool_use.sse",
    "message_stream_thinking.sse",
    "message_stream_overloaded.sse",
]
EVENTS = pydantic.TypeAdapter(RawMessageStreamEvent)


def read(data: bytes, *cuts: int) -> tuple[list[Event], int]:
    reader = Reader()
    events: list[Event] = []
    edges = [0, *cuts, len(data)]
    for start, end in itertools.pairwise(edges):
        events.extend(reader.feed(data[start:end]))
    return events, reader.malformed


def comparable(events: list[Event], detail: bool = True) -> list[Any]:
    """Events as plain values (a StreamError's exception compared by kind and detail)."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, StreamError):
            error = event.error
            said = error.detail if detail else None
            out.append(("error", type(error), error.code, error.message, said))
        else:
            out.append(event)
    return out


@pytest.mark.parametrize("name", STREAMS)
def test_split_anywhere_gives_the_same_events(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    whole, malformed = read(data)
    assert malformed == 0
    expected = comparable(whole)
    for cut in range(1, len(data)):
        assert comparable(read(data, cut)[0]) == expected, cut
    assert comparable(read(data, *range(1, len(data)))[0]) == expected
    crlf = data.replace(b"\n", b"\r\n")
    assert comparable(read(crlf, *range(1, len(crlf), 7))[0]) == expected


def test_tool_use_stream() -> None:
    events, _ = read((FIXTURES / "message_stream_tool_use.sse").read_bytes())
    assert events[0] == Start(
        "msg_014p7gG3wDgGV9EUtLvnow3U",
        "claude-sonnet-4-5-20250929",
        Usage(input_tokens=472 + 1024, output_tokens=2, cached_input_tokens=1024),
    )
    assert events[1] == BlockStart(0, Text(""))
    text = "".join(e.value for e in events if isinstance(e, Delta) and e.index == 0)
    assert text == "Okay, let's check the weather for San Francisco, CA — “à bientôt” 🌉:"
    assert BlockStart(1, ToolCall("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", "")) in events
    pieces = [e.value for e in events if isinstance(e, Delta) and e.kind == "arguments"]
    assert len(pieces) == 6  # the empty first piece is not passed on
    assert json.loads("".join(pieces)) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert [e for e in events if isinstance(e, BlockStop)] == [BlockStop(0), BlockStop(1)]
    assert events[-2:] == [
        Finish("tool_use"),
        UsageEvent(Usage(input_tokens=1496, output_tokens=89, cached_input_tokens=1024)),
    ]


def test_thinking_stream() -> None:
    events, _ = read((FIXTURES / "message_stream_thinking.sse").read_bytes())
    assert events[1] == BlockStart(0, Thinking(""))
    kinds = [(e.index, e.kind) for e in events if isinstance(e, Delta)]
    assert kinds == [(0, "thinking"), (0, "thinking"), (0, "signature"), (1, "text")]
    assert events[-2:] == [
        Finish("end"),
        UsageEvent(Usage(input_tokens=12 + 2048, output_tokens=141, cache_write_tokens=2048)),
    ]


def _respaced(data: bytes, compact: bool) -> bytes:
    out = []
    for line in data.split(b"\n"):
        if line.startswith(b"data: "):
            value = json.loads(line[6:])
            text = json.dumps(value, separators=(",", ":") if compact else (", ", ": "))
            line = b"data: " + text.encode()
        out.append(line)
    return b"\n".join(out)


@pytest.mark.parametrize("name", STREAMS)
def test_spaced_and_compact_json_read_the_same(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    compact, _ = read(_respaced(data, compact=True))
    spaced, _ = read(_respaced(data, compact=False))
    expected = comparable(read(data)[0], detail=False)
    assert comparable(compact, detail=False) == comparable(spaced, detail=False) == expected


def test_overloaded_midway() -> None:
    events, _ = read((FIXTURES / "message_stream_overloaded.sse").read_bytes())
    assert isinstance(events[-1], StreamError)
    error = events[-1].error
    assert isinstance(error, UpstreamOverloaded)
    assert "overloaded_error" in error.detail
    assert not any(isinstance(e, Finish | UsageEvent) for e in events)


def test_other_stream_errors() -> None:
    data = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n'
    events, _ = read(data)
    assert len(events) == 1
    assert isinstance(events[0], StreamError)
    assert isinstance(events[0].error, UpstreamError)
    assert events[0].error.code == "upstream_stream_error"
    assert "boom" in events[0].error.detail


def test_malformed_counted_and_new_event_types_ignored() -> None:
    lines: list[Any] = [
        '{"type":"content_block_delta","ind',  # cut short
        {"type": "message_annotation", "x": 1},  # a type added later: ignored
        [1, 2],
        {"type": "content_block_delta", "index": "zero"},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": "hi"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "citations_delta", "citation": {"type": "char_location"}},
        },
        {"type": "content_block_delta", "index": 7, "delta": {"type": "text_delta", "text": "x"}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "server_tool_use", "id": "s1", "name": "web", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "redacted_thinking", "data": "opaque"},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "refusal"},
            "usage": {"output_tokens": 3},
        },
    ]
    data = b"".join(
        b"data: " + (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n\n"
        for line in lines
    )
    events, malformed = read(data)
    assert malformed == 3
    assert events == [
        BlockStart(0, Text("")),
        Delta(0, "text", "hi"),
        BlockStart(1, Thinking(redacted="opaque")),
        Finish("content_filter"),
        UsageEvent(Usage(output_tokens=3)),
    ]


# -- the writer ---------------------------------------------------------------------


def sse_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs, the name checked to match the data's type."""
    out = []
    for block in data.split(b"\n\n"):
        if not block:
            continue
        name_line, data_line = block.split(b"\n")
        assert name_line.startswith(b"event: ")
        assert data_line.startswith(b"data: ")
        value = json.loads(data_line[6:])
        assert value["type"] == name_line[7:].decode()
        out.append((value["type"], value))
    return out


def accumulate(data: bytes) -> SDKMessage:
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for _, value in sse_events(data):
        event = EVENTS.validate_python(value)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    return SDKMessage.model_validate(snapshot.model_dump())


def written(events: list[Event], *, split: bool = False, model: str = "public") -> bytes:
    writer = Writer(model, False)
    out = b"".join(writer.write([event]) for event in events) if split else writer.write(events)
    return out + writer.close()


@pytest.mark.parametrize("name", STREAMS[:2])
def test_writer_output_is_what_the_sdk_accumulates(name: str) -> None:
    events, _ = read((FIXTURES / name).read_bytes())
    data = written(events)
    assert data == written(events, split=True)
    message = accumulate(data)
    assert message.model == "public"
    finish = next(e for e in events if isinstance(e, Finish))
    usage = [e for e in events if isinstance(e, UsageEvent)][-1].usage
    assert message.stop_reason == {"end": "end_turn", "tool_use": "tool_use"}[finish.stop_reason]
    assert message.usage.output_tokens == usage.output_tokens
    total = (
        message.usage.input_tokens
        + (message.usage.cache_read_input_tokens or 0)
        + (message.usage.cache_creation_input_tokens or 0)
    )
    assert total == usage.input_tokens
    # reading the writer's stream gives the same events back
    again, malformed = read(data)
    assert malformed == 0
    assert [e for e in again if not isinstance(e, Start)] == [
        e for e in events if not isinstance(e, Start)
    ]


def test_writer_tool_use_content() -> None:
    events, _ = read((FIXTURES / "message_stream_tool_use.sse").read_bytes())
    message = accumulate(written(events))
    text, call = message.content
    assert text.type == "text"
    assert text.text.endswith("🌉:")
    assert call.type == "tool_use"
    assert call.input == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert call.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"


def test_writer_thinking_content() -> None:
    events, _ = read((FIXTURES / "message_stream_thinking.sse").read_bytes())
    thinking, text = accumulate(written(events)).content
    assert thinking.type == "thinking"
    assert thinking.signature.startswith("EqQBCgIYAhIM")
    assert thinking.thinking.endswith("400 + 50 + 3")
    assert text.type == "text"


def test_writer_openai_order() -> None:
    """No Start; blocks with sparse indexes left open; the usage after the finish."""
    events: list[Event] = [
        BlockStart(3, Text("")),
        Delta(3, "text", "Let me "),
        Delta(3, "text", "look."),
        BlockStart(7, ToolCall("call_1", "lookup", "")),
        Delta(7, "arguments", '{"q":'),
        Delta(7, "arguments", '"x"}'),
        Finish("tool_use"),
    ]
    writer = Writer("public", True)
    head = writer.write(events)
    names = [name for name, _ in sse_events(head)]
    assert names[0] == "message_start"
    assert names.count("content_block_stop") == 2
    assert "message_delta" not in names  # held for the usage
    tail = writer.write(
        [UsageEvent(Usage(input_tokens=20, output_tokens=9, cached_input_tokens=5))]
    )
    assert [name for name, _ in sse_events(tail)] == ["message_delta", "message_stop"]
    assert writer.close() == b""
    message = accumulate(head + tail)
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {"q": "x"}  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (15, 5)
    assert message.usage.output_tokens == 9


def test_writer_close_ends_what_is_due() -> None:
    writer = Writer("public", False)
    data = writer.write(
        [Start("chatcmpl-1", "gpt"), Delta(0, "text", "orphan"), Finish("max_tokens")]
    )
    data += writer.close()
    message = accumulate(data)
    assert message.id == "msg_chatcmpl-1"
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "orphan"  # type: ignore[union-attr]
    assert writer.close() == b""
    # an answer that ended without a stop reason still ends well-formed
    message = accumulate(written([Start(), BlockStart(0, Thinking("", redacted="r"))]))
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "redacted_thinking"
    assert accumulate(written([])).content == []


def test_writer_stops_at_a_stream_error() -> None:
    writer = Writer("public", True)
    data = writer.write(
        [Start(), BlockStart(0, Text("")), StreamError(UpstreamOverloaded("busy")), Finish("end")]
    )
    assert [name for name, _ in sse_events(data)] == ["message_start", "content_block_start"]
    assert writer.close() == b""


def test_writer_initial_content_in_block_starts() -> None:
    events: list[Event] = [
        Start("msg_1", "m", Usage(input_tokens=4)),
        BlockStart(0, Thinking("pre", signature="sig")),
        BlockStop(0),
        BlockStart(1, ToolCall("", "f", '{"a":1}')),
        BlockStop(1),
        Finish("tool_use"),
        UsageEvent(Usage(input_tokens=4, output_tokens=2)),
    ]
    message = accumulate(written(events))
    thinking, call = message.content
    assert (thinking.thinking, thinking.signature) == ("pre", "sig")  # type: ignore[union-attr]
    assert call.input == {"a": 1}  # type: ignore[union-attr]
    assert call.id.startswith("toolu_")  # type: ignore[union-attr]
