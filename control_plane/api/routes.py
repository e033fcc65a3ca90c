"""Routes: a public model name, the provider that serves it, and who may use it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.api.common import actor_of, from_rows, get_store, one
from control_plane.errors import Conflict, Invalid, NotFound
from control_plane.queries import Q
from shared.events import Payload, RouteCreated, RouteDeleted
from shared.state import State

__all__ = ["RouteController"]

ModelName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f]+$")
]


class RouteIn(msgspec.Struct, forbid_unknown_fields=True):
    model: ModelName
    provider_id: uuid.UUID
    upstream_model: ModelName | None = None
    tenant_ids: list[uuid.UUID] | None = None  # absent or null: every tenant


class Route(msgspec.Struct):
    id: uuid.UUID
    model: str
    provider_id: uuid.UUID
    upstream_model: str
    tenant_ids: list[uuid.UUID] | None
    created_at: datetime


class RouteController(Controller):
    path = "/routes"
    tags = ["routes"]

    @post(status_code=HTTP_201_CREATED, summary="Route a model name to a provider")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[RouteIn]) -> Route:
        route_id = str(uuid.uuid4())
        provider_id = str(data.provider_id)
        tenant_ids = None if data.tenant_ids is None else tuple(str(t) for t in data.tenant_ids)

        def decide(state: State) -> list[Payload]:
            if provider_id not in state.providers:
                raise Invalid(f"provider {provider_id} does not exist")
            if state.route_for_model(data.model) is not None:
                raise Conflict(f"model {data.model!r} is already routed; delete that route first")
            unknown = [t for t in tenant_ids or () if t not in state.tenants]
            if unknown:
                raise Invalid(f"unknown tenant(s): {', '.join(unknown)}")
            return [
                RouteCreated(
                    id=route_id,
                    model=data.model,
                    provider_id=provider_id,
                    upstream_model=data.upstream_model or data.model,
                    tenant_ids=tenant_ids,
                )
            ]

        store = get_store(request)
        await store.append(f"route:{route_id}", decide, actor=actor_of(request), expected_version=0)
        row = await store.pool.fetchrow(Q.get_route, uuid.UUID(route_id))
        return one(Route, row, f"route {route_id}")

    @get(summary="List routes")
    async def list(self, request: Request[Any, Any, Any]) -> list[Route]:
        return from_rows(Route, await get_store(request).pool.fetch(Q.list_routes))

    @get("/{route_id:uuid}", summary="Get a route")
    async def read(self, request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID]) -> Route:
        row = await get_store(request).pool.fetchrow(Q.get_route, route_id)
        return one(Route, row, f"route {route_id}")

    @delete("/{route_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a route")
    async def remove(self, request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID]) -> None:
        rid = str(route_id)

        def decide(state: State) -> list[Payload]:
            if rid not in state.routes:
                raise NotFound(f"route {rid} does not exist")
            return [RouteDeleted(id=rid)]

        await get_store(request).append(f"route:{rid}", decide, actor=actor_of(request))
