"""Anthropic's streamed Messages answer: server-sent events, read and written.

Each event is `event: <type>` plus `data: <JSON with the same type>`; the JSON
alone says what it is. A stream is `message_start`, then per content block
`content_block_start`, its deltas and `content_block_stop`, then `message_delta`
(stop reason and cumulative usage) and `message_stop`; `ping` may come anywhere
and `error` ends a failing stream.
"""

from __future__ import annotations

import secrets
from typing import Literal

import msgspec

from data_plane.translate.anthropic_messages import (
    WireBlock,
    WireUsage,
    message_id,
    stop_from,
    stop_to,
    usage_from,
    usage_to,
)
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
from shared.errors import GatewayError, UpstreamError, UpstreamOverloaded
from shared.sse import SSEDecoder

__all__ = ["Reader", "Writer"]

_encode = msgspec.json.Encoder().encode


# -- reading an upstream's stream ----------------------------------------------------


class _StartMessage(msgspec.Struct):
    id: str = ""
    model: str = ""
    usage: WireUsage | None = None


class _MessageStart(msgspec.Struct, tag="message_start", tag_field="type"):
    message: _StartMessage


class _BlockStart(msgspec.Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: WireBlock


class _DeltaBody(msgspec.Struct):
    type: str
    text: str = ""
    partial_json: str = ""
    thinking: str = ""
    signature: str = ""


class _BlockDelta(msgspec.Struct, tag="content_block_delta", tag_field="type"):
    index: int
    delta: _DeltaBody


class _BlockStop(msgspec.Struct, tag="content_block_stop", tag_field="type"):
    index: int


class _StopDelta(msgspec.Struct):
    stop_reason: str | None = None
    stop_sequence: str | None = None


class _MessageDelta(msgspec.Struct, tag="message_delta", tag_field="type"):
    delta: _StopDelta = msgspec.field(default_factory=_StopDelta)
    usage: WireUsage | None = None


class _MessageStop(msgspec.Struct, tag="message_stop", tag_field="type"):
    pass


class _Ping(msgspec.Struct, tag="ping", tag_field="type"):
    pass


class _ErrorDetail(msgspec.Struct):
    type: str = ""
    message: str = ""


class _Error(msgspec.Struct, tag="error", tag_field="type"):
    error: _ErrorDetail = msgspec.field(default_factory=_ErrorDetail)


class _Typed(msgspec.Struct):
    type: str


_Wire = (
    _BlockDelta
    | _BlockStart
    | _BlockStop
    | _MessageStart
    | _MessageDelta
    | _MessageStop
    | _Ping
    | _Error
)
_decode_event = msgspec.json.Decoder(_Wire).decode
_decode_typed = msgspec.json.Decoder(_Typed).decode
_KNOWN = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)
_Kind = Literal["text", "thinking", "arguments", "signature"]
_DELTA_KINDS: dict[str, _Kind] = {
    "text_delta": "text",
    "input_json_delta": "arguments",
    "thinking_delta": "thinking",
    "signature_delta": "signature",
}


