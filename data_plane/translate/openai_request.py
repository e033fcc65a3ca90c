"""A client's OpenAI chat completions body, read into the canonical request.

See `openai_chat` for what is folded, merged or not carried. Anything wrong is a
`BadRequest` naming the field by its path (`messages[2].content[0].type`).
"""

from __future__ import annotations

from typing import Any

from data_plane.translate.model import (
    Image,
    Message,
    Part,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from shared.errors import BadRequest, echo

__all__ = ["read_request"]

_UNSUPPORTED = "`{}` is not supported by this model's upstream."

# field -> is this value neutral (as if absent)?
_NEUTRAL: dict[str, Any] = {
    "n": lambda v: v is None or (v == 1 and not isinstance(v, bool)),
    "logprobs": lambda v: v is None or v is False,
    "top_logprobs": lambda v: v is None,
    "response_format": lambda v: v is None or v == {"type": "text"},
    "seed": lambda v: v is None,
    "presence_penalty": lambda v: v is None or (v == 0 and not isinstance(v, bool)),
    "frequency_penalty": lambda v: v is None or (v == 0 and not isinstance(v, bool)),
    "logit_bias": lambda v: v is None or v == {},
    "audio": lambda v: v is None,
    "modalities": lambda v: v is None or v == ["text"],
    "prediction": lambda v: v is None,
    "service_tier": lambda v: v is None or v in ("auto", "default"),
    "web_search_options": lambda v: v is None,
    "verbosity": lambda v: v is None,
    "store": lambda v: v is None or v is False,
    "stream_options": lambda v: v is None or isinstance(v, dict),
    "metadata": lambda v: v is None or isinstance(v, dict),
    "prompt_cache_key": lambda v: v is None or isinstance(v, str),
}
_LEGACY = ("functions", "function_call")
_READ = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "stream",
        "user",
        "safety_identifier",
        "reasoning_effort",
    }
)


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def _obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"`{param}` must be an object.", param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(f"`{param}` must be an array.", param)
    return value


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"`{param}` must be a string.", param)
    return value


def _opt_str(value: Any, param: str) -> str | None:
    return None if value is None else _str(value, param)


def _opt_int(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(f"`{param}` must be an integer.", param)
    return value


def _opt_count(value: Any, param: str) -> int | None:
    """A number of tokens, if given: at least 1 (as OpenAI requires)."""
    count = _opt_int(value, param)
    if count is not None and count < 1:
        raise _bad(f"`{param}` must be at least 1.", param)
    return count


def _opt_num(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _bad(f"`{param}` must be a number.", param)
    return float(value)


def _opt_bool(value: Any, param: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _bad(f"`{param}` must be a boolean.", param)
    return value


def _texts(content: Any, param: str, refusal: bool = False) -> list[Text]:
    """Content that may only be text: a string or text parts."""
    if isinstance(content, str):
        return [Text(content)]
    parts = []
    for j, item in enumerate(_list(content, param)):
        where = f"{param}[{j}]"
        item = _obj(item, where)
        kind = item.get("type")
        if kind == "text":
            parts.append(Text(_str(item.get("text"), f"{where}.text")))
        elif kind == "refusal" and refusal:
            parts.append(Text(_str(item.get("refusal"), f"{where}.refusal")))
        else:
            raise _bad(f"Content of type {_quote(kind)} is not allowed here.", f"{where}.type")
    return parts


def _quote(value: Any) -> str:
    return f"`{echo(value)}`" if isinstance(value, str) else "(missing)"


def _image(item: dict[str, Any], param: str) -> Image:
    source = _obj(item.get("image_url"), f"{param}.image_url")
    url = _str(source.get("url"), f"{param}.image_url.url")
    if url.startswith("data:"):
        head, comma, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if not comma or encoding != "base64" or not media_type:
            raise _bad("An image data URL must be `data:<type>;base64,<data>`.", param)
        return Image(media_type=media_type, data=data)
    if url.startswith(("https://", "http://")):
        return Image(url=url)
    raise _bad("An image URL must be http(s) or a base64 data URL.", f"{param}.image_url.url")


def _user_parts(content: Any, param: str) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)]
    parts: list[Part] = []
    for j, item in enumerate(_list(content, param)):
        where = f"{param}[{j}]"
        item = _obj(item, where)
        kind = item.get("type")
        if kind == "text":
            parts.append(Text(_str(item.get("text"), f"{where}.text")))
        elif kind == "image_url":
            parts.append(_image(item, where))
        elif kind in ("input_audio", "file"):
            raise _bad(f"`{kind}` content is not supported by this model's upstream.", where)
        else:
            raise _bad(f"Unknown content type {_quote(kind)}.", f"{where}.type")
    return parts


def _paths(content: Any, param: str) -> list[str]:
    """Where each part read from `content` (a string: one part) came from."""
    return [param] if isinstance(content, str) else [f"{param}[{j}]" for j in range(len(content))]


def _assistant_parts(message: dict[str, Any], param: str) -> tuple[list[Part], list[str]]:
    """The parts of an assistant message, and where each came from."""
    if message.get("function_call") is not None:
        raise _bad("The legacy `function_call` is not supported; use `tool_calls`.", param)
    if message.get("audio") is not None:
        raise _bad(_UNSUPPORTED.format("audio"), f"{param}.audio")
    content = message.get("content")
    parts: list[Part] = []
    paths: list[str] = []
    if content is not None:
        parts.extend(_texts(content, f"{param}.content", refusal=True))
        paths.extend(_paths(content, f"{param}.content"))
    refusal = _opt_str(message.get("refusal"), f"{param}.refusal")
    if refusal:
        parts.append(Text(refusal))
        paths.append(f"{param}.refusal")
    calls = message.get("tool_calls")
    for k, call in enumerate(_list(calls, f"{param}.tool_calls") if calls is not None else ()):
        where = f"{param}.tool_calls[{k}]"
        call = _obj(call, where)
        if call.get("type", "function") != "function":
            raise _bad("Only `function` tool calls are supported.", f"{where}.type")
        function = _obj(call.get("function"), f"{where}.function")
        arguments = function.get("arguments", "")
        parts.append(
            ToolCall(
                id=_str(call.get("id"), f"{where}.id"),
                name=_str(function.get("name"), f"{where}.function.name"),
                arguments=_str(arguments, f"{where}.function.arguments"),
            )
        )
        paths.append(f"{where}.function")
    return parts, paths


def _messages(raw: Any) -> tuple[list[Text], list[Message], dict[str, str]]:
    """The system prompt, the messages, and where their parts came from (see
    `Request.origins`)."""
    system: list[Text] = []
    out: list[Message] = []
    origins: dict[str, str] = {}
    after_tool = False  # the last message out holds tool results

    def came_from(first: int, paths: list[str]) -> None:
        """The last message's parts from `first` on came from `paths`."""
        i = len(out) - 1
        for j, path in enumerate(paths, first):
            if path != f"messages[{i}].content[{j}]":
                origins[f"messages[{i}].content[{j}]"] = path

    for i, message in enumerate(_list(raw, "messages")):
        param = f"messages[{i}]"
        message = _obj(message, param)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_texts(content, f"{param}.content"))
            continue
        if role == "user":
            parts = _user_parts(content, f"{param}.content")
            if after_tool:
                first = len(out[-1].content)
                out[-1].content.extend(parts)
            else:
                first = 0
                out.append(Message("user", parts))
            came_from(first, _paths(content, f"{param}.content"))
            after_tool = False
        elif role == "assistant":
            parts, paths = _assistant_parts(message, param)
            out.append(Message("assistant", parts))
            came_from(0, paths)
            after_tool = False
        elif role == "tool":
            result = ToolResult(
                call_id=_str(message.get("tool_call_id"), f"{param}.tool_call_id"),
                content=list(_texts(content, f"{param}.content")),
            )
            if after_tool:
                out[-1].content.append(result)
            else:
                out.append(Message("user", [result]))
            came_from(len(out[-1].content) - 1, [param])
            after_tool = True
        elif role == "function":
            raise _bad("The legacy `function` role is not supported; use `tool`.", f"{param}.role")
        else:
            raise _bad(f"Unknown message role {_quote(role)}.", f"{param}.role")
    if not out:
        raise _bad("`messages` must hold a user message.", "messages")
    return system, out, origins


