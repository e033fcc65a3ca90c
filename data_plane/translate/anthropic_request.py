"""A client's Anthropic Messages request, read into the canonical `Request`.

Everything is checked: a wrong type, a missing field or something the canonical
model cannot carry is a `BadRequest` naming its place (`messages[1].content[0].type`).
`cache_control` marks are accepted and dropped (they only tune Anthropic's
prompt cache); so is `service_tier` `auto` (the default). A field set to null, or
an unknown one set to false, counts as absent.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from data_plane.translate.model import (
    Image,
    Message,
    Part,
    Request,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from shared.errors import BadRequest, echo

__all__ = ["read_request"]

_encode = msgspec.json.Encoder().encode

_TOP = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "cache_control",
        "service_tier",
    }
)
# block types Anthropic knows that have no canonical counterpart
_UNSUPPORTED_BLOCKS = frozenset(
    {
        "document",
        "search_result",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
        "tool_reference",
        "mcp_tool_use",
        "mcp_tool_result",
    }
)
_TOOL_USE_KEYS = frozenset({"type", "id", "name", "input", "cache_control"})
_CHOICES: dict[str, Literal["auto", "none", "required", "tool"]] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}


def _unsupported(param: str) -> BadRequest:
    return BadRequest(f"`{param}` is not supported by this model's upstream.", param=param)


def _check_extra(obj: dict[str, Any], known: frozenset[str], prefix: str) -> None:
    for key, value in obj.items():
        if key not in known and value is not None and value is not False:
            raise _unsupported(f"{prefix}{echo(str(key))}")


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"`{param}` must be a string.", param=param)
    return value


def _opt_str(value: Any, param: str) -> str | None:
    return None if value is None else _str(value, param)


def _int(value: Any, param: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"`{param}` must be an integer.", param=param)
    if value < minimum:
        raise BadRequest(f"`{param}` must be at least {minimum}.", param=param)
    return value


def _num(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequest(f"`{param}` must be a number.", param=param)
    return float(value)


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"`{param}` must be a boolean.", param=param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(f"`{param}` must be an array.", param=param)
    return value


def _json(value: dict[str, Any], param: str) -> str:
    try:
        return _encode(value).decode()
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        raise BadRequest(f"`{param}` must be plain JSON.", param=param) from None


def _dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"`{param}` must be an object.", param=param)
    return value


def read_request(body: dict[str, Any]) -> Request:
    body = _dict(body, "body")
    _check_extra(body, _TOP, "")
    if body.get("top_k") is not None:
        raise _unsupported("top_k")
    tier = body.get("service_tier")
    if tier is not None and tier != "auto":
        raise _unsupported("service_tier")
    if "max_tokens" not in body:
        raise BadRequest("`max_tokens` is required.", param="max_tokens")
    messages = _list(body.get("messages"), "messages")
    if not messages:
        raise BadRequest("`messages` must not be empty.", param="messages")
    stream = body.get("stream")
    return Request(
        model=_str(body.get("model"), "model"),
        messages=[_message(m, f"messages[{i}]") for i, m in enumerate(messages)],
        system=_system(body.get("system")),
        max_tokens=_int(body["max_tokens"], "max_tokens", 1),
        temperature=_num(body.get("temperature"), "temperature"),
        top_p=_num(body.get("top_p"), "top_p"),
        stop=[
            _str(s, f"stop_sequences[{i}]")
            for i, s in enumerate(_list(body.get("stop_sequences") or [], "stop_sequences"))
        ],
        tools=[
            _tool(t, f"tools[{i}]") for i, t in enumerate(_list(body.get("tools") or [], "tools"))
        ],
        tool_choice=_tool_choice(body.get("tool_choice")),
        stream=stream is not None and _bool(stream, "stream"),
        user=_user(body.get("metadata")),
        thinking_budget=_thinking(body.get("thinking")),
    )


def _system(value: Any) -> list[Text]:
    if value is None:
        return []
    if isinstance(value, str):
        return [Text(value)] if value else []
    blocks = _list(value, "system")
    out = []
    for i, block in enumerate(blocks):
        param = f"system[{i}]"
        block = _dict(block, param)
        if block.get("type") != "text":
            raise BadRequest("System blocks must be text blocks.", param=f"{param}.type")
        out.append(_text(block, param))
    return out


def _text(block: dict[str, Any], param: str) -> Text:
    _check_extra(block, frozenset({"type", "text", "cache_control", "citations"}), f"{param}.")
    if block.get("citations"):
        raise _unsupported(f"{param}.citations")
    return Text(_str(block.get("text"), f"{param}.text"))


def _message(value: Any, param: str) -> Message:
    message = _dict(value, param)
    _check_extra(message, frozenset({"role", "content"}), f"{param}.")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise BadRequest(f"`{param}.role` must be `user` or `assistant`.", param=f"{param}.role")
    content = message.get("content")
    if isinstance(content, str):
        return Message(role=role, content=[Text(content)])
    blocks = _list(content, f"{param}.content")
    parts = [_part(b, role, f"{param}.content[{j}]") for j, b in enumerate(blocks)]
    return Message(role=role, content=parts)


def _part(value: Any, role: str, param: str) -> Part:
    block = _dict(value, param)
    kind = block.get("type")
    if kind == "text":
        return _text(block, param)
    if kind == "image":
        return _image(block, param)
    if kind == "tool_use" and role == "assistant":
        _check_extra(
            block, frozenset({"type", "id", "name", "input", "cache_control"}), param + "."
        )
        return ToolCall(
            _str(block.get("id"), f"{param}.id"),
            _str(block.get("name"), f"{param}.name"),
            _json(_dict(block.get("input"), f"{param}.input"), f"{param}.input"),
        )
    if kind == "tool_result" and role == "user":
        return _tool_result(block, param)
    if kind == "thinking" and role == "assistant":
        _check_extra(block, frozenset({"type", "thinking", "signature"}), param + ".")
        return Thinking(
            _str(block.get("thinking"), f"{param}.thinking"),
            _str(block.get("signature"), f"{param}.signature"),
        )
    if kind == "redacted_thinking" and role == "assistant":
        _check_extra(block, frozenset({"type", "data"}), param + ".")
        return Thinking(redacted=_str(block.get("data"), f"{param}.data"))
    if kind in ("tool_use", "tool_result", "thinking", "redacted_thinking"):
        raise BadRequest(
            f"`{kind}` blocks are not allowed in a {role} message.", param=f"{param}.type"
        )
    if isinstance(kind, str) and kind in _UNSUPPORTED_BLOCKS:
        raise BadRequest(
            f"`{kind}` content blocks are not supported by this model's upstream.",
            param=f"{param}.type",
        )
    raise BadRequest("Unknown content block type.", param=f"{param}.type")


def _image(block: dict[str, Any], param: str) -> Image:
    _check_extra(block, frozenset({"type", "source", "cache_control"}), param + ".")
    source = _dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        _check_extra(source, frozenset({"type", "media_type", "data"}), f"{param}.source.")
        return Image(
            media_type=_str(source.get("media_type"), f"{param}.source.media_type"),
            data=_str(source.get("data"), f"{param}.source.data"),
        )
    if kind == "url":
        _check_extra(source, frozenset({"type", "url"}), f"{param}.source.")
        return Image(url=_str(source.get("url"), f"{param}.source.url"))
    if kind == "file":
        raise _unsupported(f"{param}.source.type")
    raise BadRequest("Unknown image source type.", param=f"{param}.source.type")


def _tool_result(block: dict[str, Any], param: str) -> ToolResult:
    known = frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"})
    _check_extra(block, known, param + ".")
    content = block.get("content")
    items: list[Text | Image] = []
    if isinstance(content, str):
        items = [Text(content)] if content else []
    elif content is not None:
        for k, item in enumerate(_list(content, f"{param}.content")):
            item_param = f"{param}.content[{k}]"
            item = _dict(item, item_param)
            kind = item.get("type")
            if kind == "text":
                items.append(_text(item, item_param))
            elif kind == "image":
                items.append(_image(item, item_param))
            elif isinstance(kind, str) and kind in ("document", "search_result", "tool_reference"):
                raise BadRequest(
                    f"`{kind}` content blocks are not supported by this model's upstream.",
                    param=f"{item_param}.type",
                )
            else:
                raise BadRequest("Unknown content block type.", param=f"{item_param}.type")
    is_error = block.get("is_error")
    return ToolResult(
        call_id=_str(block.get("tool_use_id"), f"{param}.tool_use_id"),
        content=items,
        is_error=is_error is not None and _bool(is_error, f"{param}.is_error"),
    )


def _tool(value: Any, param: str) -> Tool:
    tool = _dict(value, param)
    kind = tool.get("type")
    if kind is not None and kind != "custom":
        if not isinstance(kind, str):
            raise BadRequest(f"`{param}.type` must be a string.", param=f"{param}.type")
        raise BadRequest(
            f"The server tool `{echo(kind)}` is not supported by this model's upstream.",
            param=f"{param}.type",
        )
    known = frozenset({"type", "name", "description", "input_schema", "cache_control"})
    _check_extra(tool, known, param + ".")
    return Tool(
        name=_str(tool.get("name"), f"{param}.name"),
        description=_opt_str(tool.get("description"), f"{param}.description"),
        parameters=_dict(tool.get("input_schema"), f"{param}.input_schema"),
    )


def _tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    choice = _dict(value, "tool_choice")
    _check_extra(choice, frozenset({"type", "name", "disable_parallel_tool_use"}), "tool_choice.")
    kind = choice.get("type")
    mode = _CHOICES.get(kind) if isinstance(kind, str) else None
    if mode is None:
        raise BadRequest(
            "`tool_choice.type` must be `auto`, `any`, `tool` or `none`.", param="tool_choice.type"
        )
    name = None
    if mode == "tool":
        name = _str(choice.get("name"), "tool_choice.name")
    disable = choice.get("disable_parallel_tool_use")
    parallel = None
    if disable is not None:
        parallel = not _bool(disable, "tool_choice.disable_parallel_tool_use")
    return ToolChoice(mode=mode, name=name, parallel=parallel)


def _user(value: Any) -> str | None:
    if value is None:
        return None
    metadata = _dict(value, "metadata")
    _check_extra(metadata, frozenset({"user_id"}), "metadata.")
    return _opt_str(metadata.get("user_id"), "metadata.user_id")


def _thinking(value: Any) -> int | None:
    if value is None:
        return None
    thinking = _dict(value, "thinking")
    kind = thinking.get("type")
    if kind == "disabled":
        _check_extra(thinking, frozenset({"type"}), "thinking.")
        return None
    if kind == "enabled":
        _check_extra(thinking, frozenset({"type", "budget_tokens", "display"}), "thinking.")
        if thinking.get("display") not in (None, "summarized"):
            raise _unsupported("thinking.display")
        return _int(thinking.get("budget_tokens"), "thinking.budget_tokens", 1)
    if kind == "adaptive":
        raise _unsupported("thinking.type")
    raise BadRequest("`thinking.type` must be `enabled` or `disabled`.", param="thinking.type")
