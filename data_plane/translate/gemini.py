"""Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`; its
embeddings are in `gemini_embeddings`): an upstream kind only, so canonical -> its request and its
answers -> canonical.

What the canonical request carries and Gemini does not, handled here:
- `Thinking` parts in the history are dropped: Gemini takes no reasoning back
  (its thought signatures are not carried by the canonical model).
- `tool_choice.parallel` False is ignored: Gemini has no such switch.
- `user` is ignored: Gemini has no end-user field, and it is not content.
- An image by URL, or a tool result with an image, is refused; `reasoning_effort`
  is refused (Gemini takes a token budget: `thinking_budget`).
Gemini gives function calls no ids unless it has them; a missing one becomes
`call_<n>` (n counting the answer's calls from 0).
"""

from __future__ import annotations

from typing import Any

import msgspec

from data_plane.translate.model import (
    BlockStart,
    BlockStop,
    Delta,
    Event,
    Finish,
    Image,
    Part,
    Request,
    Response,
    Start,
    StopReason,
    StreamError,
    Text,
    Thinking,
    ToolCall,
    Usage,
    UsageEvent,
)
from data_plane.translate.upstream_errors import Said, from_upstream, malformed, no_reasoning_effort
from shared.errors import BadRequest, GatewayError
from shared.sse import SSEDecoder

__all__ = [
    "Reader",
    "read_response",
    "said",
    "write_request",
]

_encode = msgspec.json.Encoder().encode
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
_FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "LANGUAGE",
}


# -- the request ------------------------------------------------------------------


