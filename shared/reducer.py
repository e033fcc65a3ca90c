"""The one reducer: `apply(state, event) -> state`.

Pure and total over the known event types. The control plane uses it to
validate commands, the data plane to build its snapshot; there is no other copy
of this logic.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import singledispatch
from typing import Any

import msgspec
from immutables import Map

from shared.events import (
    AdminTokenCreated,
    AdminTokenRevoked,
    BudgetAlert,
    BudgetExhausted,
    DeploymentAdded,
    DeploymentChanged,
    DeploymentRemoved,
    Event,
    KeyCreated,
    KeyRevoked,
    Payload,
    PolicyCleared,
    PolicySet,
    PriceCleared,
    PriceSet,
    ProviderChanged,
    ProviderCreated,
    ProviderDeleted,
    ProviderPriceSet,
    RouteChanged,
    RouteCreated,
    RouteDeleted,
    TenantCreated,
    TenantDeleted,
    TenantRenamed,
)
from shared.state import AdminToken, ApiKey, Policy, Price, Provider, Route, State, Tenant

__all__ = ["OutOfOrderEvent", "apply", "fold"]


class OutOfOrderEvent(ValueError):
    """An event whose position is not after the state's: applying it would corrupt the state."""


def apply(state: State, event: Event) -> State:
    if event.position <= state.position:
        raise OutOfOrderEvent(f"event {event.position} is not after state {state.position}")
    changed = _apply(event.payload, state)
    return msgspec.structs.replace(
        changed, position=event.position, event_count=state.event_count + 1
    )


def fold(state: State, events: Iterable[Event]) -> State:
    for event in events:
        state = apply(state, event)
    return state


@singledispatch
def _apply(payload: Payload, state: State) -> State:
    raise TypeError(f"no reducer for {type(payload).__name__}")


@_apply.register
def _(p: TenantCreated, state: State) -> State:
    tenants = state.tenants.set(p.id, Tenant(id=p.id, name=p.name))
    return msgspec.structs.replace(state, tenants=tenants)


@_apply.register
def _(p: TenantRenamed, state: State) -> State:
    if p.id not in state.tenants:
        return state
    tenants = state.tenants.set(p.id, Tenant(id=p.id, name=p.name))
    return msgspec.structs.replace(state, tenants=tenants)


@_apply.register
def _(p: TenantDeleted, state: State) -> State:
    if p.id not in state.tenants:
        return state
    keys, by_hash, key_policies = state.keys, state.key_ids_by_hash, state.key_policies
    for key in state.keys.values():
        if key.tenant_id == p.id:
            keys, by_hash = keys.delete(key.id), by_hash.delete(key.hash)
            if key.id in key_policies:
                key_policies = key_policies.delete(key.id)
    tenant_policies = state.tenant_policies
    if p.id in tenant_policies:
        tenant_policies = tenant_policies.delete(p.id)
    admin_tokens = state.admin_tokens
    for token in state.admin_tokens.values():
        if token.tenant_id == p.id:  # a tenant's own admins and viewers end with it
            admin_tokens = admin_tokens.set(token.id, _revoked(token))
    return msgspec.structs.replace(
        state,
        admin_tokens=admin_tokens,
        tenants=state.tenants.delete(p.id),
        keys=keys,
        key_ids_by_hash=by_hash,
        key_policies=key_policies,
        tenant_policies=tenant_policies,
    )


@_apply.register
def _(p: KeyCreated, state: State) -> State:
    if p.tenant_id not in state.tenants:
        return state
    key = ApiKey(id=p.id, tenant_id=p.tenant_id, name=p.name, prefix=p.prefix, hash=p.hash)
    return msgspec.structs.replace(
        state,
        keys=state.keys.set(key.id, key),
        key_ids_by_hash=state.key_ids_by_hash.set(key.hash, key.id),
    )


