"""The gate: who is calling, what they ask for, and whether their policies let it
through. All in memory, once per request."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from data_plane.asgi import Scope, header
from data_plane.budgets import Budgets
from data_plane.limits import Limiter
from data_plane.pipeline.call import Call
from data_plane.policy import apply_max_tokens, check_model, estimate_prompt_tokens, policies_for
from shared.errors import (
    AuthenticationError,
    BadRequest,
    ModelNotFound,
    echo,
)
from shared.secrets import hash_client_key
from shared.state import ApiKey, Route, State

__all__ = ["authenticate", "budget_scopes", "pass_gate", "route_for"]

_decode = msgspec.json.Decoder().decode


def authenticate(state: State, scope: Scope, x_api_key: bool = False) -> ApiKey:
    """The caller's key, from `Authorization: Bearer <key>` or (Anthropic's way, when
    `x_api_key`) from `x-api-key: <key>`."""
    value = header(scope, b"authorization")
    token: str | None = None
    if value is not None:
        scheme, _, given = value.decode("latin-1").partition(" ")
        token = given.strip() if scheme.lower() == "bearer" else ""
    elif x_api_key and (raw := header(scope, b"x-api-key")) is not None:
        token = raw.decode("latin-1").strip()
    if token is None:
        said = "'x-api-key: <key>' or " if x_api_key else ""
        raise AuthenticationError(
            f"You didn't provide an API key. Send it as {said}'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    key = state.key_by_hash(hash_client_key(token)) if token else None
    if key is None or key.tenant_id not in state.tenants:
        raise AuthenticationError("Incorrect API key provided.")
    return key


def route_for(state: State, key: ApiKey, model: str) -> Route:
    """The route of `model` for the key's tenant. A model only other tenants' routes
    serve is answered exactly as one that does not exist: its existence is theirs."""
    route = state.route_for_model(model)
    if route is None or not route.allows(key.tenant_id):
        raise ModelNotFound(f"The model `{echo(model)}` does not exist.", param="model")
    return route


def parse_body(body: bytes) -> tuple[dict[str, Any], str, bool]:
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


def budget_scopes(key: ApiKey) -> tuple[str, str]:
    return f"tenant:{key.tenant_id}", f"key:{key.id}"


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def pass_gate(call: Call, raw: bytes, limiter: Limiter, budgets: Budgets) -> dict[str, Any]:
    """Check the request against the key's policies and admit it to their limits;
    the body to send upstream. Fills `call` as it learns."""
    state = call.state
    body, call.model, call.stream = parse_body(raw)
    if call.operation == "messages":
        _check_max_tokens(body)
    elif call.operation == "embeddings":
        _check_embeddings(call, body)
    call.route = route_for(state, call.key, call.model)
    policies = policies_for(state, call.key)
    check_model(policies, call.model)
    if call.operation != "embeddings":
        names = _ANTHROPIC_CAPS if call.operation == "messages" else _OPENAI_CAPS
        body = apply_max_tokens(policies, body, names)
    budgets.check(state, policies)
    if call.operation == "chat":
        body = _openai_chat(call, body)
    call.estimate = estimate_prompt_tokens(body)
    call.admission = limiter.admit(policies, call.estimate, time.time())
    return body


_OPENAI_CAPS = ("max_completion_tokens", "max_tokens")
_ANTHROPIC_CAPS = ("max_tokens",)


def _openai_chat(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's chat: how many choices, whether the client wants a stream's usage
    (the gateway asks for it either way)."""
    call.wants_usage = _wants_usage(body)
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        call.choices = n
    if call.stream and not call.wants_usage:  # the gateway needs the usage of every stream
        options = body.get("stream_options")
        options = options if isinstance(options, dict) else {}
        body = {**body, "stream_options": {**options, "include_usage": True}}
    return body


def _check_max_tokens(body: dict[str, Any]) -> None:
    """Anthropic's Messages API requires `max_tokens`."""
    asked = body.get("max_tokens")
    if asked is None:
        raise BadRequest("max_tokens: Field required", param="max_tokens")
    if not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
        raise BadRequest("max_tokens: must be a positive integer", param="max_tokens")


def _check_embeddings(call: Call, body: dict[str, Any]) -> None:
    if call.stream:
        raise BadRequest("Embeddings are not streamed.", param="stream")
    given = body.get("input")
    if given is None or given == "" or given == []:
        raise BadRequest("'input' is required and must not be empty.", param="input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    call.encoding_format = encoding
    call.embeddings_body = body
