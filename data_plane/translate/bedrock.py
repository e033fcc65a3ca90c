"""Amazon Bedrock's Converse API (`/model/{id}/converse`): an upstream kind only, so
canonical -> its request and its answer -> canonical. The stream (`converse-stream`,
AWS event-stream frames) is read by `bedrock_stream.Reader`.

What the canonical request carries and Converse does not, handled here:
- `tool_choice` mode `none` with tools is refused (Converse has no "none"; without
  tools it needs no choice and sends none). `parallel` False is ignored.
- `user` is ignored: Converse has no end-user field, and it is not content.
- An image by URL, or in a format other than png, jpeg, gif and webp, is refused;
  `reasoning_effort` is refused (`thinking_budget` goes to Claude's own field).

Usage: Converse's `inputTokens` excludes the tokens read from or written to the
prompt cache (`cacheReadInputTokens`, `cacheWriteInputTokens`), as Anthropic's
`input_tokens` does; the canonical `input_tokens` is their sum.
"""

from __future__ import annotations

from typing import Any

import msgspec

from data_plane.translate.model import (
    Image,
    Part,
    Request,
    Response,
    StopReason,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    Usage,
)
from data_plane.translate.upstream_errors import Said, malformed, no_reasoning_effort
from shared.errors import BadRequest

__all__ = ["WireUsage", "read_response", "said", "stop_reason", "usage", "write_request"]

_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
_STOPS: dict[str, StopReason] = {
    "end_turn": "end",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


# -- the request ------------------------------------------------------------------


def write_request(req: Request, model: str) -> dict[str, Any]:
    """A Converse body (the same for `converse-stream`); the model goes in the URL."""
    no_reasoning_effort(req.reasoning_effort)
    messages = []
    for i, message in enumerate(req.messages):
        content = [  # Converse refuses blank text; an empty one says nothing
            _block(part, req.place(i, j))
            for j, part in enumerate(message.content)
            if not (isinstance(part, Text) and not part.text)
        ]
        messages.append({"role": message.role, "content": content})
    body: dict[str, Any] = {"messages": messages}
    system = [{"text": t.text} for t in req.system if t.text]
    if system:
        body["system"] = system
    config: dict[str, Any] = {}
    if req.max_tokens is not None:
        config["maxTokens"] = req.max_tokens
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.stop:
        config["stopSequences"] = req.stop
    if config:
        body["inferenceConfig"] = config
    choice = req.tool_choice
    if req.tools:
        tools = []
        for tool in req.tools:
            spec: dict[str, Any] = {"name": tool.name}
            if tool.description:
                spec["description"] = tool.description
            spec["inputSchema"] = {"json": tool.parameters or {"type": "object", "properties": {}}}
            tools.append({"toolSpec": spec})
        tool_config: dict[str, Any] = {"tools": tools}
        if choice is not None:
            if choice.mode == "none":
                raise BadRequest(
                    "A tool choice of `none` is not supported by this model's upstream; "
                    "send no tools instead.",
                    param="tool_choice",
                )
            if choice.mode == "auto":
                tool_config["toolChoice"] = {"auto": {}}
            elif choice.mode == "required":
                tool_config["toolChoice"] = {"any": {}}
            else:
                if not choice.name:
                    raise BadRequest("A tool choice of one tool must name it.", param="tool_choice")
                tool_config["toolChoice"] = {"tool": {"name": choice.name}}
        body["toolConfig"] = tool_config
    elif choice is not None and choice.mode in ("required", "tool"):
        raise BadRequest("A tool choice needs tools to choose from.", param="tool_choice")
    if req.thinking_budget is not None:
        body["additionalModelRequestFields"] = {
            "thinking": {"type": "enabled", "budget_tokens": req.thinking_budget}
        }
    return body


def _block(part: Part, param: str) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"text": part.text}
    if isinstance(part, Image):
        return {"image": _image(part, param)}
    if isinstance(part, Thinking):
        if part.redacted is not None:
            return {"reasoningContent": {"redactedContent": part.redacted}}
        text: dict[str, Any] = {"text": part.text}
        if part.signature is not None:
            text["signature"] = part.signature
        return {"reasoningContent": {"reasoningText": text}}
    if isinstance(part, ToolCall):
        args = part.input(param)
        return {"toolUse": {"toolUseId": part.id, "name": part.name, "input": args}}
    return {"toolResult": _result(part, param)}


