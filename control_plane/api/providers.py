"""Upstream providers of five kinds (`provider_kinds.py` says what each takes). Their
API keys, and Bedrock's AWS credentials, are encrypted at rest and never returned.

A provider's stream (`provider:<id>`) holds its creation, changes, default price and
deletion; its version is that stream's (the `ETag`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import UNSET, UnsetType

from control_plane.api.common import IfMatch, append, clean_name, get_store, versioned
from control_plane.api.provider_kinds import (
    ProviderChange,
    ProviderIn,
    Settings,
    changed_settings,
    new_settings,
    secret_of,
)
from control_plane.authz import PLATFORM_READ, PLATFORM_WRITE, needs
from control_plane.errors import Conflict, NotFound
from control_plane.queries import Q
from control_plane.store import Decide
from shared.events import Payload, ProviderChanged, ProviderCreated, ProviderDeleted
from shared.secrets import SecretBox
from shared.state import Provider as StateProvider
from shared.state import State

__all__ = [
    "ProviderController",
    "change_provider",
    "create_provider",
    "delete_provider",
    "provider_stream",
]


class Provider(msgspec.Struct):
    """A provider as shown: `has_api_key` says whether it has a key (for `bedrock`:
    AWS credentials), never what it is."""

    id: uuid.UUID
    name: str
    kind: str
    base_url: str
    options: dict[str, str]
    has_api_key: bool
    input_per_million: float | None  # the default price, for models without one
    output_per_million: float | None
    version: int
    created_at: datetime
    updated_at: datetime


def provider_stream(provider_id: str) -> str:
    return f"provider:{provider_id}"


def _existing(state: State, provider_id: str) -> StateProvider:
    provider = state.providers.get(provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id} does not exist")
    return provider


def _name_is_free(state: State, name: str, except_id: str | None = None) -> None:
    if any(p.name == name and p.id != except_id for p in state.providers.values()):
        raise Conflict(f"a provider named {name!r} already exists", field="name")


def create_provider(
    provider_id: str, name: str, kind: str, settings: Settings, ciphertext: str | None
) -> Decide:
    """A new provider: `settings` are its base URL and options (see `new_settings`),
    `ciphertext` its encrypted credentials."""
    base_url, options = settings

    def decide(state: State) -> list[Payload]:
        _name_is_free(state, name)
        return [
            ProviderCreated(
                id=provider_id,
                name=name,
                kind=kind,
                base_url=base_url,
                api_key_ciphertext=ciphertext,
                options=options,
            )
        ]

    return decide


def change_provider(
    provider_id: str,
    data: ProviderChange,
    name: str | None = None,
    ciphertext: str | UnsetType | None = UNSET,
) -> Decide:
    """`data`'s settings, a new `name` (None: the same) and new credentials (UNSET: the
    same) on the provider; no event when nothing changes."""

    def decide(state: State) -> list[Payload]:
        current = _existing(state, provider_id)
        base_url, options = changed_settings(current, data)
        if name is not None:
            _name_is_free(state, name, except_id=provider_id)
        event = ProviderChanged(
            id=provider_id,
            name=current.name if name is None else name,
            base_url=base_url,
            api_key_ciphertext=(current.api_key_ciphertext if ciphertext is UNSET else ciphertext),
            options=options,
        )
        before = (current.name, current.base_url, current.api_key_ciphertext, current.options)
        after = (event.name, event.base_url, event.api_key_ciphertext, event.options)
        return [] if before == after else [event]

    return decide


def delete_provider(provider_id: str) -> Decide:
    """Refused (409) while a route has a deployment on the provider."""

    def decide(state: State) -> list[Payload]:
        _existing(state, provider_id)
        using = sorted(state.routes_using(provider_id), key=lambda r: r.model)
        if using:
            names = ", ".join(f"{r.model!r} ({r.id})" for r in using)
            raise Conflict(
                f"provider {provider_id} serves route(s) {names}: remove those deployments first"
            )
        return [ProviderDeleted(id=provider_id)]

    return decide


class ProviderController(Controller):
    path = "/providers"
    tags = ["providers"]

    @post(
        status_code=HTTP_201_CREATED,
        summary="Register an upstream provider",
        opt=needs(PLATFORM_WRITE),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[ProviderIn]
    ) -> Response[Provider]:
        """`kind: openai` (the default) covers any server that speaks OpenAI's API; its
        `base_url` ends where `/chat/completions` is appended (for OpenAI:
        `https://api.openai.com/v1`). `azure_openai`, `anthropic`, `gemini` and
        `bedrock` take their own settings (see the README)."""
        provider_id, name = str(uuid.uuid4()), clean_name(data.name)
        settings = new_settings(data)
        secret = secret_of(data)
        ciphertext = None if secret is UNSET or secret is None else _box(request).encrypt(secret)
        decide = create_provider(provider_id, name, data.kind, settings, ciphertext)
        await append(request, provider_stream(provider_id), decide, new=True)
        return await self._response(request, provider_id, HTTP_201_CREATED)

    @get(summary="List providers (never their keys)", opt=needs(PLATFORM_READ))
    async def list(self, request: Request[Any, Any, Any]) -> list[Provider]:
        return [_view(row) for row in await get_store(request).pool.fetch(Q.list_providers)]

    @get("/{provider_id:uuid}", summary="Get a provider (never its key)", opt=needs(PLATFORM_READ))
    async def read(
        self, request: Request[Any, Any, Any], provider_id: FromPath[uuid.UUID]
    ) -> Response[Provider]:
        return await self._response(request, str(provider_id), 200)

    @patch(
        "/{provider_id:uuid}",
        summary="Rename a provider, move it, change its options, or rotate its credentials",
        opt=needs(PLATFORM_WRITE),
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        provider_id: FromPath[uuid.UUID],
        data: JSONBody[ProviderChange],
        if_match: IfMatch = None,
    ) -> Response[Provider]:
        """Fields left out stay as they are (no event when nothing changes). New
        credentials are encrypted as at creation; the kind cannot change (422)."""
        pid = str(provider_id)
        name = None if data.name is UNSET else clean_name(data.name)
        secret = secret_of(data)
        ciphertext = secret if secret is UNSET or secret is None else _box(request).encrypt(secret)
        decide = change_provider(pid, data, name, ciphertext)
        await append(request, provider_stream(pid), decide, if_match=if_match)
        return await self._response(request, pid, 200)

    @delete(
        "/{provider_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a provider",
        opt=needs(PLATFORM_WRITE),
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        provider_id: FromPath[uuid.UUID],
        if_match: IfMatch = None,
    ) -> None:
        """Refused (409) while a route has a deployment on this provider."""
        pid = str(provider_id)
        await append(request, provider_stream(pid), delete_provider(pid), if_match=if_match)

    @staticmethod
    async def _response(
        request: Request[Any, Any, Any], provider_id: str, status: int
    ) -> Response[Provider]:
        row = await get_store(request).pool.fetchrow(Q.get_provider, uuid.UUID(provider_id))
        if row is None:
            raise NotFound(f"provider {provider_id} does not exist")
        return versioned(_view(row), status)


def _view(row: asyncpg.Record) -> Provider:
    fields = dict(row)
    fields["options"] = msgspec.json.decode(fields["options"])  # jsonb arrives as text
    return msgspec.convert(fields, Provider)


def _box(request: Request[Any, Any, Any]) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box
