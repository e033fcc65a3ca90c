"""Streams read through an upstream kind's reader (canonical events).

`TranslatedStream`: the client speaks another dialect than the upstream; each
read is turned into canonical events by the kind's `StreamReader` and written
in the client's dialect by its `StreamWriter`.

`NativeStream`: the client speaks the upstream's own dialect and is not OpenAI's
(whose fast path is `StreamState`): the bytes are relayed as they came, up to
the last complete event (`shared.sse.complete`), and read only for what the
gateway must know (usage, the finish, an error event, which the client has
then already received in its own dialect).

Both say what `StreamState` says to the relay: events read, malformed ones,
whether the answer finished, its error, its usage. Neither can be continued on
another deployment.
"""

from __future__ import annotations

from collections.abc import Callable

from data_plane.providers.base import StreamReader
from data_plane.translate.dialect import StreamWriter
from data_plane.translate.model import Delta, Event, Finish, Start, StreamError, UsageEvent
from shared.errors import GatewayError, UpstreamError
from shared.sse import complete

__all__ = ["NativeStream", "TranslatedStream"]


class _Read:
    """What the canonical events of one stream have said."""

    __slots__ = (
        "completion_tokens",
        "content_events",
        "error",
        "error_relayed",
        "events",
        "finished",
        "make_reader",
        "prompt_tokens",
        "reader",
    )

    continuable = False
    continuing = False
    prefill_events = 0

    def __init__(self, make_reader: Callable[[], StreamReader]) -> None:
        self.make_reader = make_reader
        self.reader = make_reader()
        self.events = 0
        self.content_events = 0
        self.finished = False
        self.error: GatewayError | None = None
        self.error_relayed = False
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    @property
    def malformed(self) -> int:
        return self.reader.malformed

    def pristine(self) -> bool:
        return not (self.events or self.reader.malformed)

    def attempt(self) -> None:
        self.reader = self.make_reader()

    def _note(self, events: list[Event]) -> list[Event]:
        """Tally the events; those before an error event (and not after it)."""
        self.events += len(events)
        for n, event in enumerate(events):
            if type(event) is Delta:
                if event.kind == "text" or event.kind == "arguments":
                    self.content_events += 1
            elif type(event) is UsageEvent:
                self.prompt_tokens = event.usage.input_tokens
                self.completion_tokens = event.usage.output_tokens
            elif type(event) is Finish:
                self.finished = True
            elif type(event) is Start:
                if event.usage is not None and self.prompt_tokens is None:
                    self.prompt_tokens = event.usage.input_tokens
            elif type(event) is StreamError:
                self.error = event.error
                return events[:n]
        return events

    def _began_malformed(self, events: list[Event]) -> None:
        if not events and self.reader.malformed and self.error is None:
            raise UpstreamError(
                "The upstream's stream began with a malformed event.", code="upstream_malformed"
            )


class TranslatedStream(_Read):
    __slots__ = ("make_writer", "writer")

    def __init__(
        self, make_reader: Callable[[], StreamReader], make_writer: Callable[[], StreamWriter]
    ) -> None:
        super().__init__(make_reader)
        self.make_writer = make_writer
        self.writer = make_writer()

    def fresh(self) -> TranslatedStream:
        return TranslatedStream(self.make_reader, self.make_writer)

    def first(self, chunk: bytes) -> bytes:
        events = self._note(self.reader.feed(chunk))
        self._began_malformed(events)
        return self.writer.write(events) if events else b""

    def feed(self, chunk: bytes) -> bytes:
        events = self._note(self.reader.feed(chunk))
        return self.writer.write(events) if events else b""

    def close(self) -> bytes:
        return self.writer.close()


class NativeStream(_Read):
    __slots__ = ("held",)

    def __init__(self, make_reader: Callable[[], StreamReader]) -> None:
        super().__init__(make_reader)
        self.held = b""

    def fresh(self) -> NativeStream:
        return NativeStream(self.make_reader)

    def attempt(self) -> None:
        super().attempt()
        self.held = b""

    def first(self, chunk: bytes) -> bytes:
        events = self._note(self.reader.feed(chunk))
        self._began_malformed(events)
        if not self.events:  # nothing for the client yet (a ping, half an event)
            self.held += chunk
            return b""
        return self._relay(chunk)

    def feed(self, chunk: bytes) -> bytes:
        self._note(self.reader.feed(chunk))
        return self._relay(chunk)

    def _relay(self, chunk: bytes) -> bytes:
        ready, self.held = complete(self.held + chunk)
        if self.error is not None:
            self.error_relayed = True  # the upstream's own error event, in the client's dialect
        return ready

    @staticmethod
    def close() -> bytes:
        return b""
