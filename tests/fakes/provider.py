"""A local fake of every upstream kind, in one process, for development, tests and benchmarks.

Endpoints (each kind's wire: ``openai_wire``, ``azure``, ``anthropic_wire``, ``gemini_wire``,
``bedrock_wire``, ``embeddings``):
  POST /v1/chat/completions                       OpenAI chat completion, JSON or SSE
  POST /v1/embeddings                             OpenAI embeddings
  GET  /v1/models                                 models seen so far plus ``DEFAULT_MODEL``
  POST /v1/messages                               Anthropic Messages, JSON or SSE
  POST /openai/deployments/{d}/chat/completions   Azure OpenAI (``?api-version=`` required)
  POST /openai/deployments/{d}/embeddings         Azure OpenAI embeddings
  POST /v1beta/models/{m}:generateContent         Gemini; ``:streamGenerateContent?alt=sse``,
                                                  ``:batchEmbedContents``, ``:embedContent``
  POST /model/{id}/converse                       Bedrock Converse; ``/converse-stream`` in
                                                  AWS event-stream frames
  GET  /_fake/requests        the last 200 requests received (DELETE clears them)
  GET  /_fake/faults          the process's knobs (PUT sets them, DELETE restores the startup ones)
  GET  /_fake/stats           counters over the process's life (DELETE zeroes them)
  GET  /_fake/healthz         200 once up

Deterministic output, the same for every kind (``tests/fakes/tokens.py``): a completion of
``n`` tokens is the pieces ``"tok0"``, ``" tok1"``, ..., ``" tok{n-1}"``, one per content
event, ``n`` the knob ``tokens`` capped by the request's max tokens (``max_tokens``,
``max_completion_tokens``, ``maxOutputTokens``, ``inferenceConfig.maxTokens``; the finish
reason is then the kind's max-tokens reason). Prompt tokens are the whitespace-separated
words of every text of the request (system, messages, tool results), at least 1. A request
offering tools gets one tool call (arguments ``{"input": "<last user text>"}``) unless the
tool choice is none or the last message carries a tool result; ids are ``call_N``,
``toolu_N``, ``tooluse_N`` with N the process's request number. Anthropic's ``thinking``
adds a thinking block. The same conversation gets the same usage from every kind.

Continuation: when the last message is the assistant's (Gemini: the model's) with ``k``
words of text, the fake continues that answer: pieces ``k`` to ``n-1`` (the first with its
leading space), completion tokens ``n - k`` (0 when ``k >= n``; the cap applies as above).
A prefill made of the first ``k`` pieces joined with the answer is the whole answer. vLLM's
``continue_final_message`` and ``add_generation_prompt`` body fields change nothing.

Knobs: tokens, timing, faults and wire shape, each settable per request with an ``x-fake-*``
header and for the process with ``PUT /_fake/faults``, for every kind's endpoints, errors in
the kind's own body (``tests/fakes/faults.py`` says what each does). Bad values get a 400.
``FakeConfig`` and the command line (``tests/fakes/cli.py``) set the startup values of
``tokens``, ``delay_ms``, ``latency_ms``, ``fail_after``, ``context_window`` and ``seed``.
With ``FakeConfig.api_key`` set, requests must carry it as their kind does (OpenAI
``Authorization: Bearer``, Azure ``api-key``, Anthropic ``x-api-key``, Gemini
``x-goog-api-key`` or ``?key=``) or get the kind's refusal. With ``aws_access_key_id`` and
``aws_secret_access_key`` (``--aws-access-key-id``, ``--aws-secret-access-key``,
``--aws-region``), Bedrock requests must carry a valid SigV4 signature for them.

``/_fake/stats`` is ``{"chat_requests", "embedding_requests", "streams", "by_status",
"by_kind", "faults_injected", "in_flight"}``: chat and embedding requests ended, streams
started, requests by status sent (``"200"``, ``"429"``, ...; ``"reset"`` for a connection
closed without an answer, ``"hang"`` for one never answered), requests by kind (``openai``,
``azure_openai``, ``anthropic``, ``gemini``, ``bedrock``), requests in which a fault or
refusal knob acted, and requests running now. A request is counted when it ends; ``DELETE``
zeroes all but ``in_flight``.

Each entry of ``/_fake/requests`` has ``method``, ``path``, ``kind``, ``authorization`` (the
kind's credential header value or null), ``traceparent`` (the W3C trace context header or
null) and ``body`` (parsed JSON or null); streams add
``stream``, ``disconnected`` (the client went away before the end), ``aborted`` (cut by
``fail_after``) and ``events_sent``; a hung request adds ``disconnected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from tests.fakes.anthropic_wire import Anthropic
from tests.fakes.azure import Azure, AzureEmbeddings
from tests.fakes.bedrock_wire import Bedrock
from tests.fakes.embeddings import OpenAIEmbeddings
from tests.fakes.faults import (
    BadRequest,
    Faults,
    Stats,
    early_fault,
    faults_from_json,
    request_faults,
)
from tests.fakes.gemini_wire import GeminiEmbed, GeminiGenerate
from tests.fakes.kinds import Kind
from tests.fakes.openai_wire import NOT_JSON, OpenAI, decode, encode, error
from tests.fakes.sigv4_check import Signer
from tests.fakes.streaming import connected, pause, stream
from tests.fakes.tokens import Job, encoder

__all__ = ["DEFAULT_MODEL", "FakeConfig", "Faults", "build_app"]

DEFAULT_MODEL = "fake-model"
_LOG_SIZE = 200
_MAX_MODELS = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeConfig(msgspec.Struct):
    tokens: int = 20
    delay_ms: float = 0
    latency_ms: float = 0
    api_key: str | None = None
    fail_after: int = -1  # >= 0: every stream breaks off after that many content chunks
    context_window: int | None = None
    seed: int | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str = "us-east-1"

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

    def signer(self) -> Signer | None:
        """The SigV4 check of Bedrock requests; None (no check) without both AWS keys."""
        if self.aws_access_key_id is None or self.aws_secret_access_key is None:
            return None
        return Signer(self.aws_access_key_id, self.aws_secret_access_key, self.aws_region)


def _json(value: Any) -> web.Response:
    return web.Response(body=encode(value), content_type="application/json")


def _bad_request(exc: BadRequest) -> web.Response:
    return error(400, str(exc), "invalid_request_error", None, exc.param)


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
        self.openai = OpenAI(config.api_key)

    def _set_faults(self, faults: Faults) -> None:
        self.faults, self.fault_fields = faults, msgspec.structs.asdict(faults)
        self.rng = random.Random(faults.seed)

    def _record(self, request: web.Request, kind: Kind, body: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"method": request.method, "path": request.path}
        entry["kind"] = kind.name
        entry.update(authorization=kind.credential(request), body=body)
        entry["traceparent"] = request.headers.get("traceparent")
        self.log.append(entry)
        return entry

    def handler(self, kind: Kind) -> Handler:
        """The aiohttp handler of ``kind``'s endpoint."""

        async def handle(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.in_flight += 1
            job = Job(self.faults, kind.name, next(self.ids), int(time.time()))
            try:
                resp = await self._handle(request, kind, job)
            finally:
                stats.in_flight -= 1
            outcome = job.outcome or str(resp.status)
            stats.record(kind.name, outcome, job.streamed, job.faulted, kind.chat)
            return resp

        return handle

    async def _handle(self, request: web.Request, kind: Kind, job: Job) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = decode(raw)
        except msgspec.DecodeError:
            body = msgspec.UNSET
        entry = self._record(request, kind, None if body is msgspec.UNSET else body)
        refused = kind.gate(request, raw)
        if refused is not None:
            return refused
        try:
            job.faults = faults = request_faults(self.faults, self.fault_fields, request.headers)
            if faults.latency_ms > 0:
                await asyncio.sleep(faults.latency_ms / 1000)
            early = early_fault(faults, self.rng)
            if early is not None:
                return await self._fail(request, entry, job, kind, *early, body)
            job.encode = encoder(faults.spaced_json)
            kind.read(job, body, request)
        except BadRequest as exc:
            return kind.bad_request(str(exc), exc.param)
        if kind.chat:
            refusal = kind.refuse(job)
            if refusal is not None:
                job.faulted = True
                return refusal
        if job.model not in self.models and len(self.models) < _MAX_MODELS:
            self.models[job.model] = int(time.time())
        if job.stream:
            return await stream(request, entry, job, kind.framer(job), self.stopping)
        return await self._complete(request, kind, job)

    async def _fail(
        self,
        request: web.Request,
        entry: dict[str, Any],
        job: Job,
        kind: Kind,
        fault: str,
        status: int,
        body: Any,
    ) -> web.StreamResponse:
        job.faulted = True
        if fault == "status":
            return kind.status_error(status, kind.model_of(request, body), job.faults.retry_after)
        job.outcome = fault
        if fault == "reset":
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

    async def _complete(self, request: web.Request, kind: Kind, job: Job) -> web.Response:
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
        return web.Response(body=kind.answer(job), content_type="application/json")

    async def list_models(self, request: web.Request) -> web.Response:
        self._record(request, self.openai, None)
        refused = self.openai.gate(request, b"")
        if refused is not None:
            return refused
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "fake-provider"}
            for name, created in self.models.items()
        ]
        return _json({"object": "list", "data": data})

    async def not_found(self, request: web.Request) -> web.Response:
        self._record(request, self.openai, None)
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
    """Build the aiohttp application playing the upstreams for ``config``."""
    provider = _Provider(config)
    key = config.api_key
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_shutdown.append(provider.stop)
    routes = app.router
    routes.add_post("/v1/chat/completions", provider.handler(provider.openai))
    routes.add_post("/v1/embeddings", provider.handler(OpenAIEmbeddings(key)))
    routes.add_get("/v1/models", provider.list_models)
    routes.add_post("/v1/messages", provider.handler(Anthropic(key)))
    azure = "/openai/deployments/{deployment}"
    routes.add_post(f"{azure}/chat/completions", provider.handler(Azure(key)))
    routes.add_post(f"{azure}/embeddings", provider.handler(AzureEmbeddings(key)))
    generate, embed = GeminiGenerate(key), GeminiEmbed(key)
    gemini = {
        "generateContent": provider.handler(generate),
        "streamGenerateContent": provider.handler(generate),
        "batchEmbedContents": provider.handler(embed),
        "embedContent": provider.handler(embed),
    }

    async def on_gemini(request: web.Request) -> web.StreamResponse:
        method = request.match_info["target"].rpartition(":")[2]
        handle = gemini.get(method)
        return await (provider.not_found(request) if handle is None else handle(request))

    routes.add_post("/v1beta/models/{target}", on_gemini)
    bedrock = provider.handler(Bedrock(key, config.signer()))
    routes.add_post(r"/model/{model_id:.+}/converse", bedrock)
    routes.add_post(r"/model/{model_id:.+}/converse-stream", bedrock)
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


if __name__ == "__main__":
    from tests.fakes.cli import main

    main()