def write_request(req: Request, model: str) -> dict[str, Any]:
    """The body of a `generateContent` (or stream) call; the model goes in the URL."""
    no_reasoning_effort(req.reasoning_effort)
    names: dict[str, str] = {}  # tool call id -> function name, from earlier turns
    contents: list[dict[str, Any]] = []
    for i, message in enumerate(req.messages):
        parts = [
            part
            for j, item in enumerate(message.content)
            if (part := _part(item, req.place(i, j), names)) is not None
        ]
        if parts:
            role = "model" if message.role == "assistant" else "user"
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if req.system:
        body["systemInstruction"] = {"parts": [{"text": t.text} for t in req.system]}
    if req.tools:
        declarations = []
        for tool in req.tools:
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description:
                declaration["description"] = tool.description
            if tool.parameters:
                declaration["parametersJsonSchema"] = tool.parameters
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    if req.tool_choice is not None:
        calling: dict[str, Any] = {"mode": _MODES[req.tool_choice.mode]}
        if req.tool_choice.mode == "tool":
            if not req.tool_choice.name:
                raise BadRequest("A tool choice of one tool must name it.", param="tool_choice")
            calling["allowedFunctionNames"] = [req.tool_choice.name]
        body["toolConfig"] = {"functionCallingConfig": calling}
    config: dict[str, Any] = {}
    if req.max_tokens is not None:
        config["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.stop:
        config["stopSequences"] = req.stop
    if req.thinking_budget is not None:
        thinking: dict[str, Any] = {"thinkingBudget": req.thinking_budget}
        if req.thinking_budget > 0:
            thinking["includeThoughts"] = True
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    return body


def _part(part: Part, param: str, names: dict[str, str]) -> dict[str, Any] | None:
    if isinstance(part, Text):
        return {"text": part.text} if part.text else None
    if isinstance(part, Image):
        return _image(part, param)
    if isinstance(part, Thinking):
        return None
    if isinstance(part, ToolCall):
        args = part.input(param)
        names[part.id] = part.name
        return {"functionCall": {"name": part.name, "args": args, "id": part.id}}
    name = names.get(part.call_id)
    if name is None:
        raise BadRequest(
            "A tool result answers no earlier tool call (its id is unknown).",
            param=f"{param}.call_id",
        )
    texts = []
    for k, item in enumerate(part.content):
        if isinstance(item, Image):
            raise BadRequest(
                "Images in tool results are not supported by this upstream.",
                param=f"{param}.content[{k}]",
            )
        texts.append(item.text)
    key = "error" if part.is_error else "content"
    return {
        "functionResponse": {"name": name, "response": {key: "".join(texts)}, "id": part.call_id}
    }


def _image(image: Image, param: str) -> dict[str, Any]:
    if image.data is None:
        raise BadRequest(
            "Images by URL are not supported by this upstream; send them inline.", param=param
        )
    if not image.media_type:
        raise BadRequest("An inline image needs its media type.", param=param)
    return {"inlineData": {"mimeType": image.media_type, "data": image.data}}


# -- the answer -------------------------------------------------------------------


class _FunctionCall(msgspec.Struct):
    name: str
    args: dict[str, Any] = {}
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0


class _Feedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _Error(msgspec.Struct):
    code: int | None = None
    message: str | None = None
    status: str | None = None


class _Answer(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _Usage | None = None
    response_id: str = ""
    model_version: str = ""
    prompt_feedback: _Feedback | None = None
    error: _Error | None = None


_decode_answer = msgspec.json.Decoder(_Answer).decode


def _usage(u: _Usage) -> Usage:
    return Usage(
        input_tokens=u.prompt_token_count,
        output_tokens=u.candidates_token_count + u.thoughts_token_count,
        cached_input_tokens=u.cached_content_token_count,
        reasoning_tokens=u.thoughts_token_count,
    )


def _stop(reason: str | None, called: bool) -> StopReason:
    if reason == "MAX_TOKENS":
        return "max_tokens"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_use" if called else "end"


def read_response(body: bytes) -> Response:
    try:
        answer = _decode_answer(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed() from None
    if answer.error is not None:
        raise malformed()
    content: list[Part] = []
    reason: str | None = None
    if answer.candidates:
        candidate = answer.candidates[0]
        reason = candidate.finish_reason
        calls = 0
        for part in candidate.content.parts if candidate.content else []:
            if part.function_call is not None:
                call = part.function_call
                content.append(
                    ToolCall(call.id or f"call_{calls}", call.name, _encode(call.args).decode())
                )
                calls += 1
            elif part.text:
                if part.thought:
                    content.append(Thinking(text=part.text))
                else:
                    content.append(Text(part.text))
    elif answer.prompt_feedback is not None and answer.prompt_feedback.block_reason:
        reason = "SAFETY"  # the prompt was blocked: no candidate at all
    called = any(isinstance(p, ToolCall) for p in content)
    return Response(
        id=answer.response_id,
        model=answer.model_version,
        content=content,
        stop_reason=_stop(reason, called and reason in (None, "STOP")),
        usage=_usage(answer.usage_metadata) if answer.usage_metadata else None,
    )


class Reader:
    """One `streamGenerateContent?alt=sse` stream. Each event is a whole answer
    chunk: text and thought parts extend an open block of their kind; a function
    call arrives whole and becomes a complete tool call block."""

    def __init__(self) -> None:
        self.malformed = 0
        self._sse = SSEDecoder()
        self._started = False
        self._finished = False
        self._open: str | None = None  # "text" | "thinking": the open block's kind
        self._next = 0  # the next block's index
        self._calls = 0
        self._usage: Usage | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        for data in self._sse.feed(chunk):
            try:
                answer = _decode_answer(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.malformed += 1
                continue
            self._answer(answer, data, events)
        return events

    def _answer(self, answer: _Answer, data: bytes, events: list[Event]) -> None:
        if answer.error is not None:
            self._close(events)
            events.append(StreamError(_stream_error(answer.error, data)))
            return
        if not self._started:
            self._started = True
            # the first chunk's count is the prompt's: the answer's so far is not in it
            first = answer.usage_metadata
            prompt = None if first is None else Usage(input_tokens=first.prompt_token_count)
            events.append(Start(answer.response_id, answer.model_version, prompt))
        reason: str | None = None
        if answer.candidates:
            candidate = answer.candidates[0]
            for part in candidate.content.parts if candidate.content else []:
                self._part(part, events)
            reason = candidate.finish_reason
        elif answer.prompt_feedback is not None and answer.prompt_feedback.block_reason:
            reason = "SAFETY"
        if reason and not self._finished:
            self._finished = True
            self._close(events)
            called = self._calls > 0 and reason == "STOP"
            events.append(Finish(_stop(reason, called)))
        if answer.usage_metadata is not None:
            usage = _usage(answer.usage_metadata)
            # chunks before the last count the prompt alone (told by `Start`): no output
            # count yet is not zero output (what was streamed counts if the stream breaks)
            if usage != self._usage and (usage.output_tokens or self._finished):
                self._usage = usage
                events.append(UsageEvent(usage))

    def _part(self, part: _Part, events: list[Event]) -> None:
        if part.function_call is not None:
            self._close(events)
            call = part.function_call
            index = self._next
            self._next += 1
            call_id = call.id or f"call_{self._calls}"
            self._calls += 1
            events.append(BlockStart(index, ToolCall(call_id, call.name)))
            events.append(Delta(index, "arguments", _encode(call.args).decode()))
            events.append(BlockStop(index))
        elif part.text:  # an empty one (some last chunks have it) says nothing
            kind = "thinking" if part.thought else "text"
            if self._open != kind:
                self._close(events)
                self._open = kind
                self._next += 1
                block: Text | Thinking = Thinking() if part.thought else Text("")
                events.append(BlockStart(self._next - 1, block))
            events.append(Delta(self._next - 1, "thinking" if part.thought else "text", part.text))

    def _close(self, events: list[Event]) -> None:
        if self._open is not None:
            self._open = None
            events.append(BlockStop(self._next - 1))


def _stream_error(error: _Error, data: bytes) -> GatewayError:
    status = error.code if isinstance(error.code, int) and 400 <= error.code < 600 else 500
    return from_upstream(status, Said(message=error.message, type=error.status), data, None)


# -- errors -------------------------------------------------------------------------


class _ErrorBody(msgspec.Struct):
    error: _Error


_decode_error = msgspec.json.Decoder(_ErrorBody | list[_ErrorBody]).decode


def said(body: bytes) -> Said:
    """`{"error": {"code", "message", "status"}}` (a list of one, from a stream
    call without SSE); `status` (e.g. INVALID_ARGUMENT) becomes the error's code
    (its type stays the gateway's own, which every dialect knows)."""
    try:
        parsed = _decode_error(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Said()
    if isinstance(parsed, list):
        if not parsed:
            return Said()
        parsed = parsed[0]
    return Said(message=parsed.error.message, code=parsed.error.status)