def _result(part: ToolResult, param: str) -> dict[str, Any]:
    content = [
        {"text": item.text}
        if isinstance(item, Text)
        else {"image": _image(item, f"{param}.content[{k}]")}
        for k, item in enumerate(part.content)
    ]
    return {
        "toolUseId": part.call_id,
        "content": content,
        "status": "error" if part.is_error else "success",
    }


def _image(image: Image, param: str) -> dict[str, Any]:
    if image.data is None:
        raise BadRequest(
            "Images by URL are not supported by this upstream; send them inline.", param=param
        )
    image_format = _FORMATS.get((image.media_type or "").lower())
    if image_format is None:
        raise BadRequest("This upstream takes images in png, jpeg, gif or webp only.", param=param)
    # a blob travels in JSON as base64, as the canonical image already is
    return {"format": image_format, "source": {"bytes": image.data}}


# -- the answer -------------------------------------------------------------------


class WireUsage(msgspec.Struct, rename="camel"):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0


def usage(u: WireUsage) -> Usage:
    return Usage(
        input_tokens=u.input_tokens + u.cache_read_input_tokens + u.cache_write_input_tokens,
        output_tokens=u.output_tokens,
        cached_input_tokens=u.cache_read_input_tokens,
        cache_write_tokens=u.cache_write_input_tokens,
    )


def stop_reason(reason: str) -> StopReason:
    return _STOPS.get(reason, "end")


class _ToolUse(msgspec.Struct, rename="camel"):
    tool_use_id: str
    name: str
    input: Any = None


class _ReasoningText(msgspec.Struct):
    text: str = ""
    signature: str | None = None


class _Reasoning(msgspec.Struct, rename="camel"):
    reasoning_text: _ReasoningText | None = None
    redacted_content: str | None = None


class _Block(msgspec.Struct, rename="camel"):
    text: str | None = None
    tool_use: _ToolUse | None = None
    reasoning_content: _Reasoning | None = None


class _Message(msgspec.Struct):
    content: list[_Block] = []


class _Output(msgspec.Struct):
    message: _Message


class _Answer(msgspec.Struct, rename="camel"):
    output: _Output
    stop_reason: str = "end_turn"
    usage: WireUsage | None = None


_decode_answer = msgspec.json.Decoder(_Answer).decode
_encode = msgspec.json.Encoder().encode


def read_response(body: bytes) -> Response:
    """A Converse answer. It carries neither an id nor the model: both are empty."""
    try:
        answer = _decode_answer(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed() from None
    content: list[Part] = []
    for block in answer.output.message.content:
        if block.text is not None:
            content.append(Text(block.text))
        elif block.tool_use is not None:
            call = block.tool_use
            arguments = _encode(call.input if call.input is not None else {}).decode()
            content.append(ToolCall(call.tool_use_id, call.name, arguments))
        elif block.reasoning_content is not None:
            reasoning = block.reasoning_content
            if reasoning.reasoning_text is not None:
                content.append(
                    Thinking(reasoning.reasoning_text.text, reasoning.reasoning_text.signature)
                )
            elif reasoning.redacted_content is not None:
                content.append(Thinking(redacted=reasoning.redacted_content))
    return Response(
        id="",
        model="",
        content=content,
        stop_reason=stop_reason(answer.stop_reason),
        usage=usage(answer.usage) if answer.usage else None,
    )


# -- errors -------------------------------------------------------------------------


class _ErrorBody(msgspec.Struct):
    message: str | None = None
    Message: str | None = None  # some AWS services capitalise it


_decode_error = msgspec.json.Decoder(_ErrorBody).decode


def said(body: bytes) -> Said:
    """`{"message": "..."}`: the type travels in a header (x-amzn-ErrorType) only."""
    try:
        parsed = _decode_error(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Said()
    return Said(message=parsed.message or parsed.Message)