def _tools(raw: Any) -> list[Tool]:
    tools = []
    for i, tool in enumerate(_list(raw, "tools")):
        param = f"tools[{i}]"
        tool = _obj(tool, param)
        if tool.get("type") != "function":
            raise _bad("Only `function` tools are supported.", f"{param}.type")
        function = _obj(tool.get("function"), f"{param}.function")
        parameters = function.get("parameters")
        tools.append(
            Tool(
                name=_str(function.get("name"), f"{param}.function.name"),
                description=_opt_str(function.get("description"), f"{param}.function.description"),
                parameters=(
                    {} if parameters is None else _obj(parameters, f"{param}.function.parameters")
                ),
            )
        )
    return tools


def _tool_choice(raw: Any, parallel: bool | None) -> ToolChoice | None:
    if raw is None:
        return None if parallel is None else ToolChoice(parallel=parallel)
    if raw in ("auto", "none", "required"):
        return ToolChoice(mode=raw, parallel=parallel)
    if isinstance(raw, dict) and raw.get("type") == "function":
        function = _obj(raw.get("function"), "tool_choice.function")
        name = _str(function.get("name"), "tool_choice.function.name")
        return ToolChoice(mode="tool", name=name, parallel=parallel)
    raise _bad("`tool_choice` must be `auto`, `none`, `required` or a function.", "tool_choice")


def _stop(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    return [_str(item, f"stop[{i}]") for i, item in enumerate(_list(raw, "stop"))]


def read_request(body: dict[str, Any]) -> Request:
    """A client's chat completions body -> the canonical request."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    for key, value in body.items():
        if key in _READ:
            continue
        neutral = _NEUTRAL.get(key)
        if neutral is not None:
            if not neutral(value):
                raise _bad(_UNSUPPORTED.format(key), key)
        elif key in _LEGACY:
            raise _bad(f"The legacy `{key}` is not supported; use `tools`.", key)
        else:
            raise _bad(f"Unknown field `{echo(key)}`.", key)
    system, messages, origins = _messages(body.get("messages"))
    max_tokens = _opt_count(body.get("max_completion_tokens"), "max_completion_tokens")
    legacy = _opt_count(body.get("max_tokens"), "max_tokens")
    if max_tokens is None:
        max_tokens = legacy
    user = _opt_str(body.get("user"), "user")
    if user is None:
        user = _opt_str(body.get("safety_identifier"), "safety_identifier")
    parallel = _opt_bool(body.get("parallel_tool_calls"), "parallel_tool_calls")
    tools = body.get("tools")
    return Request(
        model=_str(body.get("model"), "model"),
        messages=messages,
        system=system,
        max_tokens=max_tokens,
        temperature=_opt_num(body.get("temperature"), "temperature"),
        top_p=_opt_num(body.get("top_p"), "top_p"),
        stop=_stop(body.get("stop")),
        tools=[] if tools is None else _tools(tools),
        tool_choice=_tool_choice(body.get("tool_choice"), parallel),
        stream=bool(_opt_bool(body.get("stream"), "stream")),
        user=user,
        reasoning_effort=_opt_str(body.get("reasoning_effort"), "reasoning_effort"),
        origins=origins,
    )
