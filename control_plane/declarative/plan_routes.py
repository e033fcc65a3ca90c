"""Routes and their deployments in a plan, made by the routes API's commands.

A route is known by its model. Its deployments have no names: one in the document is
the route's deployment on the same provider and upstream model (the first such in the
document the first such on the route, and so on); what matches none is added or
removed. Settings left out are the defaults, not the current values."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from control_plane.api.route_commands import (
    add_deployment,
    change_deployment,
    change_route,
    create_route,
    delete_route,
    new_deployment,
    remove_deployment,
    route_stream,
)
from control_plane.api.route_inputs import (
    BreakerIn,
    DeploymentChange,
    DeploymentIn,
    RetryIn,
    RouteIn,
    RouteSettingsIn,
    TimeoutsIn,
    merged,
)
from control_plane.declarative.changes import Change, Plan, added, differences
from control_plane.declarative.document import DeploymentDoc, Document, RouteDoc
from control_plane.declarative.located import ROUTE_FIELDS, at, located
from control_plane.store import Step
from shared.routing import BreakerPolicy, Deployment, RetryPolicy, Timeouts
from shared.state import Route, State

__all__ = ["plan_routes"]

Key = tuple[str, str]  # a deployment's provider id and upstream model
D = TypeVar("D", Deployment, DeploymentDoc)


def plan_routes(
    out: Plan, state: State, doc: Document, tenants: dict[str, str], providers: dict[str, str]
) -> None:
    """Remove the routes the document has not, create its new ones (each after the one it
    falls back to), then change the others. `tenants` and `providers`: ids by name."""
    wanted = {r.model for r in doc.routes}
    for old in sorted(state.routes.values(), key=lambda r: r.model):
        if old.model not in wanted:
            step = Step(route_stream(old.id), delete_route(old.id))
            out.add(Change("remove", "route", old.model), step)
    ids = _Ids(tenants, providers)
    for i in _creation_order(state, doc.routes):
        _create(out, doc.routes[i], f"routes[{i}]", ids)
    tenant_names = {t.id: t.name for t in state.tenants.values()}
    provider_names = {p.id: p.name for p in state.providers.values()}
    for i, route in enumerate(doc.routes):
        current = state.route_for_model(route.model)
        if current is not None:
            _change(out, current, route, f"routes[{i}]", ids, tenant_names)
            _deployments(out, current, route, f"routes[{i}]", ids, provider_names)


class _Ids:
    def __init__(self, tenants: dict[str, str], providers: dict[str, str]) -> None:
        self.tenants, self.providers = tenants, providers

    def tenant_ids(self, route: RouteDoc) -> list[uuid.UUID] | None:
        return (
            None if route.tenants is None else [uuid.UUID(self.tenants[t]) for t in route.tenants]
        )

    def deployment(self, deployment: DeploymentDoc) -> DeploymentIn:
        return DeploymentIn(
            provider_id=uuid.UUID(self.providers[deployment.provider]),
            upstream_model=deployment.upstream_model,
            weight=deployment.weight,
            priority=deployment.priority,
            rpm=deployment.rpm,
            tpm=deployment.tpm,
            timeouts=deployment.timeouts,
            continuation=deployment.continuation,
        )


def _creation_order(state: State, routes: list[RouteDoc]) -> list[int]:
    """The new routes' indexes, each after the new route it falls back to."""
    new = {r.model: i for i, r in enumerate(routes) if state.route_for_model(r.model) is None}
    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        fallback = routes[i].context_fallback
        if fallback in new:
            visit(new[fallback])  # no circles: `check` refused them
        order.append(i)

    for i in new.values():
        visit(i)
    return order


def _create(out: Plan, route: RouteDoc, path: str, ids: _Ids) -> None:
    route_id = str(uuid.uuid4())
    data = RouteIn(
        model=route.model,
        deployments=[ids.deployment(d) for d in route.deployments],
        strategy=route.strategy,
        tenant_ids=ids.tenant_ids(route),
        retry=route.retry,
        breaker=route.breaker,
        continuation=route.continuation,
        context_fallback=route.context_fallback,
    )
    with at(path, ROUTE_FIELDS):
        decide = create_route(route_id, data)
    shown = msgspec.to_builtins(route)
    del shown["model"], shown["deployments"]
    step = Step(route_stream(route_id), located(decide, path, ROUTE_FIELDS), 0)
    out.add(Change("create", "route", route.model, added(shown)), step)
    for name, deployment in _named(route.model, route.deployments, lambda d: d.provider):
        shown = msgspec.to_builtins(deployment)
        del shown["provider"], shown["upstream_model"]
        out.add(Change("create", "deployment", name, added(shown)))


def _settings(route: RouteDoc) -> dict[str, Any]:
    return {
        "tenants": route.tenants,
        "strategy": route.strategy,
        "retry": msgspec.to_builtins(_full(RetryPolicy(), route.retry)),
        "breaker": msgspec.to_builtins(_full(BreakerPolicy(), route.breaker)),
        "continuation": route.continuation,
        "context_fallback": route.context_fallback,
    }


