"""OpenAI's chat completions wire: the request the fake plans from, answers, error bodies.

The error bodies are the provider's own, as its API sends them: OpenAI's
``{"error": {"message", "type", "param", "code"}}`` with its wording for rate limits, server
errors and ``context_length_exceeded``, and Azure OpenAI's content-filter refusal, which adds
``status`` and an ``innererror`` with the filter's verdict per category.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from tests.fakes.faults import BadRequest
from tests.fakes.kinds import PROCESS, Kind, json_response
from tests.fakes.streaming import Framer
from tests.fakes.tokens import FILTERED_AFTER, Ask, Job, content, piece, plan

__all__ = [
    "FILTERED_AFTER",
    "FINGERPRINT",
    "FINISH",
    "NOT_JSON",
    "OpenAI",
    "completion",
    "content",
    "decode",
    "encode",
    "error",
    "message_of",
    "piece",
    "read_body",
    "status_error",
    "usage",
]

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode
FINGERPRINT = "fp_fake000001"
FINISH = {
    "end": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "prompt_filter": "content_filter",
}
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
NOT_JSON = (  # what a proxy in front of an upstream may answer, under the upstream's headers
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_COMPLETION_DETAILS = (
    "reasoning_tokens",
    "audio_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
)

_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "The request is invalid."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to use this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
}
_RATE_LIMITED = (
    "Rate limit reached for {model} in organization org-fakeprovider on requests per min (RPM):"
    " Limit 500, Used 500, Requested 1. Please try again in {wait}. Visit"
    " https://platform.openai.com/account/rate-limits to learn more."
)
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_PROMPT_FILTERED = encode(
    {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's"
            " content management policy. Please modify your prompt and retry. To learn more"
            " about our content filtering policies please read our documentation:"
            " https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": True, "severity": "high"},
                    "jailbreak": {"filtered": False, "detected": False},
                    "self_harm": {"filtered": False, "severity": "safe"},
                    "sexual": {"filtered": False, "severity": "safe"},
                    "violence": {"filtered": False, "severity": "safe"},
                },
            },
        }
    }
)


def _text(content: Any) -> list[str]:
    """The texts of a message's content: a string or a list of parts."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


def _choice(choice: Any, ask: Ask) -> None:
    if choice == "none":
        ask.choice = "none"
    elif choice == "required":
        ask.choice = "any"
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        ask.choice, ask.forced = "tool", choice["function"].get("name")


def _tools(body: dict[str, Any], ask: Ask) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", "tools")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest(f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}]")
        ask.tools.append(function["name"])
    _choice(body.get("tool_choice"), ask)


def ask_of(messages: list[Any]) -> Ask:
    """What OpenAI ``messages`` ask: texts, prefill, last user text, a tool result last."""
    ask = Ask()
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or message["role"] not in _ROLES
        ):
            raise BadRequest(f"Invalid value for 'messages[{i}].role'.", f"messages[{i}].role")
        texts = _text(message.get("content"))
        ask.texts.extend(texts)
        if message["role"] == "user":
            ask.last_user_text = " ".join(texts)
    last = messages[-1]
    if last["role"] == "assistant":
        ask.prefill = sum(len(text.split()) for text in _text(last.get("content")))
    ask.tool_result_last = last["role"] in ("tool", "function")
    return ask


def read_body(job: Job, body: Any, model: str | None = None) -> None:
    """Validate the body as OpenAI would and plan ``job``'s answer (``model``: Azure's)."""
    if body is msgspec.UNSET:
        raise BadRequest("The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if model is None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a string.", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", "messages")
    ask = ask_of(messages)
    for name in ("max_completion_tokens", "max_tokens"):
        cap = body.get(name)
        if cap is None:
            continue
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise BadRequest(f"'{name}' must be a positive integer.", name)
        ask.max_tokens = cap
        break
    _tools(body, ask)
    options = body.get("stream_options")
    job.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    job.model, job.stream = model, body.get("stream") is True
    plan(job, ask)


def usage(job: Job) -> dict[str, Any]:
    prompt, completion = job.prompt_tokens, job.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": dict.fromkeys(_COMPLETION_DETAILS, 0),
    }


