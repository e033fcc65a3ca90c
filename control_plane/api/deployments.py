"""A route's deployments, one at a time, and what the data planes report about them.

Changes go on the route's stream: `If-Match` takes the route's version, and every
answer carries the route's new `ETag`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.api.common import IfMatch, append, etag, from_rows, get_store
from control_plane.api.route_commands import (
    add_deployment,
    change_deployment,
    new_deployment,
    remove_deployment,
    route_stream,
)
from control_plane.api.route_inputs import DeploymentChange, DeploymentIn
from control_plane.api.route_views import read_route
from control_plane.authz import PLATFORM_READ, PLATFORM_WRITE, needs
from control_plane.errors import NotFound
from control_plane.queries import Q
from shared.routing import Deployment

__all__ = ["HEALTH_WINDOW_SECONDS", "DeploymentHealthController", "RouteDeploymentController"]

# A replica's report older than this is left out: that replica stopped, or cannot
# reach the database, and its view of the deployment is no longer current.
HEALTH_WINDOW_SECONDS = 60.0

DeploymentId = FromPath[uuid.UUID]


class RouteDeploymentController(Controller):
    path = "/routes/{route_id:uuid}/deployments"
    tags = ["routes"]

    @post(
        status_code=HTTP_201_CREATED,
        summary="Add a deployment to a route",
        opt=needs(PLATFORM_WRITE),
    )
    async def add(
        self,
        request: Request[Any, Any, Any],
        route_id: FromPath[uuid.UUID],
        data: JSONBody[DeploymentIn],
        if_match: IfMatch = None,
    ) -> Response[Deployment]:
        rid, deployment = str(route_id), new_deployment(data)
        await append(request, route_stream(rid), add_deployment(rid, deployment), if_match=if_match)
        return await _response(request, rid, deployment.id, HTTP_201_CREATED)

    @get(
        "/{deployment_id:uuid}",
        summary="Get one of a route's deployments",
        opt=needs(PLATFORM_READ),
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        route_id: FromPath[uuid.UUID],
        deployment_id: DeploymentId,
    ) -> Response[Deployment]:
        return await _response(request, str(route_id), str(deployment_id))

    @patch("/{deployment_id:uuid}", summary="Change a deployment", opt=needs(PLATFORM_WRITE))
    async def change(
        self,
        request: Request[Any, Any, Any],
        route_id: FromPath[uuid.UUID],
        deployment_id: DeploymentId,
        data: JSONBody[DeploymentChange],
        if_match: IfMatch = None,
    ) -> Response[Deployment]:
        """Fields left out stay as they are, inside `timeouts` too (no event when
        nothing changes)."""
        rid, did = str(route_id), str(deployment_id)
        decide = change_deployment(rid, did, data)
        await append(request, route_stream(rid), decide, if_match=if_match)
        return await _response(request, rid, did)

    @delete(
        "/{deployment_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove a deployment (not a route's last)",
        opt=needs(PLATFORM_WRITE),
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        route_id: FromPath[uuid.UUID],
        deployment_id: DeploymentId,
        if_match: IfMatch = None,
    ) -> Response[None]:
        rid, did = str(route_id), str(deployment_id)
        decide = remove_deployment(rid, did)
        await append(request, route_stream(rid), decide, if_match=if_match)
        route = await read_route(get_store(request).pool, rid)
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers=etag(route.version))


async def _response(
    request: Request[Any, Any, Any], route_id: str, deployment_id: str, status: int = 200
) -> Response[Deployment]:
    """The deployment, with its route's version as the `ETag`."""
    route = await read_route(get_store(request).pool, route_id)
    for deployment in route.deployments:
        if deployment.id == deployment_id:
            return Response(deployment, status_code=status, headers=etag(route.version))
    raise NotFound(f"route {route_id} has no deployment {deployment_id}")


class ReplicaHealth(msgspec.Struct):
    """One data-plane replica's view. `state`: the breaker, "closed" (in rotation),
    "open" (out, cooling down) or "half_open" (letting a probe through); `ttft_ms`: a
    moving average of the time to the first token; `requests` and `failures` count
    since that replica started."""

    replica: uuid.UUID
    state: str
    in_flight: int
    ttft_ms: float | None
    consecutive_failures: int
    requests: int
    failures: int
    last_error: str | None
    last_error_at: datetime | None
    updated_at: datetime


class DeploymentHealth(msgspec.Struct):
    deployment_id: uuid.UUID
    route_id: uuid.UUID
    replicas: list[ReplicaHealth]


class DeploymentHealthController(Controller):
    path = "/deployments"
    tags = ["routes"]

    @get(
        "/{deployment_id:uuid}/health",
        summary="A deployment's health, as each replica sees it",
        opt=needs(PLATFORM_READ),
    )
    async def health(
        self, request: Request[Any, Any, Any], deployment_id: DeploymentId
    ) -> DeploymentHealth:
        """One entry per data-plane replica that reported in the last 60 seconds (an
        empty list: none did). 404 when no route has this deployment now."""
        pool = get_store(request).pool
        route_id = await pool.fetchval(Q.deployment_route, deployment_id)
        if route_id is None:
            raise NotFound(f"no route has a deployment {deployment_id}")
        rows = await pool.fetch(Q.deployment_health, deployment_id, HEALTH_WINDOW_SECONDS)
        return DeploymentHealth(
            deployment_id=deployment_id, route_id=route_id, replicas=from_rows(ReplicaHealth, rows)
        )
