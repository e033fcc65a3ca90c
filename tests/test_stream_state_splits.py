"""The OpenAI pass-through stream reader gives the same bytes to the client and
the same accounting however the upstream's bytes are cut into reads, whether it
writes compact or spaced JSON, and whichever of its paths (event by event, or a
read's events at once and relayed as their bytes) a read takes."""

from __future__ import annotations

import json
import random

import pytest

from data_plane.transport.stream import StreamState
from shared.sse import SSEDecoder, frame

HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def _events(spaced: bool) -> list[bytes]:
    separators = (", ", ": ") if spaced else (",", ":")
    chunks = [{**HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [
        {**HEAD, "choices": [{"index": 0, "delta": {"content": f" tok{i}"}}]} for i in range(12)
    ]
    chunks.append({**HEAD, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 7, "completion_tokens": 12, "total_tokens": 19}
    chunks.append({**HEAD, "choices": [], "usage": usage})
    return [json.dumps(c, separators=separators).encode() for c in chunks]


def _relayed(reads: list[bytes], wants_usage: bool) -> tuple[bytes, StreamState]:
    state = StreamState(wants_usage, keep_text=False)
    state.attempt()
    out = [state.first(reads[0])]
    out += [state.feed(read) for read in reads[1:]]
    return b"".join(out), state


@pytest.mark.parametrize("spaced", [False, True])
@pytest.mark.parametrize("wants_usage", [False, True])
def test_every_cut_gives_the_same_stream_and_usage(spaced: bool, wants_usage: bool) -> None:
    events = _events(spaced)
    raw = b"".join(frame(e) for e in events) + frame(b"[DONE]")
    expected = b"".join(frame(e) for e in (events if wants_usage else events[:-1]))
    for cut in range(1, len(raw)):
        for reads in ([raw[:cut], raw[cut:]], [raw[i : i + cut] for i in range(0, len(raw), cut)]):
            sent, state = _relayed(reads, wants_usage)
            assert sent == expected, cut
            assert (state.prompt_tokens, state.completion_tokens) == (7, 12)
            assert (state.finished, state.content_events, state.malformed) == (True, 12, 0)


def test_a_malformed_event_among_many_is_dropped_and_counted() -> None:
    events = _events(False)
    events.insert(5, b'{"choices": [')
    raw = b"".join(frame(e) for e in events)
    sent, state = _relayed([raw], wants_usage=True)
    assert sent == b"".join(frame(e) for e in events if e != b'{"choices": [')
    assert (state.malformed, state.completion_tokens, state.finished) == (1, 12, True)


def test_the_decoder_hands_back_the_bytes_of_plain_events_only() -> None:
    plain = frame(b'{"a":1}') + frame(b'{"b":2}') + b'data: {"c"'
    decoder = SSEDecoder()
    assert decoder.feed_raw(plain) == ([b'{"a":1}', b'{"b":2}'], plain[:-10])
    assert decoder.feed_raw(b":3}\n\n") == ([b'{"c":3}'], b'data: {"c":3}\n\n')
    named = b'event: x\ndata: {"a":1}\n\n'
    assert SSEDecoder().feed_raw(named) == ([b'{"a":1}'], None)  # not `frame(data)`
    rng = random.Random(7)
    raw = b"".join(frame(e) for e in _events(True))
    for _ in range(300):
        decoder, events = SSEDecoder(), []
        cuts = sorted(rng.sample(range(1, len(raw)), rng.randint(1, 12)))
        for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
            got, whole = decoder.feed_raw(raw[start:end])
            assert whole is None or whole == b"".join(frame(e) for e in got)
            events += got
        assert events == _events(True)
