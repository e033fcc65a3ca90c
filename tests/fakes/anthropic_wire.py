"""Anthropic's Messages API: ``POST /v1/messages``, requests, ``message`` answers, errors.

Requests need ``x-api-key`` (when the fake has a key; else 401 ``authentication_error``) and
``anthropic-version`` (else 400). Bodies are validated for the basics as Anthropic does
(``model``, ``max_tokens``, ``messages`` and its roles, known content block types, the
thinking budget) with 400 ``invalid_request_error`` naming the field (``messages.0.content.1.
type: ...``). Errors are ``{"type": "error", "error": {"type", "message"}, "request_id"}``
with Anthropic's statuses (429 ``rate_limit_error``, 500 ``api_error``, 529
``overloaded_error`` ...) and a ``request-id`` header.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from aiohttp import web

from tests.fakes.faults import BadRequest
from tests.fakes.kinds import PROCESS, Kind, json_response, obj
from tests.fakes.openai_wire import encode
from tests.fakes.streaming import Framer
from tests.fakes.tokens import THINKING, Ask, Job, content, plan

__all__ = ["STOP", "Anthropic", "anthropic_error", "message_of", "signature", "usage"]

STOP = {
    "end": "end_turn",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "content_filter": "refusal",
    "prompt_filter": "refusal",
}
_BLOCKS = {
    "text",
    "image",
    "document",
    "search_result",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "container_upload",
}
_STATUS_ERRORS = {
    400: ("invalid_request_error", "Your request is invalid."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per"
        " minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    request_id = f"req_{PROCESS}{status:04d}"
    error = {"type": type_, "message": message}
    body = encode({"type": "error", "error": error, "request_id": request_id})
    return json_response(status, body, {"request-id": request_id, **(headers or {})})


def signature(text: str) -> str:
    """The thinking block's signature: opaque, deterministic."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest() * 2).decode()


