"""Server-sent events framing: bytes to events and back, in one place."""

from __future__ import annotations

__all__ = ["DONE", "SSEDecoder", "complete", "frame"]

DONE = b"[DONE]"


def frame(data: bytes) -> bytes:
    """One `data:` event (single-line data, as LLM providers send)."""
    return b"data: " + data + b"\n\n"


def complete(buffer: bytes) -> tuple[bytes, bytes]:
    """`buffer` split after its last complete event (a blank line ends one): the
    events, and the rest."""
    end = 0
    for blank in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        at = buffer.rfind(blank)
        if at >= 0:
            end = max(end, at + len(blank))
    return buffer[:end], buffer[end:]


class SSEDecoder:
    """Incremental decoder: feed it bytes as they arrive, get the `data` of complete events.

    Follows the WHATWG rules that matter here: lines end in LF, CRLF or CR; an
    event ends at a blank line; multi-line `data` is joined with LF; comments
    (`:`) and other fields are ignored.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        return self.feed_raw(chunk)[0]

    def feed_raw(self, chunk: bytes) -> tuple[list[bytes], bytes | None]:
        """The `data` of the complete events, and, when those events are exactly
        `frame(data)` each (nothing but one `data: ` line apiece), their bytes as
        they came: a relay can pass them on without framing them again."""
        text = self._buffer + chunk
        if not self._data and b"\r" not in text:
            # OpenAI's: `data: …` single-line events and nothing else, LF line ends:
            # one split (each event's two line ends are its only ones)
            end = text.rfind(b"\n\n") + 2
            if end == 1:  # no event complete yet
                if b"\n" not in text:
                    self._buffer = text
                    return [], b""
            elif text.startswith(b"data: "):
                whole, rest = (text, b"") if end == len(text) else (text[:end], text[end:])
                if b"\n" not in rest:
                    events = whole[6:-2].split(b"\n\ndata: ")
                    if 2 * len(events) == whole.count(b"\n"):
                        self._buffer = rest
                        return events, whole
            # what others send too: single-line events after an `event:` line
            # (Anthropic's), LF line ends
            *blocks, rest = text.split(b"\n\n")
            if b"\n" not in rest:
                events = []
                plain = True
                for block in blocks:
                    if block.startswith(b"event:"):  # `event: <name>` then one data line
                        block = block[block.find(b"\n") + 1 :]
                        plain = False
                    if not block.startswith(b"data: ") or b"\n" in block:
                        break
                    events.append(block[6:])
                else:
                    self._buffer = rest
                    return events, (text[: len(text) - len(rest)] if plain else None)
        return self._feed_lines(text), None

    def _feed_lines(self, text: bytes) -> list[bytes]:
        held = b""
        if text.endswith(b"\r"):  # maybe half of a CRLF: wait for the next byte
            text, held = text[:-1], b"\r"
        events: list[bytes] = []
        lines = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._buffer = lines.pop() + held
        for line in lines:
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events