def _current_settings(route: Route, tenants: dict[str, str]) -> dict[str, Any]:
    allowed = None
    if route.tenant_ids is not None:  # a deleted tenant's id is no longer anyone's
        allowed = sorted(tenants[t] for t in route.tenant_ids if t in tenants)
    return {
        "tenants": allowed,
        "strategy": route.strategy,
        "retry": msgspec.to_builtins(route.retry),
        "breaker": msgspec.to_builtins(route.breaker),
        "continuation": route.continuation,
        "context_fallback": route.context_fallback,
    }


def _change(
    out: Plan, current: Route, route: RouteDoc, path: str, ids: _Ids, tenants: dict[str, str]
) -> None:
    wanted = _settings(route)
    fields = differences(_current_settings(current, tenants), wanted)
    if not fields:
        return
    change = RouteSettingsIn(
        strategy=route.strategy,
        tenant_ids=ids.tenant_ids(route),
        retry=msgspec.convert(wanted["retry"], RetryIn),
        breaker=msgspec.convert(wanted["breaker"], BreakerIn),
        continuation=route.continuation,
        context_fallback=route.context_fallback,
    )
    decide = located(change_route(current.id, change), path, ROUTE_FIELDS)
    out.add(Change("change", "route", route.model, fields), Step(route_stream(current.id), decide))


def _deployments(
    out: Plan, current: Route, route: RouteDoc, path: str, ids: _Ids, names: dict[str, str]
) -> None:
    stream = route_stream(current.id)
    mine: dict[Key, list[Deployment]] = {}
    for deployment in current.deployments:
        mine.setdefault((deployment.provider_id, deployment.upstream_model), []).append(deployment)
    kept: set[str] = set()
    adds: list[tuple[Change, Step]] = []
    changes: list[tuple[Change, Step]] = []
    named = _named(route.model, route.deployments, lambda d: d.provider)
    for j, (name, wanted) in enumerate(named):
        at_j = f"{path}.deployments[{j}]"
        key = (ids.providers[wanted.provider], wanted.upstream_model)
        same = mine.get(key, [])
        match = same.pop(0) if same else None
        if match is None:
            decide = add_deployment(current.id, new_deployment(ids.deployment(wanted)))
            shown = msgspec.to_builtins(wanted)
            del shown["provider"], shown["upstream_model"]
            change = Change("create", "deployment", name, added(shown))
            adds.append((change, Step(stream, located(decide, at_j, ROUTE_FIELDS))))
            continue
        kept.add(match.id)
        after = _deployment_settings(wanted)
        fields = differences(_current_deployment(match), after)
        if fields:
            data = msgspec.convert(after, DeploymentChange)
            decide = change_deployment(current.id, match.id, data)
            changes.append(
                (
                    Change("change", "deployment", name, fields),
                    Step(stream, located(decide, at_j, ROUTE_FIELDS)),
                )
            )
    gone = [d for d in current.deployments if d.id not in kept]
    removes = [
        (
            Change("remove", "deployment", name),
            Step(stream, located(remove_deployment(current.id, d.id), f"{path}.deployments")),
        )
        for name, d in _named(route.model, gone, lambda d: names.get(d.provider_id, d.provider_id))
    ]
    # A route keeps at least one deployment at every step, and never has more than the
    # most it may have (when it is full, as the document is) until the last.
    order = [*removes, *changes, *adds] if kept else [*adds[:1], *removes, *adds[1:]]
    for change, step in order:
        out.add(change, step)


def _deployment_settings(deployment: DeploymentDoc) -> dict[str, Any]:
    return {
        "weight": deployment.weight,
        "priority": deployment.priority,
        "rpm": deployment.rpm,
        "tpm": deployment.tpm,
        "timeouts": msgspec.to_builtins(_full(Timeouts(), deployment.timeouts)),
        "continuation": deployment.continuation,
    }


def _current_deployment(deployment: Deployment) -> dict[str, Any]:
    shown: dict[str, Any] = msgspec.to_builtins(deployment)
    return {name: shown[name] for name in _DEPLOYMENT_SETTINGS}


_DEPLOYMENT_SETTINGS = ("weight", "priority", "rpm", "tpm", "timeouts", "continuation")


def _full(default: Any, given: RetryIn | BreakerIn | TimeoutsIn | UnsetType) -> Any:
    """The settings `given` sets, the defaults for the rest."""
    return default if given is UNSET else merged(default, given)


def _named(
    model: str, deployments: Iterable[D], provider: Callable[[D], str]
) -> list[tuple[str, D]]:
    """Each deployment with a name to show: `model: provider/upstream`, and `#2`, `#3`
    for more on the same provider and upstream model."""
    seen: dict[str, int] = {}
    named: list[tuple[str, D]] = []
    for deployment in deployments:
        name = f"{model}: {provider(deployment)}/{deployment.upstream_model}"
        seen[name] = seen.get(name, 0) + 1
        named.append((name if seen[name] == 1 else f"{name} #{seen[name]}", deployment))
    return named
