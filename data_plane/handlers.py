"""The request path: authenticate → authorize → choose the route → adapt → relay.

Each handler reads the snapshot once, at its start, so a swap during a long
stream does not change that request's policy.
"""

from __future__ import annotations

import functools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec

from data_plane.asgi import JSON, Receive, Scope, Send, header, read_body, send_response
from data_plane.budgets import Budgets
from data_plane.limits import Limiter
from data_plane.policy import apply_max_tokens, check_model, estimate_prompt_tokens, policies_for
from data_plane.providers import ADAPTERS
from data_plane.snapshot import SnapshotHolder
from data_plane.upstream import Outcome, relay
from data_plane.usage import UsageRecord, UsageRecorder
from shared.errors import (
    AuthenticationError,
    BadRequest,
    GatewayError,
    ModelNotAllowed,
    ModelNotFound,
    UpstreamError,
)
from shared.secrets import SecretBox, SecretKeyError, hash_client_key
from shared.state import ApiKey, Route, State

__all__ = ["Gateway"]

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
# ids in the snapshot are strings; usage records want UUIDs, parsed once per id
_as_uuid = functools.lru_cache(maxsize=65_536)(uuid.UUID)


def authenticate(state: State, scope: Scope) -> ApiKey:
    value = header(scope, b"authorization")
    if value is None:
        raise AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    scheme, _, token = value.decode("latin-1").partition(" ")
    key = state.key_by_hash(hash_client_key(token.strip())) if scheme.lower() == "bearer" else None
    if key is None or key.tenant_id not in state.tenants:
        raise AuthenticationError("Incorrect API key provided.")
    return key


def authorize(state: State, key: ApiKey, model: str) -> Route:
    route = state.route_for_model(model)
    if route is None:
        raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
    if not route.allows(key.tenant_id):
        raise ModelNotAllowed(f"This key may not use the model `{model}`.", param="model")
    return route


def parse_chat(body: bytes) -> tuple[dict[str, Any], str, bool]:
    try:
        data = _decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string.", param="model")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean.", param="stream")
    return data, model, stream


_INT4 = 2**31 - 1


def _clean(code: str | None) -> str | None:
    """An error code fit to store (an upstream's code is anything it says)."""
    return None if code is None else code.replace("\0", "")[:100]


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class Gateway:
    def __init__(
        self,
        holder: SnapshotHolder,
        box: SecretBox,
        session: aiohttp.ClientSession,
        max_body: int,
        limiter: Limiter,
        budgets: Budgets,
        usage: UsageRecorder,
    ) -> None:
        self.budgets = budgets
        self.holder = holder
        self.box = box
        self.session = session
        self.max_body = max_body
        self.limiter = limiter
        self.usage = usage
        # ciphertext -> key, decrypted once; forgotten when the providers change
        self._provider_keys: dict[str, str] = {}
        self._providers_seen: object = None

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, created_at = time.monotonic(), datetime.now(UTC)
        state = self.holder.state
        key = authenticate(state, scope)
        request_id = uuid.uuid4()
        outcome, admission, route = Outcome(), None, None
        model, stream, estimate, in_flight_cost = "", False, 0, 0.0
        budget_scopes = (f"tenant:{key.tenant_id}", f"key:{key.id}")
        try:
            body, model, stream = parse_chat(await read_body(receive, self.max_body))
            route = authorize(state, key, model)
            policies = policies_for(state, key)
            check_model(policies, model)
            body = apply_max_tokens(policies, body)
            self.budgets.check(state, policies)
            provider = state.providers.get(route.provider_id)
            adapter = None if provider is None else ADAPTERS.get(provider.kind)
            if provider is None or adapter is None:
                raise UpstreamError(
                    f"The model `{model}` has no usable provider.", code="no_provider"
                )
            api_key = self._provider_key(state, provider.api_key_ciphertext)
            wants_usage = _wants_usage(body)
            if stream and not wants_usage:  # the gateway needs the usage of every stream
                options = body.get("stream_options")
                options = options if isinstance(options, dict) else {}
                body = {**body, "stream_options": {**options, "include_usage": True}}
            estimate = estimate_prompt_tokens(body)
            admission = self.limiter.admit(policies, estimate, time.time())
            price = state.price_for(route)
            if price is not None:  # in flight: counted against budgets from now on
                in_flight_cost = price.cost(estimate, 0)
                self.budgets.add(budget_scopes, in_flight_cost)
            request = adapter.chat_request(provider.base_url, api_key, route.upstream_model, body)
            del body  # a long stream need not hold the parsed prompt
            await relay(
                self.session,
                adapter,
                request,
                stream=stream,
                client_wants_usage=wants_usage,
                receive=receive,
                send=send,
                extra_headers=list(admission.headers),
                outcome=outcome,
            )
        except GatewayError as exc:
            outcome.status, outcome.error_code = exc.status, exc.code
            raise
        finally:
            prompt = outcome.prompt_tokens
            if prompt is None:
                prompt = estimate if outcome.first_byte is not None else 0
            completion = outcome.completion_tokens
            if completion is None:
                completion = outcome.content_events
            prompt, completion = min(prompt, _INT4), min(completion, _INT4)
            if admission is not None:
                self.limiter.settle(admission, prompt + completion)
            price = None if route is None else state.price_for(route)
            cost = 0.0 if price is None else price.cost(prompt, completion)
            self.budgets.pending(request_id, budget_scopes, cost, in_flight_cost)
            now = time.monotonic()
            self.usage.record(
                UsageRecord(
                    request_id=request_id,
                    created_at=created_at,
                    tenant_id=_as_uuid(key.tenant_id),
                    key_id=_as_uuid(key.id),
                    model=route.model if route is not None else model[:200].replace("\0", ""),
                    provider_id=None if route is None else _as_uuid(route.provider_id),
                    upstream_model=None if route is None else route.upstream_model,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cost_usd=cost,
                    status=outcome.status or 500,
                    latency_ms=(now - started) * 1000,
                    ttft_ms=None
                    if outcome.first_byte is None
                    else (outcome.first_byte - started) * 1000,
                    stream=stream,
                    disconnected=outcome.disconnected,
                    error_code=_clean(outcome.error_code),
                )
            )

    def _provider_key(self, state: State, ciphertext: str | None) -> str | None:
        if state.providers is not self._providers_seen:  # a key may have been replaced
            self._provider_keys.clear()
            self._providers_seen = state.providers
        if ciphertext is None:
            return None
        known = self._provider_keys.get(ciphertext)
        if known is not None:
            return known
        try:
            plain = self.box.decrypt(ciphertext)
        except SecretKeyError:
            raise UpstreamError(
                "The provider's key cannot be decrypted.", code="no_provider"
            ) from None
        self._provider_keys[ciphertext] = plain
        return plain

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
