"""Prices: USD per million input and output tokens, per public model, with a
provider's default for models that have none. Each request's cost comes from them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from control_plane.api.common import ModelPath, actor_of, from_rows, get_store, one
from control_plane.api.providers import provider_stream
from control_plane.authz import PLATFORM_READ, PLATFORM_WRITE, needs
from control_plane.errors import NotFound
from control_plane.queries import Q
from control_plane.store import Decide
from shared.events import Payload, PriceCleared, PriceSet, ProviderPriceSet
from shared.state import State

__all__ = [
    "PerMillion",
    "PriceController",
    "PriceIn",
    "ProviderPriceController",
    "clear_price",
    "price_stream",
    "set_price",
    "set_provider_price",
]

PerMillion = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    input_per_million: PerMillion
    output_per_million: PerMillion


class Price(msgspec.Struct):
    model: str
    input_per_million: float
    output_per_million: float
    updated_at: datetime


def price_stream(model: str) -> str:
    return f"price:{model}"


def set_price(model: str, data: PriceIn) -> Decide:
    def decide(state: State) -> list[Payload]:
        return [PriceSet(model, data.input_per_million, data.output_per_million)]

    return decide


def clear_price(model: str) -> Decide:
    def decide(state: State) -> list[Payload]:
        if model not in state.prices:
            raise NotFound(f"no price for {model!r}")
        return [PriceCleared(model)]

    return decide


def set_provider_price(provider_id: str, data: PriceIn) -> Decide:
    """The provider's default price (on the provider's stream)."""

    def decide(state: State) -> list[Payload]:
        if provider_id not in state.providers:
            raise NotFound(f"provider {provider_id} does not exist")
        return [ProviderPriceSet(provider_id, data.input_per_million, data.output_per_million)]

    return decide


async def _price(request: Request[Any, Any, Any], model: str) -> Price:
    row = await get_store(request).pool.fetchrow(Q.get_price, model)
    return one(Price, row, f"a price for {model!r}")


class PriceController(Controller):
    path = "/prices"
    tags = ["prices"]

    @get(summary="The price table", opt=needs(PLATFORM_READ))
    async def list(self, request: Request[Any, Any, Any]) -> list[Price]:
        return from_rows(Price, await get_store(request).pool.fetch(Q.list_prices))

    @get("/{model:str}", summary="A model's price", opt=needs(PLATFORM_READ))
    async def read(self, request: Request[Any, Any, Any], model: ModelPath) -> Price:
        return await _price(request, model)

    @put("/{model:str}", summary="Set a model's price", opt=needs(PLATFORM_WRITE))
    async def set(
        self, request: Request[Any, Any, Any], model: ModelPath, data: JSONBody[PriceIn]
    ) -> Price:
        decide = set_price(model, data)
        await get_store(request).append(price_stream(model), decide, actor=actor_of(request))
        return await _price(request, model)

    @delete(
        "/{model:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove a model's price",
        opt=needs(PLATFORM_WRITE),
    )
    async def remove(self, request: Request[Any, Any, Any], model: ModelPath) -> None:
        decide = clear_price(model)
        await get_store(request).append(price_stream(model), decide, actor=actor_of(request))


class ProviderPriceController(Controller):
    path = "/providers/{provider_id:uuid}/price"
    tags = ["prices"]

    @put(
        summary="Set a provider's default price, for its models without one",
        opt=needs(PLATFORM_WRITE),
    )
    async def set(
        self,
        request: Request[Any, Any, Any],
        provider_id: FromPath[uuid.UUID],
        data: JSONBody[PriceIn],
    ) -> PriceIn:
        pid = str(provider_id)
        decide = set_provider_price(pid, data)
        await get_store(request).append(provider_stream(pid), decide, actor=actor_of(request))
        return data
