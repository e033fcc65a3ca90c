"""Anthropic's Messages API (`POST /v1/messages`): requests and whole answers.

Reading a client's request (`read_request`) accepts what the canonical model can
carry and refuses the rest with `BadRequest` naming it; `cache_control` marks
(on the body, system blocks, content blocks and tools) are accepted and dropped,
since they only tune Anthropic's prompt cache. A field set to null (or false, for
an unknown flag) counts as absent. Writing a request for an Anthropic upstream
(`write_request`) merges consecutive messages of one role (Anthropic requires
turns to alternate) and defaults `max_tokens`, which Anthropic requires, to
`DEFAULT_MAX_TOKENS` (more if a thinking budget needs it).

Usage: Anthropic's `input_tokens` excludes the tokens read from or written to the
prompt cache; the canonical `input_tokens` is their sum.

The stream's reader and writer are in `anthropic_stream`, errors in
`anthropic_errors`.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from data_plane.translate.anthropic_request import read_request
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
from data_plane.translate.upstream_errors import malformed, no_reasoning_effort
from shared.errors import BadRequest

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "WireBlock",
    "WireUsage",
    "block_part",
    "message_id",
    "read_request",
    "read_response",
    "stop_from",
    "stop_to",
    "usage_from",
    "usage_to",
    "write_request",
    "write_response",
]

DEFAULT_MAX_TOKENS = 4096

_encode = msgspec.json.Encoder().encode
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode

_STOP_FROM: dict[str, StopReason] = {
    "end_turn": "end",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "end",
    "refusal": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}
_STOP_TO: dict[StopReason, str] = {
    "end": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "content_filter": "refusal",
}


def stop_from(reason: str | None) -> StopReason:
    """Anthropic's `stop_reason` as canonical (an unknown or missing one: `end`)."""
    return _STOP_FROM.get(reason or "", "end")


def stop_to(reason: StopReason) -> str:
    return _STOP_TO[reason]


def usage_from(
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read: int | None,
    cache_write: int | None,
    reasoning: int | None = None,
) -> Usage:
    read, write = cache_read or 0, cache_write or 0
    return Usage(
        input_tokens=(input_tokens or 0) + read + write,
        output_tokens=output_tokens or 0,
        cached_input_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning or 0,
    )


def usage_to(usage: Usage | None) -> dict[str, int]:
    """Anthropic's `usage` object for a canonical usage (zeros if None)."""
    if usage is None:
        usage = Usage()
    uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(uncached, 0),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
    }


def message_id(upstream_id: str) -> str:
    """An Anthropic-looking message id (`msg_…`), keeping the upstream's id in it."""
    if upstream_id.startswith("msg_"):
        return upstream_id
    return "msg_" + (upstream_id or secrets.token_hex(12))


# -- requests, upstream side ------------------------------------------------------


def write_request(req: Request, model: str) -> dict[str, Any]:
    """The canonical request as an Anthropic Messages body for `model`."""
    no_reasoning_effort(req.reasoning_effort)
    max_tokens = req.max_tokens
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
        if req.thinking_budget is not None and req.thinking_budget >= max_tokens:
            max_tokens = req.thinking_budget + DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": _write_messages(req),
    }
    if len(req.system) == 1:
        body["system"] = req.system[0].text
    elif req.system:
        body["system"] = [{"type": "text", "text": t.text} for t in req.system]
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.tools:
        body["tools"] = [_write_tool(t.name, t.description, t.parameters) for t in req.tools]
    choice = _write_tool_choice(req)
    if choice is not None:
        body["tool_choice"] = choice
    if req.user is not None:
        body["metadata"] = {"user_id": req.user}
    if req.thinking_budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": req.thinking_budget}
    if req.stream:
        body["stream"] = True
    return body


def _write_tool(name: str, description: str | None, parameters: dict[str, Any]) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name}
    if description:
        tool["description"] = description
    tool["input_schema"] = parameters or {"type": "object", "properties": {}}
    return tool


def _write_tool_choice(req: Request) -> dict[str, Any] | None:
    tc = req.tool_choice
    if tc is None:
        return None
    if not req.tools and tc.mode in ("auto", "none"):
        return None  # Anthropic's defaults without tools; it refuses a choice without them
    choice: dict[str, Any]
    if tc.mode == "tool":
        if not tc.name:
            raise BadRequest("A tool choice of one tool must name it.", param="tool_choice")
        choice = {"type": "tool", "name": tc.name}
    else:
        choice = {"type": {"auto": "auto", "none": "none", "required": "any"}[tc.mode]}
    if tc.parallel is False and tc.mode != "none":
        choice["disable_parallel_tool_use"] = True
    return choice


