"""What one attempt sends and how it reads the answer, by the client's dialect and
the deployment's kind.

- The fast path: the client speaks the kind's own dialect. Its body goes as it
  came (the model replaced) and the answer comes back as its bytes, read only
  for usage (OpenAI streams by `StreamState`, others by `NativeStream`).
- Otherwise the client's body is read into the canonical request once per
  request (`Call.canonical`), the kind writes its own request from it, and the
  answer is read into canonical form and written in the client's dialect
  (`TranslatedStream` for a stream).
- Embeddings are always read and written through the canonical model.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from data_plane.pipeline.call import Call
from data_plane.providers import Adapter, Connection, UpstreamRequest
from data_plane.translate import openai_embeddings
from data_plane.translate.dialect import StreamWriter
from data_plane.translate.model import Response, Usage
from data_plane.transport.attempt import Whole, openai_answer
from data_plane.transport.stream import StreamState
from data_plane.transport.translated import NativeStream, TranslatedStream
from shared.errors import BadRequest, echo
from shared.routing import Deployment

__all__ = ["Prepared", "Relayed", "prepare"]

Relayed = StreamState | TranslatedStream | NativeStream


_OPENAI, _NATIVE, _TRANSLATED = range(3)  # the paths an attempt takes


class Prepared:
    """One attempt's request, and how to read its answer (a stream, or whole)."""

    __slots__ = ("adapter", "call", "path", "read_whole", "request")

    def __init__(
        self,
        request: UpstreamRequest,
        call: Call,
        adapter: Adapter,
        path: int,
        read_whole: Callable[[bytes], Whole] | None = None,
    ) -> None:
        self.request, self.call, self.adapter, self.path = request, call, adapter, path
        self.read_whole = read_whole

    def stream(self) -> Relayed:
        """A reader (and writer) of the answer streamed, for this attempt."""
        call, adapter = self.call, self.adapter
        if self.path == _OPENAI:
            route = call.route
            continuation = route is not None and route.continuation
            return StreamState(call.wants_usage, continuation, call.choices)
        if self.path == _NATIVE:
            return NativeStream(adapter.stream_reader)
        if self.path == _TRANSLATED:
            return TranslatedStream(adapter.stream_reader, partial(_writer, call))
        raise BadRequest("Embeddings are not streamed.", param="stream")

    def read(self, body: bytes) -> Whole:
        """A whole answer: the body for the client and its usage."""
        if self.read_whole is not None:
            return self.read_whole(body)
        answer = self.adapter.response(body)
        if self.path == _TRANSLATED:
            return _usage(answer, self.call.dialect.response(answer, self.call.model))
        return _usage(answer, body)


def prepare(
    call: Call, adapter: Adapter, conn: Connection, deployment: Deployment, body: dict[str, Any]
) -> Prepared:
    model = deployment.upstream_model
    if call.operation == "embeddings":
        return _embeddings(call, adapter, conn, model)
    if adapter.native_request is not None and adapter.wire == call.dialect.name:
        request = adapter.native_request(conn, model, body, call.stream)
        if adapter.wire == "openai":
            return Prepared(request, call, adapter, _OPENAI, openai_answer)
        return Prepared(request, call, adapter, _NATIVE)
    request = adapter.request(conn, model, call.canonical(body))
    return Prepared(request, call, adapter, _TRANSLATED)


def _writer(call: Call) -> StreamWriter:
    return call.dialect.stream_writer(call.model, call.wants_usage)


def _usage(answer: Response, body: bytes) -> Whole:
    usage = answer.usage
    if usage is None:
        return Whole(body, None, None)
    return Whole(body, usage.input_tokens, usage.output_tokens)


def _embeddings(call: Call, adapter: Adapter, conn: Connection, model: str) -> Prepared:
    if adapter.embeddings_request is None or adapter.embeddings_response is None:
        raise BadRequest(
            f"The model `{echo(call.model)}` is not an embeddings model.", param="model"
        )
    asked = call.embeddings_request()
    read_answer = adapter.embeddings_response
    estimate = call.estimate

    def read(body: bytes) -> Whole:
        answer = read_answer(body)
        if answer.usage is None:  # the upstream does not count (Gemini): the estimate
            answer.usage = Usage(input_tokens=estimate)
        out = openai_embeddings.write_response(answer, call.model, call.encoding_format)
        return Whole(out, answer.usage.input_tokens, 0)

    return Prepared(adapter.embeddings_request(conn, model, asked), call, adapter, -1, read)
