"""What an upstream chat stream has said so far, read event by event.

`StreamState.take` gets the data of complete SSE events (framing is
`shared.sse`'s) and returns the bytes to relay: valid events re-framed, the
upstream's `[DONE]` held back (the relay sends it once the answer is complete),
malformed events dropped and counted, the usage event read (and dropped when
the client did not ask for it). It notes whether a finish reason arrived, so a
stream that stops before it is known to be cut short, and, when continuation is
possible, the text streamed so far.

A continuation (`continuing`) is spliced into the first stream: its events are
rewritten to carry the first stream's id, created time, model and fingerprint,
its opening role event is dropped, and its usage event is rewritten to count
the whole answer once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.errors import GatewayError, UpstreamError
from shared.sse import DONE, SSEDecoder, frame

__all__ = ["ENVELOPE", "StreamState"]

_DONE_EVENT = frame(DONE)
_DONE_LENGTH = len(_DONE_EVENT)
_FRAMING = len(frame(b""))  # the bytes `frame` adds to an event's data
_BATCH = 4  # events in one read worth decoding together

ENVELOPE = ("id", "created", "model", "system_fingerprint")


class _Delta(msgspec.Struct):
    role: str | None = None
    content: str | None = None
    tool_calls: list[msgspec.Raw] | None = None
    function_call: Any = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: Any = None


_chunk = msgspec.json.Decoder(_Chunk).decode
_chunks = msgspec.json.Decoder(list[_Chunk]).decode
_any = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class StreamState:
    __slots__ = (
        "choices",
        "completion_tokens",
        "content_events",
        "continuable",
        "continuing",
        "decoder",
        "done_choices",
        "envelope",
        "error",
        "error_relayed",
        "events",
        "finished",
        "keep_text",
        "malformed",
        "open_choices",
        "prefill_events",
        "prompt_tokens",
        "text",
        "wants_usage",
    )

    def __init__(self, wants_usage: bool, keep_text: bool, choices: int = 1) -> None:
        self.wants_usage = wants_usage
        self.keep_text = keep_text
        self.choices = choices  # the answer is complete once this many have finished
        self.continuable = keep_text  # text only, one choice: it can be continued elsewhere
        self.text: list[str] = []
        self.content_events = 0  # events that carried content (≈ tokens)
        self.events = 0
        self.finished = False
        self.open_choices: set[int] | None = None  # while more than one choice is streamed
        self.done_choices = 0
        self.error: GatewayError | None = None  # an error event: the stream ends after it
        self.error_relayed = False  # always False here: the error event is not relayed
        self.decoder = SSEDecoder()
        self.malformed = 0
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.envelope: dict[str, Any] | None = None
        self.continuing = False
        self.prefill_events = 0

    def pristine(self) -> bool:
        return not (self.events or self.malformed)

    def fresh(self) -> StreamState:
        """The same settings, nothing read."""
        return StreamState(self.wants_usage, self.keep_text, self.choices)

    def attempt(self) -> None:
        """Another upstream response begins (a continuation): its own framing."""
        self.decoder = SSEDecoder()

    def first(self, chunk: bytes) -> bytes:
        """Like `feed`, before the commit point: one event at a time until a valid one,
        since a read may bring the first events and, after them, a malformed one,
        which is past the commit point (dropped, not retried). A stream that begins
        with a malformed event raises `upstream_malformed`."""
        events, raw = self.decoder.feed_raw(chunk)
        malformed, valid = self.malformed, self.events
        out: list[bytes] = []
        taken = 0
        while taken < len(events) and self.events == valid:
            out.append(self.take(events[taken : taken + 1]))
            taken += 1
            if self.malformed > malformed:
                raise UpstreamError(
                    "The upstream's stream began with a malformed event.",
                    code="upstream_malformed",
                )
        if taken < len(events):
            if raw is not None:  # the frames of the events taken one by one are
                raw = raw[sum(len(data) + _FRAMING for data in events[:taken]) :]
            out.append(self._relay(events[taken:], raw))
        return b"".join(out)

    def feed(self, chunk: bytes) -> bytes:
        return self._relay(*self.decoder.feed_raw(chunk))

    def _relay(self, payloads: list[bytes], raw: bytes | None) -> bytes:
        """`take`, faster where it may be: events read in one decoding and, when
        every one of them goes to the client as it came, relayed as their bytes."""
        if (
            raw is None
            or len(payloads) < _BATCH
            or self.continuing
            or self.error is not None
            or (self.keep_text and self.events == 0)
        ):
            return self.take(payloads)
        done = bool(payloads) and payloads[-1] == DONE
        body = payloads[:-1] if done else payloads
        if DONE in body:
            return self.take(payloads)
        if not body:
            return b""
        try:
            chunks = _chunks(b"[" + b",".join(body) + b"]")
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self.take(payloads)  # a malformed one among them: one by one
        for chunk in chunks:
            if chunk.error is not None:
                return self.take(payloads)
        kept = [self._read(chunk) for chunk in chunks]
        self.events += len(chunks)
        if all(kept):
            return raw[: len(raw) - _DONE_LENGTH] if done else raw
        return b"".join(frame(data) for data, keep in zip(body, kept, strict=True) if keep)

    @staticmethod
    def close() -> bytes:
        return _DONE_EVENT

    def take(self, payloads: list[bytes]) -> bytes:
        """The bytes to relay for these events. An upstream error event stops the
        reading: what came before it is returned, and `error` is set."""
        out = []
        for data in payloads:
            if data == DONE or self.error is not None:
                continue
            try:
                chunk = _chunk(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.malformed += 1
                continue
            if chunk.error is not None:
                self.error = UpstreamError(
                    "The upstream sent an error event mid-stream.",
                    code="upstream_stream_error",
                )
                self.error.detail = data[:300].decode("utf-8", "replace")
                continue
            keep = self._read(chunk)
            if self.continuing and chunk.usage is not None:
                self._whole_usage()
            if self.keep_text and self.events == 0 and not self.continuing:
                self.envelope = _envelope(data)
            if self.continuing:
                data = self._rewrite(data, chunk, keep)
            elif not keep:
                data = b""
            self.events += 1
            if data:
                out.append(frame(data))
        return b"".join(out)

    def _read(self, chunk: _Chunk) -> bool:
        """Note what the event says; False if it is not for the client."""
        for choice in chunk.choices:
            if choice.finish_reason is not None:
                self._finish(choice.index)
            elif self.choices > 1 or choice.index:
                self._open(choice.index)
            delta = choice.delta
            if delta is None:
                continue
            if delta.content:
                self.content_events += 1
                if self.continuable:
                    self.text.append(delta.content)
            if delta.tool_calls or delta.function_call or choice.index:
                self.continuable = False
        if chunk.usage is not None:
            self.prompt_tokens = chunk.usage.prompt_tokens
            self.completion_tokens = chunk.usage.completion_tokens
            if not chunk.choices and not self.wants_usage:
                return False
        return True

    def _open(self, index: int) -> None:
        if self.open_choices is None:
            self.open_choices = set()
        self.open_choices.add(index)

    def _finish(self, index: int) -> None:
        """Complete once every choice streamed has finished, and at least as many as
        were asked for (`n`)."""
        if self.open_choices is None and self.choices <= 1:
            self.finished = True
            return
        self._open(index)
        assert self.open_choices is not None
        self.open_choices.discard(index)
        self.done_choices += 1
        self.finished = self.done_choices >= self.choices and not self.open_choices

    def begin_continuation(self) -> None:
        """What follows comes from another upstream continuing this answer."""
        self.continuing = True
        self.prefill_events = self.content_events

    def _rewrite(self, data: bytes, chunk: _Chunk, keep: bool) -> bytes:
        if not keep:
            return b""
        if chunk.choices and all(_opening(c) for c in chunk.choices):
            return b""  # the continuation's own role event: the client had one
        doc = _any(data)
        if not isinstance(doc, dict) or self.envelope is None:
            return data
        for name, value in self.envelope.items():
            if name in doc:
                doc[name] = value
        for choice in doc.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                delta.pop("role", None)  # the client had the answer's role at its start
        usage = doc.get("usage")
        if isinstance(usage, dict) and chunk.usage is not None:
            usage["prompt_tokens"] = self.prompt_tokens
            usage["completion_tokens"] = self.completion_tokens
            if "total_tokens" in usage:
                usage["total_tokens"] = (self.prompt_tokens or 0) + (self.completion_tokens or 0)
        return _encode(doc)

    def _whole_usage(self) -> None:
        """The continuation's usage counts the prefill as prompt; the client sees the
        whole answer's: the prompt once, and every completion token."""
        streamed = self.prefill_events
        self.prompt_tokens = max((self.prompt_tokens or 0) - streamed, 0)
        self.completion_tokens = (self.completion_tokens or 0) + streamed

    def prefill(self) -> str:
        return "".join(self.text)


def _opening(choice: _Choice) -> bool:
    delta = choice.delta
    return (
        choice.finish_reason is None
        and delta is not None
        and delta.role is not None
        and not delta.content
        and not delta.tool_calls
    )


def _envelope(data: bytes) -> dict[str, Any] | None:
    doc = _any(data)
    if not isinstance(doc, dict):
        return None
    return {name: doc[name] for name in ENVELOPE if name in doc}
