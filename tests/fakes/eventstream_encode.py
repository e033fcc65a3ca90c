"""AWS event-stream frames, written as Bedrock sends them (for fixtures and fakes)."""

from __future__ import annotations

import struct
import zlib

__all__ = ["encode_event", "encode_exception", "encode_frame"]


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # value type 7: a string, its length in two bytes
    return (
        struct.pack("!B", len(raw_name))
        + raw_name
        + b"\x07"
        + struct.pack("!H", len(raw_value))
        + raw_value
    )


def encode_frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One message: prelude (total length, headers length, CRC), headers, payload, CRC."""
    raw_headers = b"".join(_header(name, value) for name, value in headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", zlib.crc32(message))


def encode_event(event_type: str, payload: bytes) -> bytes:
    return encode_frame(
        [
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    return encode_frame(
        [
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
