"""The tenant an event belongs to, recorded with it so a tenant's audit log is one
filter: its own stream's events, its keys', its policies', its budgets' and its
admin tokens'. None for the platform's own (providers, routes, prices)."""

from __future__ import annotations

from functools import singledispatch

from shared.events import (
    AdminTokenCreated,
    AdminTokenRevoked,
    BudgetAlert,
    BudgetExhausted,
    KeyCreated,
    KeyRevoked,
    Payload,
    PolicyCleared,
    PolicySet,
    TenantCreated,
    TenantDeleted,
    TenantRenamed,
)
from shared.state import State

__all__ = ["tenant_of"]


@singledispatch
def tenant_of(payload: Payload, state: State) -> str | None:
    """`state` is the state before the event (a revoked key is still in it)."""
    return None


@tenant_of.register
def _(p: TenantCreated | TenantRenamed | TenantDeleted, state: State) -> str | None:
    return p.id


@tenant_of.register
def _(p: KeyCreated, state: State) -> str | None:
    return p.tenant_id


@tenant_of.register
def _(p: KeyRevoked, state: State) -> str | None:
    return _key_tenant(state, p.id)


@tenant_of.register
def _(p: PolicySet | PolicyCleared, state: State) -> str | None:
    return p.id if p.scope == "tenant" else _key_tenant(state, p.id)


@tenant_of.register
def _(p: BudgetExhausted | BudgetAlert, state: State) -> str | None:
    scope, _, owner = p.scope.partition(":")
    return owner if scope == "tenant" else _key_tenant(state, owner)


@tenant_of.register
def _(p: AdminTokenCreated, state: State) -> str | None:
    return p.tenant_id


@tenant_of.register
def _(p: AdminTokenRevoked, state: State) -> str | None:
    token = state.admin_tokens.get(p.id)
    return None if token is None else token.tenant_id


def _key_tenant(state: State, key_id: str) -> str | None:
    key = state.keys.get(key_id)
    return None if key is None else key.tenant_id
