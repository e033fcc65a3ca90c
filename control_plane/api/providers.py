"""Upstream providers. Their API keys are encrypted at rest and never returned.

A provider's stream (`provider:<id>`) holds its creation, changes, default price and
deletion; its version is that stream's (the `ETag`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import UNSET, UnsetType

from control_plane.api.common import IfMatch, Name, append, from_rows, get_store, one, versioned
from control_plane.errors import Conflict, Invalid, NotFound
from control_plane.queries import Q
from shared.events import Payload, ProviderChanged, ProviderCreated, ProviderDeleted
from shared.secrets import SecretBox
from shared.state import Provider as StateProvider
from shared.state import State

__all__ = ["ProviderController", "provider_stream"]

ProviderKind = Literal["openai"]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
ApiKeyIn = Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=r"^[\x21-\x7e]+$")]


class ProviderIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    base_url: Url
    kind: ProviderKind = "openai"
    api_key: ApiKeyIn | None = None

    def __repr__(self) -> str:  # never print the key, even by accident
        return f"ProviderIn(name={self.name!r}, kind={self.kind!r}, base_url={self.base_url!r})"


class ProviderChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields left out stay as they are; `api_key` rotates the key, `"api_key": null`
    removes it."""

    name: Name | UnsetType = UNSET
    base_url: Url | UnsetType = UNSET
    api_key: ApiKeyIn | UnsetType | None = UNSET

    def __repr__(self) -> str:  # never print the key, even by accident
        return f"ProviderChange(name={self.name!r}, base_url={self.base_url!r})"


class Provider(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    base_url: str
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
        raise Conflict(f"a provider named {name!r} already exists")


def _checked_base_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise Invalid(f"base_url is not a valid URL: {url!r}", field="base_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"base_url must be an http(s) URL, not {url!r}", field="base_url")
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            "base_url must not carry credentials; give the key as api_key", field="base_url"
        )
    if parts.query or parts.fragment:
        raise Invalid("base_url must not carry a query or a fragment", field="base_url")
    return url.rstrip("/")


class ProviderController(Controller):
    path = "/providers"
    tags = ["providers"]

    @post(status_code=HTTP_201_CREATED, summary="Register an upstream provider")
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[ProviderIn]
    ) -> Response[Provider]:
        """`kind: openai` covers any server that speaks OpenAI's API; `base_url` ends
        where `/chat/completions` is appended (for OpenAI: `https://api.openai.com/v1`)."""
        provider_id = str(uuid.uuid4())
        base_url = _checked_base_url(data.base_url)
        ciphertext = None if data.api_key is None else _box(request).encrypt(data.api_key)

        def decide(state: State) -> list[Payload]:
            _name_is_free(state, data.name)
            return [
                ProviderCreated(
                    id=provider_id,
                    name=data.name,
                    kind=data.kind,
                    base_url=base_url,
                    api_key_ciphertext=ciphertext,
                )
            ]

        await append(request, provider_stream(provider_id), decide, new=True)
        return await self._response(request, provider_id, HTTP_201_CREATED)

    @get(summary="List providers (never their keys)")
    async def list(self, request: Request[Any, Any, Any]) -> list[Provider]:
        return from_rows(Provider, await get_store(request).pool.fetch(Q.list_providers))

    @get("/{provider_id:uuid}", summary="Get a provider (never its key)")
    async def read(
        self, request: Request[Any, Any, Any], provider_id: FromPath[uuid.UUID]
    ) -> Response[Provider]:
        return await self._response(request, str(provider_id), 200)

    @patch("/{provider_id:uuid}", summary="Rename a provider, move it, or rotate its key")
    async def change(
        self,
        request: Request[Any, Any, Any],
        provider_id: FromPath[uuid.UUID],
        data: JSONBody[ProviderChange],
        if_match: IfMatch = None,
    ) -> Response[Provider]:
        """Fields left out stay as they are (no event when nothing changes). A new key is
        encrypted as at creation."""
        pid = str(provider_id)
        base_url = data.base_url if data.base_url is UNSET else _checked_base_url(data.base_url)
        api_key = data.api_key
        ciphertext = (
            api_key if api_key is UNSET or api_key is None else _box(request).encrypt(api_key)
        )

        def decide(state: State) -> list[Payload]:
            current = _existing(state, pid)
            if data.name is not UNSET:
                _name_is_free(state, data.name, except_id=pid)
            event = ProviderChanged(
                id=pid,
                name=current.name if data.name is UNSET else data.name,
                base_url=current.base_url if base_url is UNSET else base_url,
                api_key_ciphertext=(
                    current.api_key_ciphertext if ciphertext is UNSET else ciphertext
                ),
            )
            unchanged = (current.name, current.base_url, current.api_key_ciphertext) == (
                event.name,
                event.base_url,
                event.api_key_ciphertext,
            )
            return [] if unchanged else [event]

        await append(request, provider_stream(pid), decide, if_match=if_match)
        return await self._response(request, pid, 200)

    @delete("/{provider_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a provider")
    async def remove(
        self,
        request: Request[Any, Any, Any],
        provider_id: FromPath[uuid.UUID],
        if_match: IfMatch = None,
    ) -> None:
        """Refused (409) while a route has a deployment on this provider."""
        pid = str(provider_id)

        def decide(state: State) -> list[Payload]:
            _existing(state, pid)
            using = sorted(state.routes_using(pid), key=lambda r: r.model)
            if using:
                names = ", ".join(f"{r.model!r} ({r.id})" for r in using)
                raise Conflict(
                    f"provider {pid} serves route(s) {names}: remove those deployments first"
                )
            return [ProviderDeleted(id=pid)]

        await append(request, provider_stream(pid), decide, if_match=if_match)

    @staticmethod
    async def _response(
        request: Request[Any, Any, Any], provider_id: str, status: int
    ) -> Response[Provider]:
        row = await get_store(request).pool.fetchrow(Q.get_provider, uuid.UUID(provider_id))
        return versioned(one(Provider, row, f"provider {provider_id}"), status)


def _box(request: Request[Any, Any, Any]) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box
