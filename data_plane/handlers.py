"""The request path: authenticate → authorize → choose the route → adapt → relay.

Each handler reads the snapshot once, at its start, so a swap during a long
stream does not change that request's policy.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import msgspec

from data_plane.asgi import JSON, Receive, Scope, Send, header, read_body, send_response
from data_plane.providers import ADAPTERS
from data_plane.snapshot import SnapshotHolder
from data_plane.upstream import relay
from shared.errors import (
    AuthenticationError,
    BadRequest,
    ModelNotAllowed,
    ModelNotFound,
    UpstreamError,
)
from shared.secrets import SecretBox, SecretKeyError, hash_client_key
from shared.state import ApiKey, Route, State

__all__ = ["Gateway"]

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


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


class Gateway:
    def __init__(
        self, holder: SnapshotHolder, box: SecretBox, session: aiohttp.ClientSession, max_body: int
    ) -> None:
        self.holder = holder
        self.box = box
        self.session = session
        self.max_body = max_body

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.holder.state
        key = authenticate(state, scope)
        body, model, stream = parse_chat(await read_body(receive, self.max_body))
        route = authorize(state, key, model)
        provider = state.providers.get(route.provider_id)
        adapter = None if provider is None else ADAPTERS.get(provider.kind)
        if provider is None or adapter is None:
            raise UpstreamError(f"The model `{model}` has no usable provider.", code="no_provider")
        try:
            api_key = (
                None
                if provider.api_key_ciphertext is None
                else self.box.decrypt(provider.api_key_ciphertext)
            )
        except SecretKeyError:
            raise UpstreamError(
                "The provider's key cannot be decrypted.", code="no_provider"
            ) from None
        request = adapter.chat_request(provider.base_url, api_key, route.upstream_model, body)
        await relay(
            self.session,
            adapter,
            request,
            stream=stream,
            receive=receive,
            send=send,
            extra_headers=[],
        )

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.holder.state
        key = authenticate(state, scope)
        created = int(time.time())
        data = [
            {"id": r.model, "object": "model", "created": created, "owned_by": "sluice"}
            for r in state.routes_for_tenant(key.tenant_id)
        ]
        await send_response(send, 200, _encode({"object": "list", "data": data}), (JSON,))