@_apply.register
def _(p: KeyRevoked, state: State) -> State:
    key = state.keys.get(p.id)
    if key is None:
        return state
    key_policies = state.key_policies
    if key.id in key_policies:
        key_policies = key_policies.delete(key.id)
    return msgspec.structs.replace(
        state,
        keys=state.keys.delete(key.id),
        key_ids_by_hash=state.key_ids_by_hash.delete(key.hash),
        key_policies=key_policies,
    )


@_apply.register
def _(p: ProviderCreated, state: State) -> State:
    provider = Provider(
        id=p.id,
        name=p.name,
        kind=p.kind,
        base_url=p.base_url,
        api_key_ciphertext=p.api_key_ciphertext,
        options=p.options,
    )
    return msgspec.structs.replace(state, providers=state.providers.set(p.id, provider))


@_apply.register
def _(p: ProviderChanged, state: State) -> State:
    old = state.providers.get(p.id)
    if old is None:
        return state
    provider = msgspec.structs.replace(
        old,
        name=p.name,
        base_url=p.base_url,
        api_key_ciphertext=p.api_key_ciphertext,
        options=p.options,
    )
    return msgspec.structs.replace(state, providers=state.providers.set(p.id, provider))


@_apply.register
def _(p: ProviderDeleted, state: State) -> State:
    if p.id not in state.providers:
        return state
    prices = state.provider_prices
    if p.id in prices:
        prices = prices.delete(p.id)
    return msgspec.structs.replace(
        state, providers=state.providers.delete(p.id), provider_prices=prices
    )


@_apply.register
def _(p: RouteCreated, state: State) -> State:
    route = Route(id=p.id, model=p.model, deployments=p.served_by(), **_route_settings(p))
    routes, by_model = state.routes, state.route_ids_by_model
    replaced = by_model.get(p.model)
    if replaced is not None:
        routes = routes.delete(replaced)
    return msgspec.structs.replace(
        state, routes=routes.set(p.id, route), route_ids_by_model=by_model.set(p.model, p.id)
    )


def _route_settings(p: RouteCreated | RouteChanged) -> dict[str, Any]:
    """A route's settings as an event states them (everything but its deployments)."""
    return {
        "tenant_ids": None if p.tenant_ids is None else frozenset(p.tenant_ids),
        "strategy": p.strategy,
        "retry": p.retry,
        "breaker": p.breaker,
        "continuation": p.continuation,
        "context_fallback": p.context_fallback,
    }


def _with_route(state: State, route: Route) -> State:
    return msgspec.structs.replace(state, routes=state.routes.set(route.id, route))


@_apply.register
def _(p: RouteChanged, state: State) -> State:
    route = state.routes.get(p.id)
    if route is None:
        return state
    changed = msgspec.structs.replace(route, **_route_settings(p))
    return _with_route(state, changed)


@_apply.register
def _(p: DeploymentAdded, state: State) -> State:
    route = state.routes.get(p.route_id)
    if route is None or route.deployment(p.deployment.id) is not None:
        return state
    deployments = (*route.deployments, p.deployment)
    return _with_route(state, msgspec.structs.replace(route, deployments=deployments))


@_apply.register
def _(p: DeploymentChanged, state: State) -> State:
    route = state.routes.get(p.route_id)
    if route is None or route.deployment(p.deployment.id) is None:
        return state
    deployments = tuple(p.deployment if d.id == p.deployment.id else d for d in route.deployments)
    return _with_route(state, msgspec.structs.replace(route, deployments=deployments))


@_apply.register
def _(p: DeploymentRemoved, state: State) -> State:
    route = state.routes.get(p.route_id)
    if route is None or route.deployment(p.id) is None:
        return state
    deployments = tuple(d for d in route.deployments if d.id != p.id)
    return _with_route(state, msgspec.structs.replace(route, deployments=deployments))


