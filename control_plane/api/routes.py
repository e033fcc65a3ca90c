"""Routes: a public model name, the deployments that serve it, how to choose among
them, and who may use it. A route's deployments have their own endpoints
(`control_plane.api.deployments`); their changes count in the route's version."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.api.common import IfMatch, append, get_store, versioned
from control_plane.api.route_commands import change_route, create_route, delete_route, route_stream
from control_plane.api.route_inputs import RouteIn, RouteSettingsIn
from control_plane.api.route_views import Route, read_route, read_routes
from control_plane.authz import PLATFORM_READ, PLATFORM_WRITE, needs

__all__ = ["RouteController"]


class RouteController(Controller):
    path = "/routes"
    tags = ["routes"]

    @post(
        status_code=HTTP_201_CREATED,
        summary="Route a model name to its deployments",
        opt=needs(PLATFORM_WRITE),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[RouteIn]
    ) -> Response[Route]:
        """`deployments` lists the upstreams (at least one); every other field is optional
        and takes its default. The older shape, `provider_id` and `upstream_model` instead
        of `deployments`, makes a route of one deployment. Deployment ids are made here."""
        route_id = str(uuid.uuid4())
        await append(request, route_stream(route_id), create_route(route_id, data), new=True)
        return await _response(request, route_id, HTTP_201_CREATED)

    @get(summary="List routes, with their deployments", opt=needs(PLATFORM_READ))
    async def list(self, request: Request[Any, Any, Any]) -> list[Route]:
        return await read_routes(get_store(request).pool)

    @get("/{route_id:uuid}", summary="Get a route, with its deployments", opt=needs(PLATFORM_READ))
    async def read(
        self, request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID]
    ) -> Response[Route]:
        return await _response(request, str(route_id))

    @patch("/{route_id:uuid}", summary="Change a route's settings", opt=needs(PLATFORM_WRITE))
    async def change(
        self,
        request: Request[Any, Any, Any],
        route_id: FromPath[uuid.UUID],
        data: JSONBody[RouteSettingsIn],
        if_match: IfMatch = None,
    ) -> Response[Route]:
        """Fields left out stay as they are, inside `retry` and `breaker` too (no event
        when nothing changes)."""
        rid = str(route_id)
        await append(request, route_stream(rid), change_route(rid, data), if_match=if_match)
        return await _response(request, rid)

    @delete(
        "/{route_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a route",
        opt=needs(PLATFORM_WRITE),
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        route_id: FromPath[uuid.UUID],
        if_match: IfMatch = None,
    ) -> None:
        rid = str(route_id)
        await append(request, route_stream(rid), delete_route(rid), if_match=if_match)


async def _response(
    request: Request[Any, Any, Any], route_id: str, status: int = 200
) -> Response[Route]:
    return versioned(await read_route(get_store(request).pool, route_id), status)
