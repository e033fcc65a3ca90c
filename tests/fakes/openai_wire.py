"""What the fake upstream reads and writes: the request it plans from, answers, error bodies.

The error bodies are the providers' own, as their APIs send them: OpenAI's
``{"error": {"message", "type", "param", "code"}}`` with its wording for rate limits, server
errors and ``context_length_exceeded``, and Azure OpenAI's content-filter refusal, which adds
``status`` and an ``innererror`` with the filter's verdict per category.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
from aiohttp import web

from tests.fakes.faults import BadRequest, Faults

__all__ = [
    "FILTERED_AFTER",
    "FINGERPRINT",
    "NOT_JSON",
    "Job",
    "completion",
    "content",
    "decode",
    "encode",
    "error",
    "piece",
    "read_body",
    "refuse",
    "status_error",
    "usage",
]

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode
FILTERED_AFTER = 3  # pieces a completion keeps before the content filter stops it
FINGERPRINT = "fp_fake000001"
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


def piece(i: int) -> str:
    """The ``i``-th piece of every answer: ``"tok0"``, ``" tok1"``, ..."""
    return f" tok{i}" if i else "tok0"


@lru_cache(maxsize=64)
def content(first: int, end: int) -> str:
    """Pieces ``first`` to ``end - 1`` joined: a whole answer when ``first`` is 0."""
    return "".join(piece(i) for i in range(first, end))


class Job(msgspec.Struct):
    """One chat completion request: its knobs, then what its body asks for."""

    faults: Faults
    model: str = ""
    stream: bool = False
    include_usage: bool = False
    prompt_tokens: int = 1
    max_tokens: int | None = None  # max_completion_tokens or max_tokens, as sent
    prefill: bool = False  # the last message is the assistant's
    first: int = 0  # the answer is pieces first..end-1
    end: int = 0
    finish: str = "stop"
    streamed: bool = False
    outcome: str | None = None  # "reset" or "hang" when no status was sent
    faulted: bool = False


def _words(messages: list[Any]) -> int:
    words = 0
    for message in messages:
        text = message.get("content") if isinstance(message, dict) else None
        if isinstance(text, str):
            words += len(text.split())
        elif isinstance(text, list):
            for part in text:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    words += len(part["text"].split())
    return words


def _continued(last: Any) -> int | None:
    """Pieces already written by a final assistant message, None if the last is not one."""
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    text = last.get("content")
    return len(text.split()) if isinstance(text, str) else 0


def read_body(job: Job, body: Any) -> None:
    """Validate the body as OpenAI would and fill in what ``job`` answers with which pieces."""
    if body is msgspec.UNSET:
        raise BadRequest("The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string.", "model")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", "messages")
    for name in ("max_completion_tokens", "max_tokens"):
        cap = body.get(name)
        if cap is None:
            continue
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise BadRequest(f"'{name}' must be a positive integer.", name)
        job.max_tokens = cap
        break
    options = body.get("stream_options")
    job.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    job.model, job.stream = model, body.get("stream") is True
    job.prompt_tokens = max(_words(messages), 1)
    written = _continued(messages[-1])
    job.prefill = written is not None
    job.end = job.faults.tokens
    job.first = min(written or 0, job.end)
    if job.max_tokens is not None and job.max_tokens < job.end - job.first:
        job.end, job.finish = job.first + job.max_tokens, "length"
    if job.faults.content_filter == "completion":
        job.end = min(job.end, job.first + FILTERED_AFTER)
        job.finish, job.faulted = "content_filter", True


def usage(job: Job) -> dict[str, Any]:
    prompt, completion = job.prompt_tokens, job.end - job.first
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": dict.fromkeys(_COMPLETION_DETAILS, 0),
    }


def completion(job: Job, head: dict[str, Any]) -> bytes:
    """The ``chat.completion`` body of ``job``; ``head`` has its id, object, created, model."""
    text = content(job.first, job.end)
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    message["annotations"] = []
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": job.finish}
    head.update(choices=[choice], usage=usage(job), service_tier="default")
    head["system_fingerprint"] = FINGERPRINT
    return encode(head)


def error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = encode({"error": {"message": message, "type": type_, "param": param, "code": code}})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


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


def _context_length_exceeded(window: int, prompt: int, completion: int | None) -> web.Response:
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


def _prefill_refused() -> web.Response:
    message = "This model does not support assistant message prefill. The conversation must"
    message += " end with a user message."
    return error(400, message, "invalid_request_error", None, "messages")


def _prompt_filtered() -> web.Response:
    """Azure OpenAI's 400 for a prompt its content filter blocked."""
    return web.Response(status=400, body=_PROMPT_FILTERED, content_type="application/json")


def refuse(job: Job) -> web.Response | None:
    """The 400 a knob makes of a valid body: prefill, context window, prompt filter."""
    faults = job.faults
    if faults.refuse_prefill and job.prefill:
        return _prefill_refused()
    window = faults.context_window
    if window is not None and job.prompt_tokens + (job.max_tokens or 0) > window:
        return _context_length_exceeded(window, job.prompt_tokens, job.max_tokens)
    if faults.content_filter == "prompt":
        return _prompt_filtered()
    return None
