"""AWS event-stream framing (Bedrock's streamed answers): bytes to frames.

Binary framing lives here, as SSE framing lives in `shared/sse.py`. Each message
is a prelude (total and header lengths, CRC32), typed headers, a payload and a
CRC32 of the whole; `botocore.eventstream.EventStreamBuffer` checks and splits
them. A frame that fails its checks raises `FramingError`: after it the stream's
boundaries are lost, so a reader ends the stream with an error rather than
skipping a frame.
"""

from __future__ import annotations

from typing import NamedTuple

from botocore.eventstream import EventStreamBuffer, ParserError

__all__ = ["EventStreamDecoder", "Frame", "FramingError"]


class Frame(NamedTuple):
    event_type: str  # `:event-type` ("" for an exception)
    message_type: str  # `:message-type`: "event", "exception" (or "error")
    exception_type: str | None  # `:exception-type`, for exceptions
    payload: bytes


class FramingError(ValueError):
    """A frame's length or CRC is wrong: the rest of the stream cannot be read.
    `frames` holds the good frames that came before it in the same chunk."""

    def __init__(self, message: str, frames: list[Frame]) -> None:
        super().__init__(message)
        self.frames = frames


class EventStreamDecoder:
    """Incremental decoder: feed it bytes as they arrive, get the complete frames."""

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buffer.add_data(chunk)
        frames: list[Frame] = []
        try:
            for message in self._buffer:
                headers = message.headers
                frames.append(
                    Frame(
                        _text(headers.get(":event-type")),
                        _text(headers.get(":message-type")),
                        _text(headers.get(":exception-type")) or None,
                        message.payload,
                    )
                )
        except ParserError as exc:
            self._buffer = EventStreamBuffer()  # whatever follows cannot be framed
            raise FramingError(f"corrupt event-stream frame: {exc}", frames) from exc
        return frames


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
