"""Anthropic's Messages stream: SSE events with ``event:`` lines, in Anthropic's order.

``message_start``; for thinking a ``thinking`` block (``thinking_delta`` per piece, then a
``signature_delta``); the answer's block (``text`` with ``text_delta`` per piece, or
``tool_use`` with ``input_json_delta`` per argument piece); ``ping`` once, right after the
first ``content_block_start``; ``content_block_stop``; ``message_delta`` (stop reason and
``usage.output_tokens``); ``message_stop``. The in-stream error is ``event: error`` with
``overloaded_error``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fakes.anthropic_wire import STOP, message_of, signature
from tests.fakes.tokens import THINKING, Job, piece

__all__ = ["Events"]


class Events:
    """The events of one Anthropic stream."""

    content_type = "text/event-stream"

    def __init__(self, job: Job) -> None:
        self.job, self.encode = job, job.encode
        self.count = job.count
        self.index = 1 if job.thinking else 0  # the answer block's
        self.answers = job.tool is not None or job.end > job.first

    def event(self, name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + self.encode(data) + b"\n\n"

    def _start(self, index: int, block: dict[str, Any]) -> bytes:
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return self.event("content_block_start", start)

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": index, "delta": delta}
        return self.event("content_block_delta", data)

    def _stop(self, index: int) -> bytes:
        return self.event("content_block_stop", {"type": "content_block_stop", "index": index})

    def head(self) -> Iterator[bytes]:
        job = self.job
        start = {"type": "message_start", "message": message_of(job, [], done=False)}
        yield self.event("message_start", start)
        ping = self.event("ping", {"type": "ping"})
        if job.thinking:
            yield self._start(0, {"type": "thinking", "thinking": ""})
            yield ping
            for text in THINKING:
                yield self._delta(0, {"type": "thinking_delta", "thinking": text})
            sign = {"type": "signature_delta", "signature": signature("".join(THINKING))}
            yield self._delta(0, sign)
            yield self._stop(0)
        if not self.answers:
            if not job.thinking:
                yield ping
            return
        if job.tool is None:
            yield self._start(self.index, {"type": "text", "text": ""})
        else:
            block = {"type": "tool_use", "id": f"toolu_{job.serial}", "name": job.tool}
            yield self._start(self.index, {**block, "input": {}})
        if not job.thinking:
            yield ping

    def content(self, k: int) -> bytes:
        job = self.job
        if job.tool is None:
            return self._delta(self.index, {"type": "text_delta", "text": piece(job.first + k)})
        delta = {"type": "input_json_delta", "partial_json": job.pieces[k]}
        return self._delta(self.index, delta)

    def malformed(self, k: int) -> bytes:
        whole = self.content(k)
        data = whole[whole.index(b"data: ") + 6 : -2]
        return b"event: content_block_delta\ndata: " + data[: len(data) // 2] + b"\n\n"

    def error(self) -> bytes:
        error = {"type": "overloaded_error", "message": "Overloaded"}
        return self.event("error", {"type": "error", "error": error})

    def tail(self, done: bool) -> Iterator[bytes]:
        job = self.job
        if self.answers:
            yield self._stop(self.index)
        delta = {"stop_reason": STOP[job.finish], "stop_sequence": None}
        usage = {"output_tokens": job.completion_tokens}
        yield self.event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        yield self.event("message_stop", {"type": "message_stop"})
