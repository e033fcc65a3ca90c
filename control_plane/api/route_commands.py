"""Commands on routes and their deployments.

Each returns a `decide(state)` for `EventStore.append`: what can be checked without
the state (the request's shape) is checked when the command is made, before any lock
is taken; what needs the state (providers, tenants, other routes) in `decide`, against
the state the events will apply to. Every event goes on the route's stream, so the
route's version covers its deployments."""

from __future__ import annotations

import uuid
from typing import TypeVar

import msgspec
from msgspec import UNSET

from control_plane.api.route_inputs import (
    MAX_DEPLOYMENTS,
    SETTINGS_FIELDS,
    DeploymentChange,
    DeploymentIn,
    RouteIn,
    RouteSettingsIn,
    merged,
)
from control_plane.errors import Conflict, Invalid, NotFound
from control_plane.store import Decide
from shared.events import (
    DeploymentAdded,
    DeploymentChanged,
    DeploymentRemoved,
    Payload,
    RouteChanged,
    RouteCreated,
    RouteDeleted,
)
from shared.routing import Deployment
from shared.state import Route, State

__all__ = [
    "add_deployment",
    "change_deployment",
    "change_route",
    "create_route",
    "delete_route",
    "new_deployment",
    "remove_deployment",
    "route_stream",
]


E = TypeVar("E", RouteCreated, RouteChanged)


def route_stream(route_id: str) -> str:
    return f"route:{route_id}"


def new_deployment(data: DeploymentIn, deployment_id: str | None = None) -> Deployment:
    """The deployment `data` describes, with a new id unless one is given."""
    base = Deployment(
        id=deployment_id or str(uuid.uuid4()),
        provider_id=str(data.provider_id),
        upstream_model=data.upstream_model,
    )
    return merged(base, data)


def create_route(route_id: str, data: RouteIn) -> Decide:
    legacy = data.provider_id is not None or data.upstream_model is not None
    if legacy and data.deployments is not UNSET:
        raise Invalid(
            "give deployments, or the older provider_id and upstream_model, not both",
            field="provider_id" if data.provider_id is not None else "upstream_model",
        )
    if data.deployments is not UNSET:
        deployments = data.deployments
        provider_fields = [f"deployments[{i}].provider_id" for i in range(len(deployments))]
    elif data.provider_id is not None:
        upstream = data.upstream_model or data.model
        deployments = [DeploymentIn(provider_id=data.provider_id, upstream_model=upstream)]
        provider_fields = ["provider_id"]
    else:
        field = "provider_id" if legacy else "deployments"
        raise Invalid(
            "a route needs deployments: [{provider_id, upstream_model, ...}]", field=field
        )
    base = RouteCreated(
        id=route_id, model=data.model, deployments=tuple(new_deployment(d) for d in deployments)
    )
    event = _unique_tenants(merged(base, data, SETTINGS_FIELDS))

    def decide(state: State) -> list[Payload]:
        if state.route_for_model(event.model) is not None:
            raise Conflict(
                f"model {event.model!r} is already routed; delete that route first", field="model"
            )
        _check_settings(state, event.model, data)
        for deployment, field in zip(event.deployments, provider_fields, strict=True):
            _provider_exists(state, deployment.provider_id, field)
        return [event]

    return decide


def change_route(route_id: str, change: RouteSettingsIn) -> Decide:
    """Settings the change leaves out stay as they are; no event when nothing changes."""

    def decide(state: State) -> list[Payload]:
        route = _route(state, route_id)
        current = RouteChanged(
            id=route.id,
            tenant_ids=None if route.tenant_ids is None else tuple(sorted(route.tenant_ids)),
            strategy=route.strategy,
            retry=route.retry,
            breaker=route.breaker,
            continuation=route.continuation,
            context_fallback=route.context_fallback,
        )
        event = _unique_tenants(merged(current, change))
        if event == current:
            return []
        _check_settings(state, route.model, change)
        return [event]

    return decide


def delete_route(route_id: str) -> Decide:
    def decide(state: State) -> list[Payload]:
        _route(state, route_id)
        return [RouteDeleted(id=route_id)]

    return decide


def add_deployment(route_id: str, deployment: Deployment) -> Decide:
    def decide(state: State) -> list[Payload]:
        route = _route(state, route_id)
        if len(route.deployments) >= MAX_DEPLOYMENTS:
            raise Conflict(f"a route has at most {MAX_DEPLOYMENTS} deployments")
        _provider_exists(state, deployment.provider_id, "provider_id")
        return [DeploymentAdded(route_id=route_id, deployment=deployment)]

    return decide


def change_deployment(route_id: str, deployment_id: str, change: DeploymentChange) -> Decide:
    """Fields the change leaves out stay as they are; no event when nothing changes."""

    def decide(state: State) -> list[Payload]:
        current = _deployment(_route(state, route_id), deployment_id)
        deployment = merged(current, change)
        if deployment == current:
            return []
        if change.provider_id is not UNSET:
            _provider_exists(state, deployment.provider_id, "provider_id")
        return [DeploymentChanged(route_id=route_id, deployment=deployment)]

    return decide


def remove_deployment(route_id: str, deployment_id: str) -> Decide:
    def decide(state: State) -> list[Payload]:
        route = _route(state, route_id)
        _deployment(route, deployment_id)
        if len(route.deployments) == 1:
            raise Conflict(
                f"deployment {deployment_id} is the last of route {route.model!r}: a route"
                " needs at least one; add another first, or delete the route"
            )
        return [DeploymentRemoved(route_id=route_id, id=deployment_id)]

    return decide


def _route(state: State, route_id: str) -> Route:
    route = state.routes.get(route_id)
    if route is None:
        raise NotFound(f"route {route_id} does not exist")
    return route


def _deployment(route: Route, deployment_id: str) -> Deployment:
    deployment = route.deployment(deployment_id)
    if deployment is None:
        raise NotFound(f"route {route.id} has no deployment {deployment_id}")
    return deployment


def _provider_exists(state: State, provider_id: str, field: str) -> None:
    if provider_id not in state.providers:
        raise Invalid(f"provider {provider_id} does not exist", field=field)


def _check_settings(state: State, model: str, change: RouteSettingsIn) -> None:
    """Check what `change` sets against the state (what it leaves out was checked before)."""
    if change.tenant_ids is not UNSET and change.tenant_ids is not None:
        unknown = sorted({str(t) for t in change.tenant_ids} - set(state.tenants.keys()))
        if unknown:
            raise Invalid(f"unknown tenant(s): {', '.join(unknown)}", field="tenant_ids")
    fallback = change.context_fallback
    if fallback is not UNSET and fallback is not None:
        if fallback == model:
            raise Invalid(
                "context_fallback must name another model than the route's own",
                field="context_fallback",
            )
        if state.route_for_model(fallback) is None:
            raise Invalid(
                f"context_fallback: model {fallback!r} is not routed", field="context_fallback"
            )


def _unique_tenants(event: E) -> E:
    if event.tenant_ids is None:
        return event
    return msgspec.structs.replace(event, tenant_ids=tuple(sorted(set(event.tenant_ids))))
