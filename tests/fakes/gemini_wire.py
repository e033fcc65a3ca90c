"""Gemini's API: ``/v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
``:batchEmbedContents`` and ``:embedContent``.

The key comes in ``x-goog-api-key`` or ``?key=``: without one a 403 ``PERMISSION_DENIED``,
a wrong one a 400 ``INVALID_ARGUMENT`` (reason ``API_KEY_INVALID``), in Google's error body
``{"error": {"code", "message", "status", "details"?}}``. Streams are SSE only (``alt=sse``,
else 400): one ``GenerateContentResponse`` per piece, then one with ``finishReason`` and the
whole ``usageMetadata``; a tool call is one ``functionCall`` part in one chunk. Field names
are read in camelCase or snake_case, as Google accepts both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.embeddings import dimensions_of, vector
from tests.fakes.faults import BadRequest
from tests.fakes.kinds import PROCESS, Kind, json_response, obj
from tests.fakes.openai_wire import encode
from tests.fakes.streaming import Framer
from tests.fakes.tokens import Ask, Job, content, piece, plan, texts_in

__all__ = ["FINISH", "GeminiEmbed", "GeminiGenerate", "google_error"]

FINISH = {"end": "STOP", "max_tokens": "MAX_TOKENS", "tool_use": "STOP", "content_filter": "SAFETY"}
_PARTS = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
}
_STATUSES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: (
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not"
        " supported for generateContent. Call ListModels to see the list of available"
        " models and their supported methods.",
    ),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in"
        " https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity)."
    " Please use API Key or other form of API consumer identity to call this API."
)
_SAFE = [
    {"category": f"HARM_CATEGORY_{name}", "probability": "NEGLIGIBLE"}
    for name in ("HATE_SPEECH", "DANGEROUS_CONTENT", "HARASSMENT", "SEXUALLY_EXPLICIT")
]


def google_error(
    status: int,
    message: str,
    state: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": state}
    if details:
        error["details"] = details
    return json_response(status, encode({"error": error}), headers)


def _get(value: dict[str, Any], camel: str) -> Any:
    """A field by its camelCase name or its snake_case one."""
    if camel in value:
        return value[camel]
    return value.get("".join(f"_{c.lower()}" if c.isupper() else c for c in camel))


def _parts(content: Any, at: str) -> list[dict[str, Any]]:
    parts = obj(content, at).get("parts")
    if not isinstance(parts, list):
        raise BadRequest(f"* GenerateContentRequest.{at}.parts: parts is not specified", at)
    for j, part in enumerate(parts):
        for name in obj(part, f"{at}.parts[{j}]"):
            camel = name.split("_")[0] + "".join(w.title() for w in name.split("_")[1:])
            if camel not in _PARTS:
                message = f'Invalid JSON payload received. Unknown name "{name}" at'
                raise BadRequest(f"{message} '{at}.parts[{j}]': Cannot find field.", at)
    return parts


def _texts(parts: list[dict[str, Any]], results: bool = True) -> list[str]:
    texts = []
    for part in parts:
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        response = _get(part, "functionResponse")
        if results and isinstance(response, dict):
            texts.extend(texts_in(response.get("response")))
    return texts


def _tools(body: dict[str, Any], ask: Ask) -> None:
    for tool in body.get("tools") or []:
        for declaration in (
            _get(tool, "functionDeclarations") or [] if isinstance(tool, dict) else []
        ):
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                ask.tools.append(declaration["name"])
    config = _get(body, "toolConfig")
    calling = _get(config, "functionCallingConfig") if isinstance(config, dict) else None
    if isinstance(calling, dict):
        mode = str(calling.get("mode"))
        ask.choice = {"NONE": "none", "ANY": "any"}.get(mode, "auto")
        allowed = _get(calling, "allowedFunctionNames")
        if ask.choice == "any" and isinstance(allowed, list) and allowed:
            ask.choice, ask.forced = "tool", allowed[0]


def read_body(job: Job, body: Any, model: str) -> None:
    """Validate a ``GenerateContentRequest`` (the basics) and plan ``job``."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    ask = Ask()
    system = _get(body, "systemInstruction")
    if system is not None:
        ask.texts.extend(_texts(_parts(system, "system_instruction")))
    for i, item in enumerate(contents):
        parts = _parts(item, f"contents[{i}]")
        role = item.get("role", "user")
        if role not in ("user", "model", "function"):
            raise BadRequest(f"Please use a valid role: user, model. (contents[{i}].role)")
        ask.texts.extend(_texts(parts))
        if role == "user" and any("text" in part for part in parts):
            ask.last_user_text = " ".join(_texts(parts, results=False))
    last = contents[-1]
    if last.get("role") == "model":
        ask.prefill = sum(len(text.split()) for text in _texts(last["parts"]))
    ask.tool_result_last = any(_get(part, "functionResponse") for part in last["parts"])
    config = _get(body, "generationConfig")
    cap = _get(config, "maxOutputTokens") if isinstance(config, dict) else None
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise BadRequest(
            "* GenerateContentRequest.generation_config.max_output_tokens: must be positive"
        )
    ask.max_tokens = cap
    _tools(body, ask)
    job.model = model
    plan(job, ask)