def _texts(content: Any, at: str, tool_results: bool = True) -> list[str]:
    """The counted texts of a content (string or blocks), validating block types."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise BadRequest(f"{at}: Input should be a valid string or list", at)
    texts = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        kind = kind if isinstance(kind, str) else None
        if kind not in _BLOCKS:
            expected = ", ".join(f"'{name}'" for name in sorted(_BLOCKS))
            message = f"{at}.{j}.type: Input tag '{kind}' found using 'type' does not match"
            raise BadRequest(f"{message} any of the expected tags: {expected}", f"{at}.{j}.type")
        assert isinstance(block, dict)
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_result" and tool_results:
            inner = block.get("content")
            texts.extend(_texts(inner, f"{at}.{j}.content") if inner is not None else [])
    return texts


def _thinking(body: dict[str, Any], max_tokens: int) -> bool:
    thinking = body.get("thinking")
    if thinking is None:
        return False
    thinking = obj(thinking, "thinking")
    if thinking.get("type") == "disabled":
        return False
    if thinking.get("type") == "adaptive":
        return True
    budget = thinking.get("budget_tokens")
    if thinking.get("type") != "enabled" or not isinstance(budget, int) or budget < 1024:
        message = "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        raise BadRequest(message, "thinking.budget_tokens")
    if budget >= max_tokens:
        raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`.", "thinking")
    return True


def _tools(body: dict[str, Any], ask: Ask) -> None:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return
    ask.tools = [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = str(choice.get("type"))
        ask.choice = {"none": "none", "any": "any", "tool": "tool"}.get(kind, "auto")
        ask.forced = choice.get("name") if ask.choice == "tool" else None


def read_body(job: Job, body: Any) -> None:
    """Validate a Messages API body as Anthropic does (the basics) and plan ``job``."""
    if not isinstance(body, dict):
        raise BadRequest("The request body is not valid JSON.")
    model, max_tokens, messages = body.get("model"), body.get("max_tokens"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required", "model")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise BadRequest("max_tokens: Field required", "max_tokens")
    if max_tokens < 1:
        raise BadRequest("max_tokens: Input should be greater than or equal to 1", "max_tokens")
    if not isinstance(messages, list):
        raise BadRequest("messages: Input should be a valid list", "messages")
    if not messages:
        raise BadRequest("messages: at least one message is required", "messages")
    system = body.get("system")
    ask = Ask(texts=[] if system is None else _texts(system, "system"), max_tokens=max_tokens)
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or role not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        assert isinstance(message, dict)
        texts = _texts(message.get("content"), f"messages.{i}.content")
        ask.texts.extend(texts)
        if role == "user":
            own = message["content"]
            ask.last_user_text = " ".join(_texts(own, "content", tool_results=False))
    last = messages[-1]
    if last["role"] == "assistant":
        written = " ".join(_texts(last["content"], "content"))
        if written != written.rstrip():
            message = "messages: final assistant content cannot end with trailing whitespace"
            raise BadRequest(message, "messages")
        ask.prefill = len(written.split())
    blocks = last["content"] if isinstance(last["content"], list) else []
    ask.tool_result_last = any(block.get("type") == "tool_result" for block in blocks)
    ask.thinking = _thinking(body, max_tokens)
    _tools(body, ask)
    job.model, job.stream = model, body.get("stream") is True
    plan(job, ask)


def usage(job: Job, output_tokens: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": job.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": job.completion_tokens if output_tokens is None else output_tokens,
        "service_tier": "standard",
    }


def message_of(job: Job, blocks: list[dict[str, Any]], done: bool) -> dict[str, Any]:
    return {
        "id": f"msg_{PROCESS}{job.serial:012x}",
        "type": "message",
        "role": "assistant",
        "model": job.model,
        "content": blocks,
        "stop_reason": STOP[job.finish] if done else None,
        "stop_sequence": None,
        "usage": usage(job, None if done else 1),
    }


def _blocks(job: Job) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if job.thinking:
        text = "".join(THINKING)
        blocks.append({"type": "thinking", "thinking": text, "signature": signature(text)})
    if job.tool is not None:
        tool = {"type": "tool_use", "id": f"toolu_{job.serial}", "name": job.tool}
        tool["input"] = json.loads(job.arguments)
        blocks.append(tool)
    elif job.end > job.first:
        blocks.append({"type": "text", "text": content(job.first, job.end)})
    return blocks


class Anthropic(Kind):
    """``POST /v1/messages``."""

    name = "anthropic"

    def credential(self, request: web.Request) -> str | None:
        return request.headers.get("x-api-key")

    def gate(self, request: web.Request, raw: bytes) -> web.Response | None:
        given = request.headers.get("x-api-key")
        if self.api_key is not None and given != self.api_key:
            message = "x-api-key header is required" if given is None else "invalid x-api-key"
            return anthropic_error(401, "authentication_error", message)
        if not request.headers.get("anthropic-version"):
            message = "anthropic-version: header is required"
            return anthropic_error(400, "invalid_request_error", message)
        return None

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        read_body(job, body)

    def bad_request(self, message: str, param: str | None) -> web.Response:
        return anthropic_error(400, "invalid_request_error", message)

    def status_error(self, status: int, model: str, retry_after: int | None) -> web.Response:
        fallback = _STATUS_ERRORS[500 if status >= 500 else 400]
        type_, message = _STATUS_ERRORS.get(status, fallback)
        headers = None if retry_after is None else {"retry-after": str(retry_after)}
        return anthropic_error(status, type_, message.format(model=model), headers)

    def too_long(self, window: int, prompt: int, completion: int | None) -> web.Response:
        if completion is None or prompt > window:
            message = f"prompt is too long: {prompt} tokens > {window} maximum"
        else:
            message = f"input length and `max_tokens` exceed context limit: {prompt} +"
            message += f" {completion} > {window}, decrease input length or `max_tokens` and"
            message += " try again"
        return anthropic_error(400, "invalid_request_error", message)

    def answer(self, job: Job) -> bytes:
        return job.encode(message_of(job, _blocks(job), done=True))

    def framer(self, job: Job) -> Framer:
        from tests.fakes.anthropic_stream import Events

        return Events(job)
