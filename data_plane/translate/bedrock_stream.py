"""A Converse stream (`converse-stream`): AWS event-stream frames -> canonical events.

Bedrock numbers content blocks itself (`contentBlockIndex`) and sends a
`contentBlockStart` only for tool calls; a text or reasoning block begins with its
first delta. The reader opens such blocks itself and renumbers all of them densely,
in the order they start. A frame that cannot be framed (bad length or CRC) ends the
stream with `upstream_malformed`: after it no boundary can be trusted.
"""

from __future__ import annotations

import msgspec

from data_plane.translate.bedrock import WireUsage, stop_reason, usage
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
    UsageEvent,
)
from data_plane.translate.upstream_errors import Said, from_upstream, malformed
from shared.errors import GatewayError, UpstreamError
from shared.eventstream import EventStreamDecoder, Frame, FramingError

__all__ = ["Reader"]


class _ToolStart(msgspec.Struct, rename="camel"):
    tool_use_id: str
    name: str


class _Start(msgspec.Struct, rename="camel"):
    tool_use: _ToolStart | None = None


class _ToolDelta(msgspec.Struct):
    input: str = ""


class _ReasoningDelta(msgspec.Struct, rename="camel"):
    text: str | None = None
    signature: str | None = None
    redacted_content: str | None = None


class _Delta(msgspec.Struct, rename="camel"):
    text: str | None = None
    tool_use: _ToolDelta | None = None
    reasoning_content: _ReasoningDelta | None = None


class _Payload(msgspec.Struct, rename="camel"):
    """Every event's members (each event has some of them)."""

    content_block_index: int = 0
    start: _Start | None = None
    delta: _Delta | None = None
    stop_reason: str | None = None
    usage: WireUsage | None = None


class _Exception(msgspec.Struct):
    message: str | None = None


_decode_payload = msgspec.json.Decoder(_Payload).decode
_decode_exception = msgspec.json.Decoder(_Exception).decode


class Reader:
    def __init__(self) -> None:
        self.malformed = 0
        self._frames = EventStreamDecoder()
        self._done = False  # an error ended the stream
        self._index: dict[int, int] = {}  # Bedrock's block index -> ours
        self._open: set[int] = set()  # our open blocks
        self._finished = False

    def feed(self, chunk: bytes) -> list[Event]:
        if self._done:
            return []
        events: list[Event] = []
        try:
            frames = self._frames.feed(chunk)
        except FramingError as exc:
            for frame in exc.frames:
                self._frame(frame, events)
            if not self._done:
                self.malformed += 1
                self._fail(events, _malformed(str(exc)))
            return events
        for frame in frames:
            if self._done:
                break
            self._frame(frame, events)
        return events

    def _frame(self, frame: Frame, events: list[Event]) -> None:
        if frame.message_type != "event":
            self._fail(events, _exception(frame))
            return
        kind = frame.event_type
        try:
            payload = _decode_payload(frame.payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.malformed += 1
            return
        if kind == "contentBlockDelta":
            if payload.delta is None:
                self.malformed += 1
            else:
                self._delta(payload.content_block_index, payload.delta, events)
        elif kind == "messageStart":
            events.append(Start())
        elif kind == "contentBlockStart":
            tool = payload.start.tool_use if payload.start else None
            if tool is not None and payload.content_block_index not in self._index:
                index = self._begin(payload.content_block_index)
                events.append(BlockStart(index, ToolCall(tool.tool_use_id, tool.name)))
        elif kind == "contentBlockStop":
            ours = self._index.get(payload.content_block_index)
            if ours is not None and ours in self._open:
                self._open.discard(ours)
                events.append(BlockStop(ours))
        elif kind == "messageStop":
            self._close(events)
            if not self._finished:
                self._finished = True
                events.append(Finish(stop_reason(payload.stop_reason or "end_turn")))
        elif kind == "metadata" and payload.usage is not None:
            events.append(UsageEvent(usage(payload.usage)))
        # other events (none today) carry nothing the canonical model holds

    def _begin(self, theirs: int) -> int:
        index = len(self._index)
        self._index[theirs] = index
        self._open.add(index)
        return index

    def _delta(self, theirs: int, delta: _Delta, events: list[Event]) -> None:
        index = self._index.get(theirs)
        reasoning = delta.reasoning_content
        if index is None:  # text and reasoning blocks start with their first delta
            if delta.text is not None:
                part: Text | Thinking = Text("")
            elif reasoning is not None:
                part = Thinking(redacted=reasoning.redacted_content)
            else:
                self.malformed += 1
                return
            index = self._begin(theirs)
            events.append(BlockStart(index, part))
        if index not in self._open:
            self.malformed += 1  # a delta after its block stopped
            return
        if delta.text is not None:
            events.append(Delta(index, "text", delta.text))
        elif delta.tool_use is not None:
            events.append(Delta(index, "arguments", delta.tool_use.input))
        elif reasoning is not None:
            if reasoning.text is not None:
                events.append(Delta(index, "thinking", reasoning.text))
            if reasoning.signature is not None:
                events.append(Delta(index, "signature", reasoning.signature))

    def _close(self, events: list[Event]) -> None:
        for index in sorted(self._open):
            events.append(BlockStop(index))
        self._open.clear()

    def _fail(self, events: list[Event], error: GatewayError) -> None:
        self._close(events)
        self._done = True
        events.append(StreamError(error))


def _malformed(detail: str) -> UpstreamError:
    error = malformed()
    error.detail = detail
    return error


def _exception(frame: Frame) -> GatewayError:
    """An exception frame: throttling -> 429, unavailable -> overloaded, the rest a
    generic stream error (the upstream's words to the log)."""
    try:
        message = _decode_exception(frame.payload).message
    except (msgspec.DecodeError, msgspec.ValidationError):
        message = None
    kind = frame.exception_type or frame.message_type
    if kind == "throttlingException":
        return from_upstream(429, Said(message, kind), frame.payload, None)
    if kind == "serviceUnavailableException":
        return from_upstream(503, Said(message, kind), frame.payload, None)
    error = UpstreamError("The upstream failed mid-answer.", code="upstream_stream_error")
    error.detail = f"{kind}: {frame.payload[:500].decode('utf-8', 'replace')}"
    return error
