"""A local fake of an OpenAI-compatible upstream, for development, tests and benchmarks.

Endpoints:
  POST /v1/chat/completions   chat completion, plain JSON or SSE stream
  GET  /v1/models             models seen so far plus ``DEFAULT_MODEL``
  GET  /_fake/requests        the last 200 requests received (DELETE clears them)
  GET  /_fake/healthz         200 once up

Deterministic output: a completion of ``n`` tokens is made of the pieces
``"tok0"``, ``" tok1"``, ..., ``" tok{n-1}"`` (the first one has no leading space), so
the content is ``" ".join(f"tok{i}" for i in range(n))`` and ``completion_tokens == n``.
``n`` is the configured token count, capped by ``max_completion_tokens`` or ``max_tokens``
from the body (``finish_reason`` is then ``"length"`` instead of ``"stop"``).
``prompt_tokens`` is the number of whitespace-separated words in all text contents of the
messages (at least 1); ``total_tokens`` is the sum of both.

Per-request header overrides: ``x-fake-tokens``, ``x-fake-delay-ms`` (sleep between stream
chunks), ``x-fake-latency-ms`` (sleep before answering), ``x-fake-status`` (answer with that
status and an OpenAI-style error body) and ``x-fake-fail-after`` (stream: send that many
content chunks, then drop the connection without ``[DONE]``; non-stream: drop it at once).
Bad override values get a 400. With ``FakeConfig.api_key`` set, every ``/v1`` request must
carry ``Authorization: Bearer <api_key>`` or gets a 401 (code ``invalid_api_key``).

Each entry of ``/_fake/requests`` has ``method``, ``path``, ``authorization`` (header value or
null) and ``body`` (parsed JSON or null); streamed completions add ``stream``,
``disconnected`` (the client went away before the end), ``aborted`` (cut by
``x-fake-fail-after``) and ``events_sent`` (SSE events written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import msgspec
from aiohttp import web

DEFAULT_MODEL = "fake-model"
FINGERPRINT = "fp_fake000001"
_LOG_SIZE = 200
_MAX_MODELS = 1000


class FakeConfig(msgspec.Struct):
    tokens: int = 20
    delay_ms: float = 0
    latency_ms: float = 0
    api_key: str | None = None
    fail_after: int = -1  # >= 0: every stream breaks off after that many content chunks


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_DONE = b"data: [DONE]\n\n"
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
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
}


def _piece(i: int) -> str:
    return f" tok{i}" if i else "tok0"


@lru_cache(maxsize=64)
def _content(n: int) -> str:
    return " ".join(f"tok{i}" for i in range(n))


def _error(
    status: int, message: str, type_: str, code: str | None = None, param: str | None = None
) -> web.Response:
    body = _encode({"error": {"message": message, "type": type_, "param": param, "code": code}})
    return web.Response(status=status, body=body, content_type="application/json")


def _status_error(status: int) -> web.Response:
    default = ("server_error", None, "The server had an error processing the request.")
    type_, code, message = _STATUS_ERRORS.get(
        status, default if status >= 500 else _STATUS_ERRORS[400]
    )
    return _error(status, f"{message} (x-fake-status)", type_, code)


def _header_num(request: web.Request, name: str, default: float, integer: bool = False) -> float:
    raw = request.headers.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise _BadRequest(f"Header {name} must be {kind}.") from None
    if not value >= 0:
        raise _BadRequest(f"Header {name} must not be negative.")
    return value


def _prompt_tokens(messages: list[Any]) -> int:
    words = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    words += len(part["text"].split())
    return max(words, 1)


class _Job(msgspec.Struct):
    """One chat completion request: header overrides first, then the validated body."""

    tokens: int
    delay: float
    latency: float
    status: int
    fail_after: int
    model: str = ""
    finish: str = "stop"
    prompt_tokens: int = 1
    stream: bool = False
    include_usage: bool = False


def _read_headers(request: web.Request, cfg: FakeConfig) -> _Job:
    job = _Job(
        tokens=int(_header_num(request, "x-fake-tokens", cfg.tokens, integer=True)),
        delay=_header_num(request, "x-fake-delay-ms", cfg.delay_ms) / 1000,
        latency=_header_num(request, "x-fake-latency-ms", cfg.latency_ms) / 1000,
        status=int(_header_num(request, "x-fake-status", 0, integer=True)),
        fail_after=int(_header_num(request, "x-fake-fail-after", cfg.fail_after, integer=True)),
    )
    if job.status and not 400 <= job.status <= 599:
        raise _BadRequest("Header x-fake-status must be between 400 and 599.")
    return job


def _read_body(job: _Job, body: Any) -> None:
    if body is msgspec.UNSET:
        raise _BadRequest("The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise _BadRequest("The request body must be a JSON object.")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise _BadRequest("'model' is required and must be a string.", "model")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty array.", "messages")
    for name in ("max_completion_tokens", "max_tokens"):
        cap = body.get(name)
        if cap is None:
            continue
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise _BadRequest(f"'{name}' must be a positive integer.", name)
        if cap < job.tokens:
            job.tokens, job.finish = cap, "length"
        break
    options = body.get("stream_options")
    job.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    job.model, job.stream = model, body.get("stream") is True
    job.prompt_tokens = _prompt_tokens(messages)


class _Provider:
    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.log: deque[dict[str, Any]] = deque(maxlen=_LOG_SIZE)
        self.models: dict[str, int] = {DEFAULT_MODEL: int(time.time())}
        self.ids = itertools.count(1)
        self.id_prefix = os.urandom(4).hex()
        self.auth = None if config.api_key is None else f"Bearer {config.api_key}"

    def _record(self, request: web.Request, body: Any) -> dict[str, Any]:
        auth = request.headers.get("Authorization")
        entry = {"method": request.method, "path": request.path, "authorization": auth}
        entry["body"] = body
        self.log.append(entry)
        return entry

    def _authorized(self, request: web.Request) -> bool:
        return self.auth is None or request.headers.get("Authorization") == self.auth

    @staticmethod
    def _unauthorized() -> web.Response:
        message = "Incorrect API key provided."
        return _error(401, message, "invalid_request_error", "invalid_api_key")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = _decode(raw)
        except msgspec.DecodeError:
            body = msgspec.UNSET
        entry = self._record(request, None if body is msgspec.UNSET else body)
        if not self._authorized(request):
            return self._unauthorized()
        try:
            job = _read_headers(request, self.config)
            if job.latency > 0:
                await asyncio.sleep(job.latency)
            if job.status:
                return _status_error(job.status)
            _read_body(job, body)
        except _BadRequest as exc:
            return _error(400, str(exc), "invalid_request_error", None, exc.param)
        if job.model not in self.models and len(self.models) < _MAX_MODELS:
            self.models[job.model] = int(time.time())
        n = job.prompt_tokens
        usage = {
            "prompt_tokens": n,
            "completion_tokens": job.tokens,
            "total_tokens": n + job.tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": dict.fromkeys(_COMPLETION_DETAILS, 0),
        }
        head: dict[str, Any] = {
            "id": f"chatcmpl-{self.id_prefix}{next(self.ids):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": job.model,
        }
        if job.stream:
            entry.update(stream=True, disconnected=False, aborted=job.fail_after >= 0)
            return await _stream(request, entry, job, head, usage)
        if job.fail_after >= 0:
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        content = _content(job.tokens)
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        message["annotations"] = []
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": job.finish}
        head.update(choices=[choice], usage=usage, service_tier="default")
        head["system_fingerprint"] = FINGERPRINT
        return web.Response(body=_encode(head), content_type="application/json")

    async def list_models(self, request: web.Request) -> web.Response:
        self._record(request, None)
        if not self._authorized(request):
            return self._unauthorized()
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "fake-provider"}
            for name, created in self.models.items()
        ]
        return web.Response(
            body=_encode({"object": "list", "data": data}), content_type="application/json"
        )

    async def not_found(self, request: web.Request) -> web.Response:
        self._record(request, None)
        message = f"Unknown request URL: {request.method} {request.path}."
        return _error(404, message, "invalid_request_error", "unknown_url")

    async def get_log(self, request: web.Request) -> web.Response:
        return web.Response(body=_encode(list(self.log)), content_type="application/json")

    async def clear_log(self, request: web.Request) -> web.Response:
        self.log.clear()
        return web.Response(status=204)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


async def _stream(
    request: web.Request,
    entry: dict[str, Any],
    job: _Job,
    head: dict[str, Any],
    usage: dict[str, Any],
) -> web.StreamResponse:
    """Write the completion as SSE, one ``write`` (so one HTTP chunk) per event."""
    choice: dict[str, Any] = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}
    head.update(object="chat.completion.chunk", service_tier="default")
    head.update(system_fingerprint=FINGERPRINT, choices=[choice])
    if job.include_usage:
        head["usage"] = None
    drop = job.fail_after >= 0

    def event(delta: dict[str, Any], reason: str | None = None) -> bytes:
        choice["delta"], choice["finish_reason"] = delta, reason
        return b"data: " + _encode(head) + b"\n\n"

    def frames() -> Iterator[bytes]:
        yield event({"role": "assistant", "content": "", "refusal": None})
        for i in range(min(job.tokens, job.fail_after) if drop else job.tokens):
            yield event({"content": _piece(i)})
        if drop:
            return
        yield event({}, job.finish)
        if job.include_usage:
            yield b"data: " + _encode({**head, "choices": [], "usage": usage}) + b"\n\n"
        yield _DONE

    resp = web.StreamResponse(headers={"Cache-Control": "no-cache"})
    resp.content_type = "text/event-stream"
    await resp.prepare(request)
    sent = 0
    try:
        for frame in frames():
            if sent and job.delay > 0:
                await asyncio.sleep(job.delay)
            await resp.write(frame)
            sent += 1
        if not drop:
            await resp.write_eof()
        elif request.transport is not None:
            request.transport.close()
    except ConnectionError:
        entry["disconnected"] = True
    finally:
        entry["events_sent"] = sent
    return resp


def build_app(config: FakeConfig) -> web.Application:
    """Build the aiohttp application playing the upstream for ``config``."""
    provider = _Provider(config)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", provider.chat)
    app.router.add_get("/v1/models", provider.list_models)
    app.router.add_get("/_fake/requests", provider.get_log)
    app.router.add_delete("/_fake/requests", provider.clear_log)
    app.router.add_get("/_fake/healthz", provider.healthz)
    app.router.add_route("*", "/{tail:.*}", provider.not_found)
    return app


async def serve(host: str, port: int, config: FakeConfig) -> None:
    """Serve the fake on ``host:port`` until cancelled."""
    runner = web.AppRunner(build_app(config), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        print(f"fake provider listening on http://{host}:{bound}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _run_until_signal(host: str, port: int, config: FakeConfig) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(serve(host, port, config))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible upstream provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--tokens", type=int, default=20, help="completion tokens per response")
    parser.add_argument("--delay-ms", type=float, default=0, help="sleep between stream chunks")
    parser.add_argument("--latency-ms", type=float, default=0, help="sleep before answering")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument(
        "--fail-after", type=int, default=-1, help="break every stream after N content chunks"
    )
    args = parser.parse_args(argv)
    config = FakeConfig(args.tokens, args.delay_ms, args.latency_ms, args.api_key, args.fail_after)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_run_until_signal(args.host, args.port, config))
    else:
        uvloop.run(_run_until_signal(args.host, args.port, config))


if __name__ == "__main__":
    main()
