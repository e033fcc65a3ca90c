"""The request path, phase by phase: the gate (key, route, policies, limits), the
attempts up to the commit point, the relay, and the accounting.

Each handler reads the snapshot once, at its start, so a swap during a long
stream does not change that request's policy.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import msgspec

from data_plane.asgi import JSON, Receive, Scope, Send, read_body, send_response
from data_plane.budgets import Budgets
from data_plane.drain import OpenStreams
from data_plane.genai_metrics import GenAIMetrics
from data_plane.limits import Limiter
from data_plane.metrics import Load
from data_plane.pipeline import accounting
from data_plane.pipeline.attempts import Upstreams
from data_plane.pipeline.call import Call
from data_plane.pipeline.gate import authenticate, parse_body, pass_gate, route_for
from data_plane.pipeline.relay import relay_stream, send_whole
from data_plane.policy import check_model, estimate_prompt_tokens, policies_for
from data_plane.snapshot import SnapshotHolder
from data_plane.tracing import Tracing
from data_plane.translate.dialect import Dialect
from data_plane.translate.dialects import ANTHROPIC, OPENAI
from data_plane.usage import UsageRecorder
from shared.errors import GatewayError

__all__ = ["Gateway"]

_encode = msgspec.json.Encoder().encode


class Gateway:
    def __init__(
        self,
        holder: SnapshotHolder,
        upstreams: Upstreams,
        max_body: int,
        body_timeout: float,
        limiter: Limiter,
        budgets: Budgets,
        usage: UsageRecorder,
        load: Load,
        metrics: GenAIMetrics,
        tracing: Tracing | None = None,
    ) -> None:
        self.holder = holder
        self.upstreams = upstreams
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.limiter = limiter
        self.budgets = budgets
        self.usage = usage
        self.streams = OpenStreams()  # for a drain to end those still open
        self.load = load
        self.metrics = metrics
        self.tracing = tracing  # None: off

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(scope, receive, send, OPENAI, "chat")

    async def messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(scope, receive, send, ANTHROPIC, "messages")

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(scope, receive, send, OPENAI, "embeddings")

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, dialect: Dialect, operation: str
    ) -> None:
        started, created_at = time.monotonic(), datetime.now(UTC)
        state = self.holder.state
        key = authenticate(state, scope, x_api_key=dialect is ANTHROPIC)
        call = Call(uuid.uuid4(), started, created_at, state, key, dialect, operation)
        if self.tracing is None:
            await self._run(call, receive, send)
        else:
            await self.tracing.request(call, scope, self._run(call, receive, send))

    async def _run(self, call: Call, receive: Receive, send: Send) -> None:
        dialect, load = call.dialect, self.load
        load.requests += 1
        try:
            body = pass_gate(
                call,
                await read_body(receive, self.max_body, self.body_timeout),
                self.limiter,
                self.budgets,
            )
            accounting.begin(call, self.budgets)
            route = call.route
            assert route is not None
            committed = await self.upstreams.commit(call, body)
            assert call.admission is not None
            headers = [*call.admission.headers, *call.id_headers()]
            if committed.opened is None:
                await send_whole(call, committed, send, headers)
                return
            kept = body if route.continuation else None
            del body  # a long stream need not hold the parsed prompt
            await relay_stream(
                self.upstreams, call, committed, kept, receive, send, headers, self.streams
            )
        except GatewayError as exc:
            call.status, call.error_code = dialect.status(exc), exc.code
            _for_client(call, exc)
            raise
        finally:
            load.requests -= 1
            accounting.settle(call, self.limiter, self.budgets, self.usage, self.metrics)

    async def count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Anthropic's token count, estimated (about four characters a token); the
        `x-sluice-estimate` header says so. Nothing is sent upstream or counted."""
        state = self.holder.state
        key = authenticate(state, scope, x_api_key=True)
        body, model, _ = parse_body(await read_body(receive, self.max_body, self.body_timeout))
        ANTHROPIC.request({**body, "max_tokens": 1})  # the same checks as a message's
        route_for(state, key, model)
        check_model(policies_for(state, key), model)
        count = estimate_prompt_tokens(body)
        headers = [JSON, (b"x-sluice-estimate", b"true")]
        await send_response(send, 200, _encode({"input_tokens": count}), headers)

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.holder.state
        key = authenticate(state, scope)
        created = int(time.time())
        policies = policies_for(state, key)
        data = [
            {"id": r.model, "object": "model", "created": created, "owned_by": "sluice"}
            for r in state.routes_for_tenant(key.tenant_id)
            if all(p.models is None or r.model in p.models for _, p in policies)
        ]
        await send_response(send, 200, _encode({"object": "list", "data": data}), (JSON,))


def _for_client(call: Call, exc: GatewayError) -> None:
    """Upstream failures name the request (the details are in the logs under its id);
    every error after the gate says how many attempts it took."""
    if exc.type == "upstream_error" and str(call.request_id) not in exc.message:
        exc.message = f"{exc.message} Request id: {call.request_id}."
    if call.admission is not None or call.attempts:
        exc.headers = (*exc.headers, *call.id_headers())
