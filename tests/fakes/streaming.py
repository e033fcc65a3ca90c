"""The fake upstream's streamed answer, for every kind: one ``write`` (one HTTP chunk) per event.

A kind frames its events with a ``Framer``; this module orders them and applies the stream
knobs. A stream without stream faults goes through ``_events``; one with them through
``_events_with_faults``, which adds pauses (a ``float`` of seconds in the sequence), the
malformed event, the in-stream error and the cut, so the plain path pays nothing for them.
A pause ends early when the client goes away or the fake stops, so that no request outlives
its client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Protocol

from aiohttp import web

from tests.fakes.tokens import Job

__all__ = ["Framer", "connected", "pause", "stream"]

_POLL = 0.02  # seconds between looks at the connection during a pause


class Framer(Protocol):
    """The events of one kind's stream of one job."""

    content_type: str
    count: int  # content events

    def head(self) -> Iterator[bytes]:
        """Events before the first content event."""
        ...

    def content(self, k: int) -> bytes:
        """The ``k``-th content event (0-based)."""
        ...

    def malformed(self, k: int) -> bytes:
        """The ``k``-th content event cut in the middle, framed as the kind frames."""
        ...

    def error(self) -> bytes:
        """The kind's in-stream error event."""
        ...

    def tail(self, done: bool) -> Iterator[bytes]:
        """Events after the last content event (``done``: False under ``no_done``)."""
        ...


def _events(job: Job, framer: Framer) -> Iterator[bytes | float]:
    yield from framer.head()
    for k in range(framer.count):
        yield framer.content(k)
    yield from framer.tail(True)


def _point(after: int | None, count: int) -> int:
    return -1 if after is None else min(after, count)


def _events_with_faults(job: Job, framer: Framer) -> Iterator[bytes | float]:
    faults, count = job.faults, framer.count
    malformed = _point(faults.malformed_after, count)
    stall = _point(faults.stall_after, count)
    error = _point(faults.error_after, count)
    cut = _point(faults.fail_after, count)
    if faults.first_token_ms:
        yield faults.first_token_ms / 1000
    yield from framer.head()
    for sent in range(count + 1):
        if sent == malformed:
            yield framer.malformed(sent)
        if sent == stall:
            yield faults.stall_ms / 1000
        if sent == error:
            yield framer.error()
            return
        if sent == cut:
            return
        if sent < count:
            yield framer.content(sent)
    yield from framer.tail(not faults.no_done)


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
    framer: Framer,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    """Write the answer of ``job``; ``entry`` (its request log entry) learns how it went."""
    faults = job.faults
    job.faulted |= faults.stream_faults()
    events = (_events_with_faults if faults.slow_stream() else _events)(job, framer)
    cut, error = _point(faults.fail_after, framer.count), _point(faults.error_after, framer.count)
    drop = cut >= 0 and not 0 <= error <= cut
    delay = faults.delay_ms / 1000
    split = faults.split_bytes
    entry.update(stream=True, disconnected=False, aborted=drop)
    resp = web.StreamResponse(headers={"Cache-Control": "no-cache"})
    resp.content_type = framer.content_type
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
            if split is None:
                await resp.write(frame)
            else:
                for at in range(0, len(frame), split):
                    await resp.write(frame[at : at + split])
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