def _write_messages(req: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(req.messages):
        blocks = [
            block
            for j, part in enumerate(message.content)
            if (block := _write_part(part, req.place(i, j))) is not None
        ]
        if out and out[-1]["role"] == message.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": message.role, "content": blocks})
    for turn in out:
        if turn["role"] == "user":  # tool results first, as Anthropic requires
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return out


def _write_part(part: Part, param: str) -> dict[str, Any] | None:
    if isinstance(part, Text):
        # Anthropic refuses empty text blocks; an empty text says nothing
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, Image):
        return _write_image(part, param)
    if isinstance(part, ToolCall):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.input(param)}
    if isinstance(part, ToolResult):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id}
        content = [
            _write_text_or_image(item, f"{param}.content[{k}]")
            for k, item in enumerate(part.content)
        ]
        if content:
            block["content"] = content
        if part.is_error:
            block["is_error"] = True
        return block
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    if part.signature is None:
        # reasoning another kind of upstream wrote: Anthropic accepts thinking only
        # with its own signature, and earlier turns' thinking may be left out
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _write_text_or_image(item: Text | Image, param: str) -> dict[str, Any]:
    if isinstance(item, Text):
        return {"type": "text", "text": item.text}
    return _write_image(item, param)


def _write_image(image: Image, param: str) -> dict[str, Any]:
    if image.url is not None:
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    if image.data is None or not image.media_type:
        raise BadRequest("An image needs its data and media type, or a URL.", param=param)
    source = {"type": "base64", "media_type": image.media_type, "data": image.data}
    return {"type": "image", "source": source}


# -- whole answers -----------------------------------------------------------------


class WireOutputDetails(msgspec.Struct):
    thinking_tokens: int | None = None


class WireUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: WireOutputDetails | None = None

    def canonical(self) -> Usage:
        details = self.output_tokens_details
        return usage_from(
            self.input_tokens,
            self.output_tokens,
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
            details.thinking_tokens if details else None,
        )


class WireBlock(msgspec.Struct):
    type: str
    text: str = ""
    thinking: str = ""
    signature: str | None = None
    data: str | None = None
    id: str = ""
    name: str = ""
    input: msgspec.Raw = msgspec.Raw(b"{}")


class _Message(msgspec.Struct):
    id: str
    model: str = ""
    content: list[WireBlock] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: WireUsage | None = None


_decode_message = msgspec.json.Decoder(_Message).decode


def block_part(block: WireBlock) -> Text | Thinking | ToolCall | None:
    """A content block as a canonical part (None: a kind of block it has no place for)."""
    if block.type == "text":
        return Text(block.text)
    if block.type == "tool_use":
        return ToolCall(block.id, block.name, bytes(block.input).decode())
    if block.type == "thinking":
        return Thinking(block.thinking, block.signature)
    if block.type == "redacted_thinking":
        return Thinking(redacted=block.data or "")
    return None


def read_response(body: bytes) -> Response:
    try:
        message = _decode_message(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed() from None
    content: list[Part] = [p for b in message.content if (p := block_part(b)) is not None]
    return Response(
        id=message.id,
        model=message.model,
        content=content,
        stop_reason=stop_from(message.stop_reason),
        stop_sequence=message.stop_sequence,
        usage=message.usage.canonical() if message.usage else None,
    )


def write_response(resp: Response, model: str) -> bytes:
    """The canonical answer as Anthropic's `message` object, named `model`."""
    content: list[dict[str, Any]] = []
    for part in resp.content:
        if isinstance(part, Text):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, Thinking):
            if part.redacted is not None:
                content.append({"type": "redacted_thinking", "data": part.redacted})
            else:
                signature = part.signature or ""
                content.append({"type": "thinking", "thinking": part.text, "signature": signature})
        elif isinstance(part, ToolCall):
            content.append(
                {"type": "tool_use", "id": part.id, "name": part.name, "input": _answer_input(part)}
            )
    return _encode(
        {
            "id": message_id(resp.id),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_to(resp.stop_reason),
            "stop_sequence": resp.stop_sequence,
            "usage": usage_to(resp.usage),
        }
    )


def _answer_input(call: ToolCall) -> dict[str, Any]:
    try:
        return _decode_object(call.arguments) if call.arguments.strip() else {}
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed() from None