def _usage(job: Job, done: bool) -> dict[str, Any]:
    prompt = job.prompt_tokens
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if done and job.finish != "prompt_filter":
        usage["candidatesTokenCount"] = job.completion_tokens
    usage["totalTokenCount"] = prompt + usage.get("candidatesTokenCount", 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


def _response(job: Job, parts: list[dict[str, Any]] | None, done: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if job.finish == "prompt_filter":
        body["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": _SAFE}
    else:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if done:
            candidate["finishReason"] = FINISH[job.finish]
        candidate["index"] = 0
        body["candidates"] = [candidate]
    body["usageMetadata"] = _usage(job, done)
    body.update(modelVersion=job.model, responseId=f"{PROCESS}{job.serial:012x}")
    return body


def _call(job: Job) -> dict[str, Any]:
    from json import loads

    return {"functionCall": {"name": job.tool, "args": loads(job.arguments)}}


class _Chunks:
    """The SSE chunks of one Gemini stream (``\\r\\n`` line ends, as Google sends)."""

    content_type = "text/event-stream"

    def __init__(self, job: Job) -> None:
        self.job, self.encode = job, job.encode
        self.count = 1 if job.tool is not None else job.count

    def _data(self, value: Any) -> bytes:
        return b"data: " + self.encode(value) + b"\r\n\r\n"

    def head(self) -> Iterator[bytes]:
        return iter(())

    def content(self, k: int) -> bytes:
        job = self.job
        part = _call(job) if job.tool is not None else {"text": piece(job.first + k)}
        return self._data(_response(job, [part], done=False))

    def malformed(self, k: int) -> bytes:
        whole = self.content(k)[6:-4]
        return b"data: " + whole[: len(whole) // 2] + b"\r\n\r\n"

    def error(self) -> bytes:
        state, message = _STATUSES[503]
        return self._data({"error": {"code": 503, "message": message, "status": state}})

    def tail(self, done: bool) -> Iterator[bytes]:
        yield self._data(_response(self.job, [{"text": ""}], done=True))


class GeminiGenerate(Kind):
    """``:generateContent`` and ``:streamGenerateContent?alt=sse``."""

    name = "gemini"

    def credential(self, request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def gate(self, request: web.Request, raw: bytes) -> web.Response | None:
        given = self.credential(request)
        if self.api_key is None or given == self.api_key:
            return None
        if not given:
            return google_error(403, _UNREGISTERED, "PERMISSION_DENIED")
        info: dict[str, Any] = {"@type": "type.googleapis.com/google.rpc.ErrorInfo"}
        info.update(reason="API_KEY_INVALID", domain="googleapis.com")
        info["metadata"] = {"service": "generativelanguage.googleapis.com"}
        message = "API key not valid. Please pass a valid API key."
        return google_error(400, message, "INVALID_ARGUMENT", [info])

    def model_of(self, request: web.Request, body: Any) -> str:
        return request.match_info["target"].rpartition(":")[0]

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        if request.match_info["target"].endswith(":streamGenerateContent"):
            if request.query.get("alt") != "sse":
                raise BadRequest("This fake streams only with alt=sse.")
            job.stream = True
        read_body(job, body, self.model_of(request, body))

    def bad_request(self, message: str, param: str | None) -> web.Response:
        return google_error(400, message, "INVALID_ARGUMENT")

    def status_error(self, status: int, model: str, retry_after: int | None) -> web.Response:
        state, message = _STATUSES.get(status, _STATUSES[500 if status >= 500 else 400])
        if status not in _STATUSES and status < 500:
            state = "FAILED_PRECONDITION"
        details, headers = None, None
        if retry_after is not None:
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo"}
            retry["retryDelay"] = f"{retry_after}s"
            details, headers = [retry], {"Retry-After": str(retry_after)}
        return google_error(status, message.format(model=model), state, details, headers)

    def too_long(self, window: int, prompt: int, completion: int | None) -> web.Response:
        message = f"The input token count ({prompt}) exceeds the maximum number of tokens"
        return self.bad_request(f"{message} allowed ({window}).", None)

    def answer(self, job: Job) -> bytes:
        text = {"text": content(job.first, job.end)}
        part = text if job.tool is None else _call(job)
        return job.encode(_response(job, [part], done=True))

    def framer(self, job: Job) -> Framer:
        return _Chunks(job)


class GeminiEmbed(GeminiGenerate):
    """``:batchEmbedContents`` and ``:embedContent``."""

    chat = False

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        body = obj(body, "body")
        batch = request.match_info["target"].endswith(":batchEmbedContents")
        requests = body.get("requests") if batch else [body]
        if not isinstance(requests, list) or not requests:
            raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified")
        embeddings, texts = [], []
        for i, one in enumerate(requests):
            parts = _parts(obj(one, f"requests[{i}]").get("content"), f"requests[{i}].content")
            text = " ".join(_texts(parts))
            dims = dimensions_of(_get(one, "outputDimensionality"), "outputDimensionality")
            embeddings.append({"values": vector(text, dims)})
            texts.append(text)
        job.model = self.model_of(request, body)
        job.prompt_tokens = max(sum(len(t.split()) for t in texts), 1)
        job.prepared = {"embeddings": embeddings} if batch else {"embedding": embeddings[0]}

    def answer(self, job: Job) -> bytes:
        return job.encode(job.prepared)
