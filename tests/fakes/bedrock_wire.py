"""Bedrock's Converse API: ``POST /model/{modelId}/converse`` and ``/converse-stream``.

Requests are checked for a SigV4 signature (``sigv4_check``) when the fake has AWS keys.
Answers are ``ConverseResponse`` bodies; streams ``application/vnd.amazon.eventstream``
frames: ``messageStart``, ``contentBlockStart`` (tool use only), ``contentBlockDelta`` per
piece, ``contentBlockStop``, ``messageStop``, ``metadata`` (usage, metrics), each payload with
Bedrock's ``p`` padding field. Errors are ``{"message"}`` with ``x-amzn-ErrorType``
(``ValidationException`` 400, ``ThrottlingException`` 429, ...); the in-stream error is a
``throttlingException`` frame, the malformed event a frame whose CRC is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.eventstream_encode import encode_event, encode_exception
from tests.fakes.faults import BadRequest
from tests.fakes.kinds import PROCESS, Kind, json_response, obj
from tests.fakes.openai_wire import encode
from tests.fakes.sigv4_check import Signer
from tests.fakes.streaming import Framer
from tests.fakes.tokens import Ask, Job, content, piece, plan, texts_in

__all__ = ["STOP", "Bedrock", "bedrock_error"]

STOP = {
    "end": "end_turn",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "content_filter": "content_filtered",
    "prompt_filter": "guardrail_intervened",
}
_BLOCKS = {
    "text", "image", "document", "video", "toolUse", "toolResult", "guardContent",
    "reasoningContent", "cachePoint", "citationsContent",
}  # fmt: skip
_STATUS_ERRORS = {
    400: ("ValidationException", "The request is invalid."),
    403: (
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    404: ("ResourceNotFoundException", "The provided model identifier is invalid."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
_LATENCY_MS = 42
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def bedrock_error(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    extra = {"x-amzn-ErrorType": type_, "x-amzn-RequestId": f"{PROCESS}-{status}"}
    return json_response(status, encode({"message": message}), {**extra, **(headers or {})})


def _texts(blocks: Any, at: str, results: bool = True) -> list[str]:
    if not isinstance(blocks, list):
        raise BadRequest(f"Value at '{at}' failed to satisfy constraint: Member must not be null")
    texts = []
    for j, block in enumerate(blocks):
        names = set(obj(block, f"{at}.{j}"))
        if len(names) != 1 or not names <= _BLOCKS:
            raise BadRequest(
                f"Value at '{at}.{j}.member' failed to satisfy constraint: unknown block"
            )
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        result = block.get("toolResult")
        if results and isinstance(result, dict):
            texts.extend(texts_in(result.get("content")))
    return texts


def _tools(body: dict[str, Any], ask: Ask) -> None:
    config = body.get("toolConfig")
    if not isinstance(config, dict):
        return
    for tool in config.get("tools") or []:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            ask.tools.append(spec["name"])
    choice = config.get("toolChoice")
    if isinstance(choice, dict) and "any" in choice:
        ask.choice = "any"
    elif isinstance(choice, dict) and isinstance(choice.get("tool"), dict):
        ask.choice, ask.forced = "tool", choice["tool"].get("name")


def read_body(job: Job, body: Any, model: str) -> None:
    """Validate a Converse body (the basics) and plan ``job``."""
    if not isinstance(body, dict):
        raise BadRequest("The request body is not valid JSON.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("A conversation must start with a user message.")
    system = body.get("system")
    ask = Ask(texts=[] if system is None else _texts(system, "system"))
    for i, message in enumerate(messages):
        role = obj(message, f"messages.{i}").get("role")
        if role not in ("user", "assistant"):
            raise BadRequest(
                f"Value at 'messages.{i}.member.role' failed to satisfy constraint:"
                " Member must satisfy enum value set: [user, assistant]"
            )
        texts = _texts(message.get("content"), f"messages.{i}.member.content")
        ask.texts.extend(texts)
        if role == "user" and any("text" in block for block in message["content"]):
            ask.last_user_text = " ".join(_texts(message["content"], "content", results=False))
    last = messages[-1]
    if last["role"] == "assistant":
        ask.prefill = sum(len(text.split()) for text in _texts(last["content"], "content"))
    ask.tool_result_last = any("toolResult" in block for block in last["content"])
    config = body.get("inferenceConfig")
    cap = config.get("maxTokens") if isinstance(config, dict) else None
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise BadRequest(
            "Value at 'inferenceConfig.maxTokens' failed to satisfy constraint:"
            " Member must have value greater than or equal to 1"
        )
    ask.max_tokens = cap
    _tools(body, ask)
    job.model = model
    plan(job, ask)


def _usage(job: Job) -> dict[str, int]:
    prompt, completion = job.prompt_tokens, job.completion_tokens
    return {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}


class _Frames:
    content_type = "application/vnd.amazon.eventstream"

    def __init__(self, job: Job) -> None:
        self.job, self.encode = job, job.encode
        self.count = job.count
        self.answers = job.tool is not None or job.end > job.first

    def event(self, name: str, data: dict[str, Any]) -> bytes:
        data["p"] = _PADDING[: 1 + (len(name) * 7) % len(_PADDING)]
        return encode_event(name, self.encode(data))

    def head(self) -> Iterator[bytes]:
        job = self.job
        yield self.event("messageStart", {"role": "assistant"})
        if job.tool is not None:
            start = {"toolUse": {"toolUseId": f"tooluse_{job.serial}", "name": job.tool}}
            yield self.event("contentBlockStart", {"contentBlockIndex": 0, "start": start})

    def content(self, k: int) -> bytes:
        job = self.job
        if job.tool is None:
            delta: dict[str, Any] = {"text": piece(job.first + k)}
        else:
            delta = {"toolUse": {"input": job.pieces[k]}}
        return self.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta})

    def malformed(self, k: int) -> bytes:
        frame = self.content(k)
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])  # the message CRC is wrong

    def error(self) -> bytes:
        message = {"message": "Too many requests, please wait before trying again."}
        return encode_exception("throttlingException", self.encode(message))

    def tail(self, done: bool) -> Iterator[bytes]:
        job = self.job
        if self.answers:
            yield self.event("contentBlockStop", {"contentBlockIndex": 0})
        yield self.event("messageStop", {"stopReason": STOP[job.finish]})
        metadata = {"usage": _usage(job), "metrics": {"latencyMs": _LATENCY_MS}}
        yield self.event("metadata", metadata)


class Bedrock(Kind):
    """``/model/{modelId}/converse`` and ``/converse-stream``."""

    name = "bedrock"

    def __init__(self, api_key: str | None, signer: Signer | None) -> None:
        super().__init__(api_key)
        self.signer = signer

    def gate(self, request: web.Request, raw: bytes) -> web.Response | None:
        if self.signer is None:
            return None
        url = f"{request.scheme}://{request.host}{request.raw_path}"
        refused = self.signer.refusal(request.method, url, request.headers, raw)
        return None if refused is None else bedrock_error(403, *refused)

    def model_of(self, request: web.Request, body: Any) -> str:
        return request.match_info["model_id"]

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        job.stream = request.path.endswith("/converse-stream")
        read_body(job, body, self.model_of(request, body))

    def bad_request(self, message: str, param: str | None) -> web.Response:
        return bedrock_error(400, "ValidationException", message)

    def status_error(self, status: int, model: str, retry_after: int | None) -> web.Response:
        type_, message = _STATUS_ERRORS.get(status, _STATUS_ERRORS[500 if status >= 500 else 400])
        headers = None if retry_after is None else {"Retry-After": str(retry_after)}
        return bedrock_error(status, type_, message, headers)

    def too_long(self, window: int, prompt: int, completion: int | None) -> web.Response:
        return self.bad_request("Input is too long for requested model.", None)

    def answer(self, job: Job) -> bytes:
        blocks: list[dict[str, Any]] = []
        if job.tool is not None:
            tool = {"toolUseId": f"tooluse_{job.serial}", "name": job.tool}
            blocks.append({"toolUse": {**tool, "input": json.loads(job.arguments)}})
        elif job.end > job.first:
            blocks.append({"text": content(job.first, job.end)})
        body = {
            "output": {"message": {"role": "assistant", "content": blocks}},
            "stopReason": STOP[job.finish],
            "usage": _usage(job),
            "metrics": {"latencyMs": _LATENCY_MS},
        }
        return job.encode(body)

    def framer(self, job: Job) -> Framer:
        return _Frames(job)
