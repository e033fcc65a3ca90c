"""Upstream providers. Their API keys are encrypted at rest and never returned."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from control_plane.api.common import Name, actor_of, from_rows, get_store, one
from control_plane.errors import Conflict, Invalid
from control_plane.queries import Q
from shared.events import Payload, ProviderCreated
from shared.secrets import SecretBox
from shared.state import State

__all__ = ["ProviderController"]

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


class Provider(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    base_url: str
    has_api_key: bool
    input_per_million: float | None  # the default price, for models without one
    output_per_million: float | None
    created_at: datetime


def _checked_base_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise Invalid(f"base_url is not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"base_url must be an http(s) URL, not {url!r}")
    if parts.username is not None or parts.password is not None:
        raise Invalid("base_url must not carry credentials; give the key as api_key")
    if parts.query or parts.fragment:
        raise Invalid("base_url must not carry a query or a fragment")
    return url.rstrip("/")


class ProviderController(Controller):
    path = "/providers"
    tags = ["providers"]

    @post(status_code=HTTP_201_CREATED, summary="Register an upstream provider")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[ProviderIn]) -> Provider:
        """`kind: openai` covers any server that speaks OpenAI's API; `base_url` ends
        where `/chat/completions` is appended (for OpenAI: `https://api.openai.com/v1`)."""
        provider_id = str(uuid.uuid4())
        base_url = _checked_base_url(data.base_url)
        box: SecretBox = request.app.state.secret_box
        ciphertext = None if data.api_key is None else box.encrypt(data.api_key)

        def decide(state: State) -> list[Payload]:
            if any(p.name == data.name for p in state.providers.values()):
                raise Conflict(f"a provider named {data.name!r} already exists")
            return [
                ProviderCreated(
                    id=provider_id,
                    name=data.name,
                    kind=data.kind,
                    base_url=base_url,
                    api_key_ciphertext=ciphertext,
                )
            ]

        store = get_store(request)
        await store.append(
            f"provider:{provider_id}", decide, actor=actor_of(request), expected_version=0
        )
        row = await store.pool.fetchrow(Q.get_provider, uuid.UUID(provider_id))
        return one(Provider, row, f"provider {provider_id}")

    @get(summary="List providers (never their keys)")
    async def list(self, request: Request[Any, Any, Any]) -> list[Provider]:
        return from_rows(Provider, await get_store(request).pool.fetch(Q.list_providers))

    @get("/{provider_id:uuid}", summary="Get a provider (never its key)")
    async def read(
        self, request: Request[Any, Any, Any], provider_id: FromPath[uuid.UUID]
    ) -> Provider:
        row = await get_store(request).pool.fetchrow(Q.get_provider, provider_id)
        return one(Provider, row, f"provider {provider_id}")
