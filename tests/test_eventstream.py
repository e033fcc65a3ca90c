"""AWS event-stream framing: frames out of bytes split anywhere, and corrupt frames."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from botocore.eventstream import EventStreamBuffer

from shared.eventstream import EventStreamDecoder, Frame, FramingError
from tests.fakes.eventstream_encode import encode_event, encode_exception
from tests.fixtures.bedrock import make_streams

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
STREAM = (FIXTURES / "converse_stream.bin").read_bytes()


def test_the_fixtures_are_what_the_script_writes() -> None:
    assert make_streams.converse_stream() == STREAM
    throttled = (FIXTURES / "converse_stream_throttled.bin").read_bytes()
    assert make_streams.converse_stream_throttled() == throttled


def test_frames_of_a_whole_stream() -> None:
    frames = EventStreamDecoder().feed(STREAM)
    assert [f.event_type for f in frames] == [kind for kind, _ in make_streams.STREAM]
    assert {f.message_type for f in frames} == {"event"}
    assert all(f.exception_type is None for f in frames)
    assert frames[0].payload.startswith(b'{"role":"assistant","p":"')


def test_split_at_every_byte_gives_the_same_frames() -> None:
    whole = EventStreamDecoder().feed(STREAM)
    for cut in range(len(STREAM) + 1):
        decoder = EventStreamDecoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == whole
    decoder = EventStreamDecoder()
    assert [f for i in range(len(STREAM)) for f in decoder.feed(STREAM[i : i + 1])] == whole


def test_an_exception_frame() -> None:
    raw = encode_exception("throttlingException", b'{"message":"slow down"}')
    assert EventStreamDecoder().feed(raw) == [
        Frame("", "exception", "throttlingException", b'{"message":"slow down"}')
    ]


def test_the_encoder_writes_what_botocore_reads() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_event("messageStop", b'{"stopReason":"end_turn"}'))
    (message,) = list(buffer)
    assert message.headers == {
        ":event-type": "messageStop",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == b'{"stopReason":"end_turn"}'


def test_a_bad_message_crc_raises_with_the_good_frames_before_it() -> None:
    first = encode_event("messageStart", b'{"role":"assistant"}')
    second = bytearray(encode_event("contentBlockDelta", b'{"delta":{"text":"hi"}}'))
    second[-6] ^= 0xFF  # a payload byte: the message CRC no longer matches
    decoder = EventStreamDecoder()
    with pytest.raises(FramingError, match="corrupt event-stream frame") as caught:
        decoder.feed(first + bytes(second))
    assert [f.event_type for f in caught.value.frames] == ["messageStart"]


def test_a_bad_prelude_raises() -> None:
    raw = bytearray(encode_event("messageStart", b"{}"))
    struct.pack_into("!I", raw, 4, 1 << 30)  # a header length past any limit
    with pytest.raises(FramingError):
        EventStreamDecoder().feed(bytes(raw))
