"""The fake upstream's SSE answer: one ``write`` (so one HTTP chunk) per event.

A stream without stream faults goes through ``_events``; one with them through
``_events_with_faults``, which adds pauses (a ``float`` of seconds in the sequence), the
malformed event and the cut, so the plain path pays nothing for them. A pause ends early
when the client goes away or the fake stops, so that no request outlives its client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.openai_wire import FINGERPRINT, Job, encode, piece

__all__ = ["connected", "pause", "stream"]

_POLL = 0.02  # seconds between looks at the connection during a pause
_DONE = b"data: [DONE]\n\n"


class _Chunks:
    """Encodes the chunks of one stream, reusing one dict for all of them."""

    def __init__(self, head: dict[str, Any], usage: dict[str, Any], include_usage: bool) -> None:
        self.choice: dict[str, Any] = {
            "index": 0,
            "delta": {},
            "logprobs": None,
            "finish_reason": None,
        }
        head.update(object="chat.completion.chunk", service_tier="default")
        head.update(system_fingerprint=FINGERPRINT, choices=[self.choice])
        if include_usage:
            head["usage"] = None
        self.head, self.usage = head, usage

    def event(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        self.choice["delta"], self.choice["finish_reason"] = delta, reason
        return b"data: " + encode(self.head) + b"\n\n"

    def role(self) -> bytes:
        return self.event({"role": "assistant", "content": "", "refusal": None})

    def content(self, i: int) -> bytes:
        return self.event({"content": piece(i)})

    def malformed(self, i: int) -> bytes:
        """The chunk of piece ``i`` cut in the middle: starts like JSON, is not JSON."""
        whole = encode({**self.head, "choices": [{**self.choice, "delta": {"content": piece(i)}}]})
        return b"data: " + whole[: len(whole) // 2] + b"\n\n"

    def tail(self, job: Job, done: bool = True) -> Iterator[bytes]:
        yield self.event({}, job.finish)
        if job.include_usage:
            yield b"data: " + encode({**self.head, "choices": [], "usage": self.usage}) + b"\n\n"
        if done:
            yield _DONE


def _events(job: Job, chunks: _Chunks) -> Iterator[bytes | float]:
    yield chunks.role()
    for i in range(job.first, job.end):
        yield chunks.content(i)
    yield from chunks.tail(job)


def _point(after: int | None, count: int) -> int:
    return -1 if after is None else min(after, count)


def _events_with_faults(job: Job, chunks: _Chunks) -> Iterator[bytes | float]:
    faults, count = job.faults, job.end - job.first
    malformed = _point(faults.malformed_after, count)
    stall = _point(faults.stall_after, count)
    cut = _point(faults.fail_after, count)
    if faults.first_token_ms:
        yield faults.first_token_ms / 1000
    yield chunks.role()
    for sent in range(count + 1):
        if sent == malformed:
            yield chunks.malformed(job.first + sent)
        if sent == stall:
            yield faults.stall_ms / 1000
        if sent == cut:
            return
        if sent < count:
            yield chunks.content(job.first + sent)
    yield from chunks.tail(job, done=not faults.no_done)


def connected(request: web.Request) -> bool:
    return request.transport is not None and not request.transport.is_closing()


async def pause(request: web.Request, seconds: float, stopping: asyncio.Event) -> bool:
    """Wait ``seconds`` (``inf``: for ever); False if the client went away or the fake stopped.

    A handler that is not writing learns of a lost connection only by looking at it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while connected(request) and not stopping.is_set():
        left = deadline - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, _POLL))
    return False


async def stream(
    request: web.Request,
    entry: dict[str, Any],
    job: Job,
    head: dict[str, Any],
    usage: dict[str, Any],
    stopping: asyncio.Event,
) -> web.StreamResponse:
    """Write the answer of ``job`` as SSE; ``entry`` (its request log entry) learns how it went."""
    chunks = _Chunks(head, usage, job.include_usage)
    faults = job.faults
    faulty = faults.stream_faults()
    job.faulted |= faulty
    events = (_events_with_faults if faulty else _events)(job, chunks)
    drop = faults.fail_after is not None
    delay = faults.delay_ms / 1000
    entry.update(stream=True, disconnected=False, aborted=drop)
    resp = web.StreamResponse(headers={"Cache-Control": "no-cache"})
    resp.content_type = "text/event-stream"
    await resp.prepare(request)
    job.streamed = True
    sent = 0
    try:
        for frame in events:
            if isinstance(frame, float):
                if not await pause(request, frame, stopping):
                    raise ConnectionResetError("the client went away or the fake stopped")
                continue
            if sent and delay > 0:
                await asyncio.sleep(delay)
            await resp.write(frame)
            sent += 1
        if not drop:
            await resp.write_eof()
        elif request.transport is not None:
            request.transport.close()
    except ConnectionError:
        entry["disconnected"] = True
    finally:
        entry["events_sent"] = sent
    return resp