class Reader:
    """An Anthropic upstream's stream -> canonical events. Blocks of kinds the
    canonical model has no place for (server tools' blocks) are skipped, and the
    rest numbered densely; event types added to the API later are ignored."""

    def __init__(self) -> None:
        self.malformed = 0
        self._sse = SSEDecoder()
        self._index: dict[int, int] = {}  # upstream block index -> canonical
        self._start: WireUsage | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        for data in self._sse.feed(chunk):
            try:
                wire = _decode_event(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                if not self._is_new_type(data):
                    self.malformed += 1
                continue
            if isinstance(wire, _BlockDelta):
                self._delta(wire, events)
            elif isinstance(wire, _BlockStart):
                self._block_start(wire, events)
            elif isinstance(wire, _BlockStop):
                index = self._index.get(wire.index)
                if index is not None:
                    events.append(BlockStop(index))
            elif isinstance(wire, _MessageStart):
                message = wire.message
                self._start = message.usage
                usage = message.usage.canonical() if message.usage else None
                events.append(Start(message.id, message.model, usage))
            elif isinstance(wire, _MessageDelta):
                events.append(Finish(stop_from(wire.delta.stop_reason), wire.delta.stop_sequence))
                events.append(UsageEvent(self._usage(wire.usage)))
            elif isinstance(wire, _Error):
                events.append(StreamError(_stream_error(wire.error, data)))
        return events

    @staticmethod
    def _is_new_type(data: bytes) -> bool:
        try:
            return _decode_typed(data).type not in _KNOWN
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False

    def _delta(self, wire: _BlockDelta, events: list[Event]) -> None:
        index = self._index.get(wire.index)
        delta = wire.delta
        kind = _DELTA_KINDS.get(delta.type)
        if index is None or kind is None:  # citations_delta, or a skipped block's
            return
        if kind == "text":
            value = delta.text
        elif kind == "arguments":
            value = delta.partial_json
        elif kind == "thinking":
            value = delta.thinking
        else:
            value = delta.signature
        if value:
            events.append(Delta(index, kind, value))

    def _block_start(self, wire: _BlockStart, events: list[Event]) -> None:
        block = wire.content_block
        part: Text | Thinking | ToolCall
        initial: list[tuple[_Kind, str]] = []
        if block.type == "text":
            part = Text("")
            initial = [("text", block.text)]
        elif block.type == "tool_use":
            part = ToolCall(block.id, block.name, "")
        elif block.type == "thinking":
            part = Thinking("")
            initial = [("thinking", block.thinking), ("signature", block.signature or "")]
        elif block.type == "redacted_thinking":
            part = Thinking(redacted=block.data or "")
        else:
            return
        index = self._index[wire.index] = len(self._index)
        events.append(BlockStart(index, part))
        for kind, value in initial:
            if value:
                events.append(Delta(index, kind, value))

    def _usage(self, wire: WireUsage | None) -> Usage:
        start = self._start or WireUsage()
        end = wire or WireUsage()
        details = end.output_tokens_details or start.output_tokens_details

        def pick(late: int | None, early: int | None) -> int | None:
            return early if late is None else late

        return usage_from(
            pick(end.input_tokens, start.input_tokens),
            pick(end.output_tokens, start.output_tokens),
            pick(end.cache_read_input_tokens, start.cache_read_input_tokens),
            pick(end.cache_creation_input_tokens, start.cache_creation_input_tokens),
            details.thinking_tokens if details else None,
        )


def _stream_error(detail: _ErrorDetail, data: bytes) -> GatewayError:
    error: GatewayError
    if detail.type == "overloaded_error":
        error = UpstreamOverloaded("The upstream is overloaded.")
    else:
        error = UpstreamError("The upstream failed mid-stream.", code="upstream_stream_error")
    error.detail = data[:500].decode("utf-8", "replace")
    return error


# -- writing a stream to a client ----------------------------------------------------


def _event(name: bytes, data: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_DELTA_TYPES = {
    "text": b',"delta":{"type":"text_delta","text":',
    "arguments": b',"delta":{"type":"input_json_delta","partial_json":',
    "thinking": b',"delta":{"type":"thinking_delta","thinking":',
    "signature": b',"delta":{"type":"signature_delta","signature":',
}


def _delta(index: int, kind: str, value: str) -> bytes:
    return _DELTA_HEAD + str(index).encode() + _DELTA_TYPES[kind] + _encode(value) + b"}}\n\n"


_MESSAGE_STOP = _event(b"message_stop", b'{"type":"message_stop"}')


class Writer:
    """Canonical events -> Anthropic's stream, for a client of the Anthropic dialect.

    A `message_start` is made up if the events begin without `Start`; blocks are
    renumbered densely in the order they start; open blocks are stopped at
    `Finish`. The end (`message_delta` with the stop reason and usage, then
    `message_stop`) waits for the usage, which some upstreams send after the stop
    reason, or for `close()`. `include_usage` is ignored: Anthropic always sends
    usage. After a `StreamError` nothing more is written (the error event itself
    is `anthropic_errors.error_event`)."""

    def __init__(self, model: str, include_usage: bool = True) -> None:
        self._model = model
        self._started = False
        self._dense: dict[int, int] = {}
        self._open: dict[int, None] = {}  # dense indexes of blocks not yet stopped
        self._finish: Finish | None = None
        self._usage: Usage | None = None
        self._done = False

    def write(self, events: list[Event]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if self._done:
                break
            if isinstance(event, Delta):
                index = self._dense.get(event.index)
                if index is None:
                    index = self._block_start(out, event.index, _stand_in(event.kind))
                out.append(_delta(index, event.kind, event.value))
            elif isinstance(event, BlockStart):
                if event.index not in self._dense:
                    self._block_start(out, event.index, event.part)
            elif isinstance(event, BlockStop):
                index = self._dense.get(event.index)
                if index is not None and index in self._open:
                    self._block_stop(out, index)
            elif isinstance(event, Start):
                if not self._started:
                    self._message_start(out, event)
            elif isinstance(event, Finish):
                self._ensure_started(out)
                for index in list(self._open):
                    self._block_stop(out, index)
                self._finish = event
            elif isinstance(event, UsageEvent):
                self._usage = event.usage
                if self._finish is not None:
                    self._end(out)
            elif isinstance(event, StreamError):
                self._done = True
        return b"".join(out)

    def close(self) -> bytes:
        if self._done:
            return b""
        out: list[bytes] = []
        self._ensure_started(out)
        for index in list(self._open):
            self._block_stop(out, index)
        self._end(out)
        return b"".join(out)

    def _ensure_started(self, out: list[bytes]) -> None:
        if not self._started:
            self._message_start(out, Start())

    def _message_start(self, out: list[bytes], start: Start) -> None:
        self._started = True
        if start.usage is not None and self._usage is None:
            self._usage = start.usage
        message: dict[str, object] = {
            "id": message_id(start.id),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to(start.usage),
        }
        out.append(_event(b"message_start", _encode({"type": "message_start", "message": message})))

    def _block_start(self, out: list[bytes], index: int, part: Text | Thinking | ToolCall) -> int:
        self._ensure_started(out)
        dense = self._dense[index] = len(self._dense)
        self._open[dense] = None
        initial: list[tuple[str, str]] = []
        block: dict[str, object]
        if isinstance(part, Text):
            block = {"type": "text", "text": ""}
            initial = [("text", part.text)]
        elif isinstance(part, ToolCall):
            call_id = part.id or "toolu_" + secrets.token_hex(12)
            block = {"type": "tool_use", "id": call_id, "name": part.name, "input": {}}
            initial = [("arguments", part.arguments)]
        elif part.redacted is not None:
            block = {"type": "redacted_thinking", "data": part.redacted}
        else:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            initial = [("thinking", part.text), ("signature", part.signature or "")]
        data = {"type": "content_block_start", "index": dense, "content_block": block}
        out.append(_event(b"content_block_start", _encode(data)))
        for kind, value in initial:
            if value:
                out.append(_delta(dense, kind, value))
        return dense

    def _block_stop(self, out: list[bytes], index: int) -> None:
        del self._open[index]
        data = b'{"type":"content_block_stop","index":' + str(index).encode() + b"}"
        out.append(_event(b"content_block_stop", data))

    def _end(self, out: list[bytes]) -> None:
        finish = self._finish or Finish("end")
        delta = {"stop_reason": stop_to(finish.stop_reason), "stop_sequence": finish.stop_sequence}
        data = {"type": "message_delta", "delta": delta, "usage": usage_to(self._usage)}
        out.append(_event(b"message_delta", _encode(data)))
        out.append(_MESSAGE_STOP)
        self._done = True


def _stand_in(kind: str) -> Text | Thinking | ToolCall:
    """The block a delta belongs to when its start was never seen."""
    if kind == "arguments":
        return ToolCall("", "", "")
    if kind in ("thinking", "signature"):
        return Thinking("")
    return Text("")
