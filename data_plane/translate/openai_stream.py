"""OpenAI chat completion chunks, read into canonical events and written from them.

Also the wire pieces the whole-answer translators (`openai_chat`) share: usage
and finish reasons.

Reading: chunks carry no block framing, so the reader opens a block when content
of a new kind starts (text, reasoning, or a new tool call index) and closes the
open one first; blocks follow one another. An arguments delta for a tool call
whose block was already closed (calls interleaved, which OpenAI does not do)
cannot be placed and is counted as malformed. Reasoning arrives as
`reasoning_content` or `reasoning` (vLLM, DeepSeek and others).

Writing: thinking deltas go out as `delta.reasoning_content` (the same
extension); signatures have nowhere to go and are left out. Usage is held and
written at `close()`, after the finish chunk, as one `choices: []` chunk.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from data_plane.translate.model import (
    BlockStart,
    BlockStop,
    Delta,
    Event,
    Finish,
    Start,
    StopReason,
    StreamError,
    Text,
    Thinking,
    ToolCall,
    Usage,
    UsageEvent,
)
from shared.errors import UpstreamError
from shared.sse import DONE, SSEDecoder

__all__ = [
    "FINISH_REASONS",
    "STOP_REASONS",
    "Reader",
    "WireUsage",
    "Writer",
    "chunk_id",
    "usage_from_wire",
    "usage_to_wire",
]

# OpenAI finish_reason -> canonical stop reason, and back
STOP_REASONS: dict[str, StopReason] = {
    "stop": "end",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}
FINISH_REASONS: dict[str, str] = {
    "end": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
}


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class WireUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


def usage_from_wire(wire: WireUsage) -> Usage:
    prompt, completion = wire.prompt_tokens_details, wire.completion_tokens_details
    return Usage(
        input_tokens=wire.prompt_tokens or 0,
        output_tokens=wire.completion_tokens or 0,
        cached_input_tokens=(prompt.cached_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def usage_to_wire(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def chunk_id(upstream_id: str) -> str:
    """A `chatcmpl-` id for an answer whose upstream id is `upstream_id`."""
    if not upstream_id:
        return "chatcmpl-" + uuid.uuid4().hex
    return upstream_id if upstream_id.startswith("chatcmpl-") else "chatcmpl-" + upstream_id


# -- reading ----------------------------------------------------------------------


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: WireUsage | None = None
    error: Any = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode


class Reader:
    """One OpenAI stream (SSE of `chat.completion.chunk`) -> canonical events."""

    def __init__(self) -> None:
        self.malformed = 0
        self._sse = SSEDecoder()
        self._started = False
        self._next = 0  # the next block's index
        self._open: int | None = None  # the open block's index
        self._open_kind = ""  # "text" | "thinking" | "tool"
        self._tools: dict[int, int] = {}  # tool call index -> block index

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        for data in self._sse.feed(chunk):
            if data == DONE:
                continue
            try:
                parsed = _decode_chunk(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.malformed += 1
                continue
            self._read(parsed, data, events)
        return events

    def _read(self, chunk: _Chunk, data: bytes, events: list[Event]) -> None:
        if chunk.error is not None:
            error = UpstreamError(
                "The upstream failed during the answer.", code="upstream_stream_error"
            )
            error.detail = data[:500].decode("utf-8", "replace")
            events.append(StreamError(error))
            return
        if not self._started and (chunk.id or chunk.choices):
            self._started = True
            events.append(Start(id=chunk.id or "", model=chunk.model or ""))
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None:
                self._delta(delta, events)
            if choice.finish_reason is not None:
                self._close(events)
                events.append(Finish(STOP_REASONS.get(choice.finish_reason, "end")))
        if chunk.usage is not None:
            events.append(UsageEvent(usage_from_wire(chunk.usage)))

    def _delta(self, delta: _Delta, events: list[Event]) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            self._text("thinking", reasoning, events)
        if delta.content:
            self._text("text", delta.content, events)
        if delta.refusal:
            self._text("text", delta.refusal, events)
        for call in delta.tool_calls or ():
            function = call.function
            block = self._tools.get(call.index)
            if block is None:
                self._close(events)
                block = self._open = self._tools[call.index] = self._next
                self._next += 1
                self._open_kind = "tool"
                name = (function.name if function else None) or ""
                events.append(BlockStart(block, ToolCall(id=call.id or "", name=name)))
            if function is not None and function.arguments:
                if block != self._open:
                    self.malformed += 1
                    continue
                events.append(Delta(block, "arguments", function.arguments))

    def _text(self, kind: str, value: str, events: list[Event]) -> None:
        if self._open is None or self._open_kind != kind:
            self._close(events)
            self._open = self._next
            self._next += 1
            self._open_kind = kind
            part: Text | Thinking = Text("") if kind == "text" else Thinking()
            events.append(BlockStart(self._open, part))
        events.append(Delta(self._open, "text" if kind == "text" else "thinking", value))

    def _close(self, events: list[Event]) -> None:
        if self._open is not None:
            events.append(BlockStop(self._open))
            self._open = None
            self._open_kind = ""


# -- writing ----------------------------------------------------------------------

_encode = msgspec.json.Encoder().encode
_SUFFIX = b',"logprobs":null,"finish_reason":null}]}\n\n'


class Writer:
    """Canonical events -> `chat.completion.chunk` SSE frames for one client stream,
    each chunk with the same id, `created` and (public) model name."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._head = b""  # `data: {"id":…,"choices":[` once started
        self._prefix = b""  # … up to `"delta":`
        self._usage: Usage | None = None
        self._tools: dict[int, int] = {}  # block index -> tool call index

    def _start(self, upstream_id: str) -> bytes:
        head = _encode(
            {
                "id": chunk_id(upstream_id),
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self._model,
            }
        )
        self._head = b"data: " + head[:-1] + b',"choices":['
        self._prefix = self._head + b'{"index":0,"delta":'
        return self._prefix + b'{"role":"assistant","content":""}' + _SUFFIX

    def write(self, events: list[Event]) -> bytes:
        out: list[bytes] = []
        if not self._head:
            first = events[0] if events else None
            if first is None:
                return b""
            out.append(self._start(first.id if isinstance(first, Start) else ""))
        pending_kind = ""
        pending: list[str] = []
        pending_tool = -1
        for event in events:
            if isinstance(event, Delta):
                kind = event.kind
                tool = self._tools.get(event.index, -1) if kind == "arguments" else -1
                if kind == "signature":
                    continue
                if pending and (kind != pending_kind or tool != pending_tool):
                    out.append(self._delta_chunk(pending_kind, "".join(pending), pending_tool))
                    pending = []
                pending_kind, pending_tool = kind, tool
                pending.append(event.value)
                continue
            if pending:
                out.append(self._delta_chunk(pending_kind, "".join(pending), pending_tool))
                pending = []
            if isinstance(event, BlockStart) and isinstance(event.part, ToolCall):
                tool = self._tools[event.index] = len(self._tools)
                call = {
                    "index": tool,
                    "id": event.part.id,
                    "type": "function",
                    "function": {"name": event.part.name, "arguments": ""},
                }
                out.append(self._prefix + _encode({"tool_calls": [call]}) + _SUFFIX)
            elif isinstance(event, Finish):
                reason = FINISH_REASONS[event.stop_reason]
                out.append(
                    self._prefix
                    + b'{},"logprobs":null,"finish_reason":"'
                    + reason.encode()
                    + b'"}]}\n\n'
                )
            elif isinstance(event, UsageEvent | Start) and event.usage is not None:
                self._usage = event.usage
        if pending:
            out.append(self._delta_chunk(pending_kind, "".join(pending), pending_tool))
        return b"".join(out)

    def _delta_chunk(self, kind: str, value: str, tool: int) -> bytes:
        text = _encode(value)
        if kind == "text":
            delta = b'{"content":' + text + b"}"
        elif kind == "thinking":
            delta = b'{"reasoning_content":' + text + b"}"
        else:
            delta = b'{"tool_calls":[{"index":%d,"function":{"arguments":%s}}]}' % (tool, text)
        return self._prefix + delta + _SUFFIX

    def close(self) -> bytes:
        out = b""
        if self._include_usage and self._usage is not None:
            if not self._head:
                self._start("")
            out = self._head + b'],"usage":' + _encode(usage_to_wire(self._usage)) + b"}\n\n"
        return out + b"data: [DONE]\n\n"
