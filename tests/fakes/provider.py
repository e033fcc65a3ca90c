"""A local fake of an OpenAI-compatible upstream, for development, tests and benchmarks.

Endpoints:
  POST /v1/chat/completions   chat completion, plain JSON or SSE stream
  GET  /v1/models             models seen so far plus ``DEFAULT_MODEL``
  GET  /_fake/requests        the last 200 requests received (DELETE clears them)
  GET  /_fake/faults          the process's knobs (PUT sets them, DELETE restores the startup ones)
  GET  /_fake/stats           counters over the process's life (DELETE zeroes them)
  GET  /_fake/healthz         200 once up

Deterministic output: a completion of ``n`` tokens is made of the pieces
``"tok0"``, ``" tok1"``, ..., ``" tok{n-1}"`` (the first one has no leading space), so
the content is ``" ".join(f"tok{i}" for i in range(n))`` and ``completion_tokens == n``.
``n`` is the configured token count, capped by ``max_completion_tokens`` or ``max_tokens``
from the body (``finish_reason`` is then ``"length"`` instead of ``"stop"``).
``prompt_tokens`` is the number of whitespace-separated words in all text contents of the
messages (at least 1); ``total_tokens`` is the sum of both.

Continuation: when the last message is the assistant's with string content of ``k``
whitespace-separated pieces, the fake continues that answer instead of starting over: the
answer is pieces ``k`` to ``n-1`` (the first with its leading space, ``" tok{k}"``) and
``completion_tokens == n - k`` (0 when ``k >= n``; ``max_tokens`` caps it as above). A prefill
made of the first ``k`` pieces joined with the answer is the whole ``n``-piece answer.
``prompt_tokens`` counts the prefill's words with the rest. vLLM's ``continue_final_message``
and ``add_generation_prompt`` body fields are accepted and change nothing.

Knobs: tokens, timing and faults (resets, hangs, error statuses with ``Retry-After``, seeded
random failures, a slow first token, stalls, cut, malformed or ``[DONE]``-less streams, a
non-JSON body, content filters, a context window, refused prefills). Each is settable per
request with an ``x-fake-*`` header and for the whole process with ``PUT /_fake/faults``;
``tests/fakes/faults.py`` says what each does. Bad values get a 400. ``FakeConfig`` and
the command line set the startup values of ``tokens``, ``delay_ms``, ``latency_ms``,
``fail_after``, ``context_window`` and ``seed``. With ``FakeConfig.api_key`` set, every
``/v1`` request must carry ``Authorization: Bearer <api_key>`` or gets a 401 (code
``invalid_api_key``).

``/_fake/stats`` is ``{"chat_requests", "streams", "by_status", "faults_injected",
"in_flight"}``: chat completion requests ended, streams started, requests by status sent
(``"200"``, ``"429"``, ...; ``"reset"`` for a connection closed without an answer, ``"hang"``
for one never answered), requests in which a fault or refusal knob acted, and chat requests
running now. A request is counted when it ends; ``DELETE`` zeroes all but ``in_flight``.

Each entry of ``/_fake/requests`` has ``method``, ``path``, ``authorization`` (header value or
null) and ``body`` (parsed JSON or null); streamed completions add ``stream``,
``disconnected`` (the client went away before the end), ``aborted`` (cut by ``fail_after``)
and ``events_sent`` (SSE events written); a hung request adds ``disconnected``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import random
import signal
import socket
import struct
import sys
import time
from collections import deque
from typing import Any

import msgspec
from aiohttp import web

from tests.fakes.faults import (
    BadRequest,
    Faults,
    Stats,
    early_fault,
    faults_from_json,
    request_faults,
)
from tests.fakes.openai_stream import connected, pause, stream
from tests.fakes.openai_wire import (
    NOT_JSON,
    Job,
    completion,
    decode,
    encode,
    error,
    read_body,
    refuse,
    status_error,
    usage,
)

__all__ = ["DEFAULT_MODEL", "FakeConfig", "Faults", "build_app", "main", "serve"]

DEFAULT_MODEL = "fake-model"
_LOG_SIZE = 200
_MAX_MODELS = 1000


class FakeConfig(msgspec.Struct):
    tokens: int = 20
    delay_ms: float = 0
    latency_ms: float = 0
    api_key: str | None = None
    fail_after: int = -1  # >= 0: every stream breaks off after that many content chunks
    context_window: int | None = None
    seed: int | None = None

    def faults(self) -> Faults:
        """The knobs the process starts with and goes back to on ``DELETE /_fake/faults``."""
        knobs = {
            "tokens": self.tokens,
            "delay_ms": self.delay_ms,
            "latency_ms": self.latency_ms,
            "fail_after": None if self.fail_after < 0 else self.fail_after,
            "context_window": self.context_window,
            "seed": self.seed,
        }
        return msgspec.convert(knobs, Faults)


def _json(value: Any) -> web.Response:
    return web.Response(body=encode(value), content_type="application/json")


def _bad_request(exc: BadRequest) -> web.Response:
    return error(400, str(exc), "invalid_request_error", None, exc.param)


def _model_of(body: Any) -> str:
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and model else DEFAULT_MODEL


def _reset(request: web.Request) -> None:
    """Close the connection with a TCP reset (RST), not the orderly FIN."""
    transport = request.transport
    if transport is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        linger = struct.pack("ii", 1, 0)
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    transport.abort()


class _Provider:
    def __init__(self, config: FakeConfig) -> None:
        self.startup = config.faults()
        self.startup_fields = msgspec.structs.asdict(self.startup)
        self._set_faults(self.startup)
        self.stats = Stats()
        self.stopping = asyncio.Event()
        self.log: deque[dict[str, Any]] = deque(maxlen=_LOG_SIZE)
        self.models: dict[str, int] = {DEFAULT_MODEL: int(time.time())}
        self.ids = itertools.count(1)
        self.id_prefix = os.urandom(4).hex()
        self.auth = None if config.api_key is None else f"Bearer {config.api_key}"

    def _set_faults(self, faults: Faults) -> None:
        self.faults, self.fault_fields = faults, msgspec.structs.asdict(faults)
        self.rng = random.Random(faults.seed)

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
        return error(401, message, "invalid_request_error", "invalid_api_key")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.in_flight += 1
        job = Job(self.faults)
        try:
            resp = await self._chat(request, job)
        finally:
            stats.in_flight -= 1
        stats.record(job.outcome or str(resp.status), job.streamed, job.faulted)
        return resp

    async def _chat(self, request: web.Request, job: Job) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = decode(raw)
        except msgspec.DecodeError:
            body = msgspec.UNSET
        entry = self._record(request, None if body is msgspec.UNSET else body)
        if not self._authorized(request):
            return self._unauthorized()
        try:
            job.faults = faults = request_faults(self.faults, self.fault_fields, request.headers)
            if faults.latency_ms > 0:
                await asyncio.sleep(faults.latency_ms / 1000)
            early = early_fault(faults, self.rng)
            if early is not None:
                return await self._fail(request, entry, job, *early, _model_of(body))
            read_body(job, body)
        except BadRequest as exc:
            return _bad_request(exc)
        refusal = refuse(job)
        if refusal is not None:
            job.faulted = True
            return refusal
        if job.model not in self.models and len(self.models) < _MAX_MODELS:
            self.models[job.model] = int(time.time())
        head: dict[str, Any] = {
            "id": f"chatcmpl-{self.id_prefix}{next(self.ids):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": job.model,
        }
        if job.stream:
            return await stream(request, entry, job, head, usage(job), self.stopping)
        return await self._complete(request, job, head)

    async def _fail(
        self,
        request: web.Request,
        entry: dict[str, Any],
        job: Job,
        kind: str,
        status: int,
        model: str,
    ) -> web.StreamResponse:
        job.faulted = True
        if kind == "status":
            return status_error(status, model, job.faults.retry_after)
        job.outcome = kind
        if kind == "reset":
            _reset(request)
        else:
            await self._hang(request, entry)
        return web.Response()

    async def _hang(self, request: web.Request, entry: dict[str, Any]) -> None:
        """Send nothing until the client goes away or the fake stops."""
        await pause(request, math.inf, self.stopping)
        entry["disconnected"] = not connected(request)
        if request.transport is not None:
            request.transport.close()

    async def _complete(self, request: web.Request, job: Job, head: dict[str, Any]) -> web.Response:
        faults = job.faults
        if faults.first_token_ms > 0:
            job.faulted = True
            await pause(request, faults.first_token_ms / 1000, self.stopping)
        if faults.fail_after is not None:
            job.faulted, job.outcome = True, "reset"
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        if faults.malformed_body:
            job.faulted = True
            return web.Response(body=NOT_JSON, content_type="application/json")
        return web.Response(body=completion(job, head), content_type="application/json")

    async def list_models(self, request: web.Request) -> web.Response:
        self._record(request, None)
        if not self._authorized(request):
            return self._unauthorized()
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "fake-provider"}
            for name, created in self.models.items()
        ]
        return _json({"object": "list", "data": data})

    async def not_found(self, request: web.Request) -> web.Response:
        self._record(request, None)
        message = f"Unknown request URL: {request.method} {request.path}."
        return error(404, message, "invalid_request_error", "unknown_url")

    async def get_log(self, request: web.Request) -> web.Response:
        return _json(list(self.log))

    async def clear_log(self, request: web.Request) -> web.Response:
        self.log.clear()
        return web.Response(status=204)

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self.faults)

    async def put_faults(self, request: web.Request) -> web.Response:
        try:
            faults = faults_from_json(self.startup_fields, await request.read())
        except BadRequest as exc:
            return _bad_request(exc)
        self._set_faults(faults)
        return _json(faults)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._set_faults(self.startup)
        return web.Response(status=204)

    async def get_stats(self, request: web.Request) -> web.Response:
        return _json(self.stats)

    async def clear_stats(self, request: web.Request) -> web.Response:
        self.stats.clear()
        return web.Response(status=204)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stop(self, app: web.Application) -> None:
        self.stopping.set()


def build_app(config: FakeConfig) -> web.Application:
    """Build the aiohttp application playing the upstream for ``config``."""
    provider = _Provider(config)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_shutdown.append(provider.stop)
    routes = app.router
    routes.add_post("/v1/chat/completions", provider.chat)
    routes.add_get("/v1/models", provider.list_models)
    routes.add_get("/_fake/requests", provider.get_log)
    routes.add_delete("/_fake/requests", provider.clear_log)
    routes.add_get("/_fake/faults", provider.get_faults)
    routes.add_put("/_fake/faults", provider.put_faults)
    routes.add_delete("/_fake/faults", provider.clear_faults)
    routes.add_get("/_fake/stats", provider.get_stats)
    routes.add_delete("/_fake/stats", provider.clear_stats)
    routes.add_get("/_fake/healthz", provider.healthz)
    routes.add_route("*", "/{tail:.*}", provider.not_found)
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
    parser.add_argument(
        "--context-window", type=int, default=None, help="refuse prompts past N tokens"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random failures")
    args = parser.parse_args(argv)
    config = FakeConfig(
        args.tokens,
        args.delay_ms,
        args.latency_ms,
        args.api_key,
        args.fail_after,
        args.context_window,
        args.seed,
    )
    try:
        config.faults()
    except msgspec.ValidationError as exc:
        parser.error(str(exc))
    try:
        import uvloop
    except ImportError:
        asyncio.run(_run_until_signal(args.host, args.port, config))
    else:
        uvloop.run(_run_until_signal(args.host, args.port, config))


if __name__ == "__main__":
    main()