@_apply.register
def _(p: RouteDeleted, state: State) -> State:
    route = state.routes.get(p.id)
    if route is None:
        return state
    by_model = state.route_ids_by_model
    if by_model.get(route.model) == route.id:
        by_model = by_model.delete(route.model)
    return msgspec.structs.replace(
        state, routes=state.routes.delete(p.id), route_ids_by_model=by_model
    )


def _policy_map(state: State, scope: str) -> tuple[str, Map[str, Policy]] | None:
    if scope == "tenant":
        return "tenant_policies", state.tenant_policies
    if scope == "key":
        return "key_policies", state.key_policies
    return None


@_apply.register
def _(p: PolicySet, state: State) -> State:
    found = _policy_map(state, p.scope)
    owners = state.tenants if p.scope == "tenant" else state.keys
    if found is None or p.id not in owners:
        return state
    field, policies = found
    scope_name = f"{p.scope}:{p.id}"
    if scope_name in state.budget_exhausted:  # a new policy is a new judgement
        state = msgspec.structs.replace(
            state, budget_exhausted=state.budget_exhausted.delete(scope_name)
        )
        policies = state.tenant_policies if p.scope == "tenant" else state.key_policies
    policy = Policy(
        rpm=p.rpm,
        tpm=p.tpm,
        max_concurrent=p.max_concurrent,
        models=None if p.models is None else frozenset(p.models),
        max_tokens=p.max_tokens,
        budget_usd=p.budget_usd,
        budget_period=p.budget_period,
        soft_budget_usd=p.soft_budget_usd,
    )
    return msgspec.structs.replace(state, **{field: policies.set(p.id, policy)})


@_apply.register
def _(p: PolicyCleared, state: State) -> State:
    found = _policy_map(state, p.scope)
    if found is None or p.id not in found[1]:
        return state
    field, policies = found
    return msgspec.structs.replace(state, **{field: policies.delete(p.id)})


@_apply.register
def _(p: PriceSet, state: State) -> State:
    price = Price(input_per_million=p.input_per_million, output_per_million=p.output_per_million)
    return msgspec.structs.replace(state, prices=state.prices.set(p.model, price))


@_apply.register
def _(p: PriceCleared, state: State) -> State:
    if p.model not in state.prices:
        return state
    return msgspec.structs.replace(state, prices=state.prices.delete(p.model))


@_apply.register
def _(p: ProviderPriceSet, state: State) -> State:
    if p.provider_id not in state.providers:
        return state
    price = Price(input_per_million=p.input_per_million, output_per_million=p.output_per_million)
    return msgspec.structs.replace(
        state, provider_prices=state.provider_prices.set(p.provider_id, price)
    )


@_apply.register
def _(p: BudgetExhausted, state: State) -> State:
    return msgspec.structs.replace(
        state, budget_exhausted=state.budget_exhausted.set(p.scope, p.period)
    )


@_apply.register
def _(p: BudgetAlert, state: State) -> State:
    return msgspec.structs.replace(
        state, budget_alerted=state.budget_alerted.set(p.scope, p.period)
    )


@_apply.register
def _(p: AdminTokenCreated, state: State) -> State:
    if p.tenant_id is not None and p.tenant_id not in state.tenants:
        return state
    token = AdminToken(
        id=p.id,
        name=p.name,
        role=p.role,
        tenant_id=p.tenant_id,
        prefix=p.prefix,
        hash=p.hash,
        expires_at=p.expires_at.timestamp(),
    )
    return msgspec.structs.replace(state, admin_tokens=state.admin_tokens.set(p.id, token))


@_apply.register
def _(p: AdminTokenRevoked, state: State) -> State:
    token = state.admin_tokens.get(p.id)
    if token is None:
        return state
    return msgspec.structs.replace(
        state, admin_tokens=state.admin_tokens.set(p.id, _revoked(token))
    )


def _revoked(token: AdminToken) -> AdminToken:
    return msgspec.structs.replace(token, revoked=True)