def tool_call(job: Job) -> dict[str, Any]:
    """The tool call of ``job`` (whole; a stream sends its arguments piece by piece)."""
    function = {"name": job.tool, "arguments": job.arguments}
    return {"id": f"call_{job.serial}", "type": "function", "function": function}


def message_of(job: Job) -> dict[str, Any]:
    if job.tool is not None:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        message["tool_calls"] = [tool_call(job)]
    else:
        message = {"role": "assistant", "content": content(job.first, job.end)}
    message.update(refusal=None, annotations=[])
    return message


def head_of(job: Job, prefix: str = "chatcmpl-") -> dict[str, Any]:
    return {
        "id": f"{prefix}{PROCESS}{job.serial:012x}",
        "object": "chat.completion",
        "created": job.created,
        "model": job.model,
    }


def completion(job: Job) -> dict[str, Any]:
    """The ``chat.completion`` object of ``job``."""
    head = head_of(job)
    finish = FINISH[job.finish]
    choice = {"index": 0, "message": message_of(job), "logprobs": None, "finish_reason": finish}
    head.update(choices=[choice], usage=usage(job), service_tier="default")
    head["system_fingerprint"] = FINGERPRINT
    return head


def error(
    status: int,
    message: str,
    type_: str | None,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = encode({"error": {"message": message, "type": type_, "param": param, "code": code}})
    return json_response(status, body, headers)


def status_error(status: int, model: str, retry_after: int | None) -> web.Response:
    """A forced error status with the body OpenAI sends with it."""
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    if status == 429:
        wait = "120ms" if retry_after is None else f"{retry_after}s"
        message = _RATE_LIMITED.format(model=model, wait=wait)
        return error(status, message, "requests", "rate_limit_exceeded", headers=headers)
    if status >= 500:
        return error(status, _SERVER_ERROR, "server_error", headers=headers)
    type_, code, message = _STATUS_ERRORS.get(status, _STATUS_ERRORS[400])
    return error(status, f"{message} (x-fake-status)", type_, code, headers=headers)


def context_length_exceeded(window: int, prompt: int, completion: int | None) -> web.Response:
    """OpenAI's answer to a prompt (plus asked-for completion) past the context window."""
    start = f"This model's maximum context length is {window} tokens. However, "
    if completion is None:
        message = f"your messages resulted in {prompt} tokens. Please reduce the length of the"
        message += " messages."
    else:
        message = f"you requested {prompt + completion} tokens ({prompt} in the messages,"
        message += f" {completion} in the completion). Please reduce the length of the"
        message += " messages or completion."
    code = "context_length_exceeded"
    return error(400, start + message, "invalid_request_error", code, "messages")


class OpenAI(Kind):
    """``POST /v1/chat/completions``, with ``Authorization: Bearer <api key>``."""

    name = "openai"

    def gate(self, request: web.Request, raw: bytes) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        message = "Incorrect API key provided."
        return error(401, message, "invalid_request_error", "invalid_api_key")

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        read_body(job, body)

    def bad_request(self, message: str, param: str | None) -> web.Response:
        return error(400, message, "invalid_request_error", None, param)

    def status_error(self, status: int, model: str, retry_after: int | None) -> web.Response:
        return status_error(status, model, retry_after)

    def too_long(self, window: int, prompt: int, completion: int | None) -> web.Response:
        return context_length_exceeded(window, prompt, completion)

    def prompt_filtered(self, job: Job) -> web.Response | None:
        """Azure OpenAI's 400 for a prompt its content filter blocked."""
        return json_response(400, _PROMPT_FILTERED)

    def answer(self, job: Job) -> bytes:
        return job.encode(completion(job))

    def framer(self, job: Job) -> Framer:
        from tests.fakes.openai_stream import Chunks

        return Chunks(job, head_of(job))
