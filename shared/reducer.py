"""The one reducer: `apply(state, event) -> state`.

Pure and total over the known event types. The control plane uses it to
validate commands, the data plane to build its snapshot; there is no other copy
of this logic.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import singledispatch

import msgspec

from shared.events import (
    Event,
    KeyCreated,
    KeyRevoked,
    Payload,
    ProviderCreated,
    RouteCreated,
    RouteDeleted,
    TenantCreated,
    TenantDeleted,
    TenantRenamed,
)
from shared.state import ApiKey, Provider, Route, State, Tenant

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
    keys, by_hash = state.keys, state.key_ids_by_hash
    for key in state.keys.values():
        if key.tenant_id == p.id:
            keys, by_hash = keys.delete(key.id), by_hash.delete(key.hash)
    return msgspec.structs.replace(
        state, tenants=state.tenants.delete(p.id), keys=keys, key_ids_by_hash=by_hash
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
    return msgspec.structs.replace(
        state,
        keys=state.keys.delete(key.id),
        key_ids_by_hash=state.key_ids_by_hash.delete(key.hash),
    )


@_apply.register
def _(p: ProviderCreated, state: State) -> State:
    provider = Provider(
        id=p.id,
        name=p.name,
        kind=p.kind,
        base_url=p.base_url,
        api_key_ciphertext=p.api_key_ciphertext,
    )
    return msgspec.structs.replace(state, providers=state.providers.set(p.id, provider))


@_apply.register
def _(p: RouteCreated, state: State) -> State:
    route = Route(
        id=p.id,
        model=p.model,
        provider_id=p.provider_id,
        upstream_model=p.upstream_model,
        tenant_ids=None if p.tenant_ids is None else frozenset(p.tenant_ids),
    )
    routes, by_model = state.routes, state.route_ids_by_model
    replaced = by_model.get(p.model)
    if replaced is not None:
        routes = routes.delete(replaced)
    return msgspec.structs.replace(
        state, routes=routes.set(p.id, route), route_ids_by_model=by_model.set(p.model, p.id)
    )


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
