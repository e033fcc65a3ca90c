"""OpenAI Chat Completions, both ways: the inbound dialect and the upstream kind.

Reading a client's body (`read_request`, in `openai_request`):
- `system` and `developer` messages become the canonical system prompt, wherever
  they stand: one in mid-conversation is folded into it, in order.
- `tool` messages become a user message of `ToolResult` parts; consecutive ones
  share one user message, and a user message right after them joins it.
- A message's `name` and a function tool's `strict` have no canonical place and
  are not carried; so is an image part's `detail`.
- Fields with a meaning canonical cannot carry are refused (BadRequest naming
  them) unless they hold their neutral value (`n: 1`, `logprobs: false`, …).

Writing an upstream body (`write_request`):
- Thinking parts of earlier assistant turns are left out (OpenAI has no way to
  take them back): the one thing dropped rather than refused. A tool result's
  `is_error` has no OpenAI field either and is not carried.
- The output cap goes out as `max_tokens`, which OpenAI-compatible servers
  (vLLM, llama.cpp, …) understand as well as OpenAI does.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from data_plane.translate.model import (
    Image,
    Message,
    Part,
    Request,
    Response,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from data_plane.translate.openai_request import read_request
from data_plane.translate.openai_stream import (
    FINISH_REASONS,
    STOP_REASONS,
    Reader,
    WireUsage,
    Writer,
    chunk_id,
    usage_from_wire,
    usage_to_wire,
)
from data_plane.translate.upstream_errors import Said, malformed
from shared.errors import BadRequest

__all__ = [
    "Reader",
    "Writer",
    "read_request",
    "read_response",
    "said",
    "write_request",
    "write_response",
]

_encode = msgspec.json.Encoder().encode


# -- canonical -> an upstream body -------------------------------------------------


def _text_content(parts: list[Text]) -> str | list[dict[str, Any]]:
    if len(parts) == 1:
        return parts[0].text
    return [{"type": "text", "text": part.text} for part in parts]


def _image(image: Image, param: str) -> dict[str, Any]:
    if image.url is not None:
        url = image.url
    elif image.data is not None and image.media_type:
        url = f"data:{image.media_type};base64,{image.data}"
    else:
        raise BadRequest("An image needs a URL or data with its media type.", param=param)
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_message(result: ToolResult, param: str) -> dict[str, Any]:
    texts: list[Text] = []
    for k, item in enumerate(result.content):
        if not isinstance(item, Text):
            raise BadRequest(
                "An image in a tool result is not supported by this model's upstream.",
                param=f"{param}.content[{k}]",
            )
        texts.append(item)
    content: str | list[dict[str, Any]] = _text_content(texts) if texts else ""
    return {"role": "tool", "tool_call_id": result.call_id, "content": content}


def _user_messages(message: Message, param: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    only_text = True
    for j, part in enumerate(message.content):
        where = f"{param}.content[{j}]"
        if isinstance(part, ToolResult):
            out.append(_tool_message(part, where))
        elif isinstance(part, Text):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, Image):
            parts.append(_image(part, where))
            only_text = False
        else:
            raise BadRequest("A user message cannot hold this part.", param=where)
    if parts:
        content: Any = parts[0]["text"] if only_text and len(parts) == 1 else parts
        out.append({"role": "user", "content": content})
    elif not out:
        out.append({"role": "user", "content": ""})
    return out


def _assistant_message(message: Message, param: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, part in enumerate(message.content):
        if isinstance(part, Text):
            texts.append(part.text)
        elif isinstance(part, ToolCall):
            calls.append(
                {
                    "id": part.id,
                    "type": "function",
                    "function": {"name": part.name, "arguments": part.arguments or "{}"},
                }
            )
        elif isinstance(part, Thinking):
            continue  # see the module's docstring
        else:
            raise BadRequest(
                "An assistant message cannot hold this part for this model's upstream.",
                param=f"{param}.content[{j}]",
            )
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    elif not texts:
        out["content"] = ""
    return out


def write_request(req: Request, model: str) -> dict[str, Any]:
    """The canonical request as an OpenAI chat completions body for `model`."""
    if req.thinking_budget is not None:
        raise BadRequest(
            "A thinking budget is not supported by this model's upstream; use `reasoning_effort`.",
            param="thinking",
        )
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": _text_content(req.system)})
    for i, message in enumerate(req.messages):
        param = f"messages[{i}]"
        if message.role == "user":
            messages.extend(_user_messages(message, param))
        else:
            messages.append(_assistant_message(message, param))
    body: dict[str, Any] = {"model": model, "messages": messages}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = list(req.stop)
    if req.tools:
        tools = []
        for tool in req.tools:
            function: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                function["description"] = tool.description
            if tool.parameters:
                function["parameters"] = tool.parameters
            tools.append({"type": "function", "function": function})
        body["tools"] = tools
        choice = req.tool_choice
        if choice is not None:
            if choice.mode == "tool":
                body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
            else:
                body["tool_choice"] = choice.mode
            if choice.parallel is not None:
                body["parallel_tool_calls"] = choice.parallel
    elif req.tool_choice is not None and req.tool_choice.mode in ("required", "tool"):
        raise BadRequest(
            "`tool_choice` asks for a tool but no `tools` are given.", param="tool_choice"
        )
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.user is not None:
        body["user"] = req.user
    if req.reasoning_effort is not None:
        body["reasoning_effort"] = req.reasoning_effort
    return body


# -- an upstream's answer -> canonical ---------------------------------------------


class _Function(msgspec.Struct):
    name: str = ""
    arguments: str = ""


class _ToolCall(msgspec.Struct):
    id: str = ""
    function: _Function | None = None


class _Message(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice]
    id: str = ""
    model: str = ""
    created: int = 0
    usage: WireUsage | None = None


_decode_completion = msgspec.json.Decoder(_Completion).decode


def read_response(body: bytes) -> Response:
    """A `chat.completion` body -> the canonical response (its first choice)."""
    try:
        completion = _decode_completion(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        completion = None
    if completion is None or not completion.choices:
        raise malformed()
    choice = completion.choices[0]
    message = choice.message
    content: list[Part] = []
    reasoning = message.reasoning_content or message.reasoning
    if reasoning:
        content.append(Thinking(text=reasoning))
    if message.content:
        content.append(Text(message.content))
    if message.refusal:
        content.append(Text(message.refusal))
    for call in message.tool_calls or ():
        function = call.function or _Function()
        content.append(ToolCall(id=call.id, name=function.name, arguments=function.arguments))
    reason = choice.finish_reason
    return Response(
        id=completion.id,
        model=completion.model,
        content=content,
        stop_reason=STOP_REASONS.get(reason, "end") if reason else "end",
        usage=usage_from_wire(completion.usage) if completion.usage is not None else None,
        created=completion.created,
    )


# -- canonical -> a client's answer -------------------------------------------------


def write_response(resp: Response, model: str) -> bytes:
    """The canonical response as a `chat.completion` body naming `model`."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in resp.content:
        if isinstance(part, Text):
            texts.append(part.text)
        elif isinstance(part, Thinking):
            reasoning.append(part.text)
        elif isinstance(part, ToolCall):
            calls.append(
                {
                    "id": part.id,
                    "type": "function",
                    "function": {"name": part.name, "arguments": part.arguments},
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    body: dict[str, Any] = {
        "id": chunk_id(resp.id),
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS[resp.stop_reason],
            }
        ],
    }
    if resp.usage is not None:
        body["usage"] = usage_to_wire(resp.usage)
    return _encode(body)


# -- error bodies ---------------------------------------------------------------------


class _Detail(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None
    innererror: dict[str, Any] | None = None  # Azure: e.g. the content filter's verdict


class _ErrorBody(msgspec.Struct):
    error: _Detail


def said(body: bytes) -> Said:
    """An OpenAI (or Azure OpenAI) error body `{"error": {...}}`; junk says nothing."""
    try:
        detail = msgspec.json.decode(body, type=_ErrorBody).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Said()
    code = None if detail.code is None else str(detail.code)
    message = detail.message
    if message and code == "content_filter":
        message = _with_filter_reason(message, detail.innererror)
    return Said(message, detail.type, code, detail.param)


def _with_filter_reason(message: str, inner: dict[str, Any] | None) -> str:
    """Azure's content filter names the categories it filtered in `innererror`."""
    result = (inner or {}).get("content_filter_result")
    if not isinstance(result, dict):
        return message
    filtered = [
        name
        for name, verdict in result.items()
        if isinstance(verdict, dict) and verdict.get("filtered") is True
    ]
    return f"{message} (filtered: {', '.join(filtered)})" if filtered else message
