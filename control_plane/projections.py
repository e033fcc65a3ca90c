"""Keeping the admin API's tables in step with the event log.

`project(conn, event)` runs inside the append transaction, so a read after a
2xx response always sees the change.
"""

from __future__ import annotations

from functools import singledispatch
from uuid import UUID

import asyncpg
import msgspec

from control_plane.queries import Q
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
from shared.routing import BreakerPolicy, Deployment, RetryPolicy

__all__ = ["RouteSettings", "project"]


class RouteSettings(msgspec.Struct, frozen=True):
    """The shape of `routes.settings`. A key that is absent (a route projected before
    it existed) reads as the default."""

    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    continuation: bool = False
    context_fallback: str | None = None

    @classmethod
    def of(cls, p: RouteCreated | RouteChanged) -> RouteSettings:
        return cls(p.retry, p.breaker, p.continuation, p.context_fallback)


async def project(conn: asyncpg.Connection, event: Event) -> None:
    await _project(event.payload, conn, event)


@singledispatch
async def _project(payload: Payload, conn: asyncpg.Connection, event: Event) -> None:
    raise TypeError(f"no projection for {type(payload).__name__}")


@_project.register
async def _(p: TenantCreated, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.tenant_created, UUID(p.id), p.name, e.stream_version, e.created_at)


@_project.register
async def _(p: TenantRenamed, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.tenant_renamed, UUID(p.id), p.name, e.stream_version, e.created_at)


@_project.register
async def _(p: TenantDeleted, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.tenant_deleted, UUID(p.id), e.created_at, e.stream_version)
    await conn.execute(Q.tenant_policies_dropped, UUID(p.id))
    await conn.execute(Q.tenant_keys_revoked, UUID(p.id), e.created_at)


@_project.register
async def _(p: KeyCreated, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(
        Q.key_created, UUID(p.id), UUID(p.tenant_id), p.name, p.prefix, p.hash, e.created_at
    )


@_project.register
async def _(p: KeyRevoked, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.key_revoked, UUID(p.id), e.created_at)
    await conn.execute(Q.policy_cleared, "key", UUID(p.id))


@_project.register
async def _(p: ProviderCreated, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(
        Q.provider_created,
        UUID(p.id),
        p.name,
        p.kind,
        p.base_url,
        p.api_key_ciphertext,
        _options(p),
        e.stream_version,
        e.created_at,
    )


def _options(p: ProviderCreated | ProviderChanged) -> str:
    """`providers.options`: the pairs as a JSON object."""
    return msgspec.json.encode(dict(p.options)).decode()


@_project.register
async def _(p: ProviderChanged, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(
        Q.provider_changed,
        UUID(p.id),
        p.name,
        p.base_url,
        p.api_key_ciphertext,
        _options(p),
        e.stream_version,
        e.created_at,
    )


@_project.register
async def _(p: ProviderDeleted, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.provider_deleted, UUID(p.id), e.created_at, e.stream_version)


def _tenant_ids(p: RouteCreated | RouteChanged) -> list[UUID] | None:
    return None if p.tenant_ids is None else [UUID(t) for t in p.tenant_ids]


def _settings(p: RouteCreated | RouteChanged) -> str:
    return msgspec.json.encode(RouteSettings.of(p)).decode()


async def _deployment_added(
    conn: asyncpg.Connection, route_id: str, d: Deployment, e: Event, ordinal: int = 0
) -> None:
    await conn.execute(
        Q.deployment_added,
        UUID(d.id),
        UUID(route_id),
        *_deployment_columns(d),
        e.position,
        ordinal,
        e.created_at,
    )


def _deployment_columns(d: Deployment) -> tuple[object, ...]:
    """provider_id, upstream_model, weight, priority, rpm, tpm, timeouts, continuation."""
    timeouts = msgspec.json.encode(d.timeouts).decode()
    return (
        UUID(d.provider_id),
        d.upstream_model,
        d.weight,
        d.priority,
        d.rpm,
        d.tpm,
        timeouts,
        d.continuation,
    )


@_project.register
async def _(p: RouteCreated, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.replaced_route_deployments_dropped, p.model)
    await conn.execute(Q.routes_replaced, p.model, e.created_at)
    await conn.execute(
        Q.route_created,
        UUID(p.id),
        p.model,
        _tenant_ids(p),
        p.strategy,
        _settings(p),
        e.stream_version,
        e.created_at,
    )
    for ordinal, deployment in enumerate(p.served_by()):
        await _deployment_added(conn, p.id, deployment, e, ordinal)


@_project.register
async def _(p: RouteChanged, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(
        Q.route_changed,
        UUID(p.id),
        _tenant_ids(p),
        p.strategy,
        _settings(p),
        e.stream_version,
        e.created_at,
    )


@_project.register
async def _(p: DeploymentAdded, conn: asyncpg.Connection, e: Event) -> None:
    await _deployment_added(conn, p.route_id, p.deployment, e)
    await conn.execute(Q.route_touched, UUID(p.route_id), e.stream_version, e.created_at)


@_project.register
async def _(p: DeploymentChanged, conn: asyncpg.Connection, e: Event) -> None:
    d = p.deployment
    await conn.execute(
        Q.deployment_changed, UUID(d.id), UUID(p.route_id), *_deployment_columns(d), e.created_at
    )
    await conn.execute(Q.route_touched, UUID(p.route_id), e.stream_version, e.created_at)


@_project.register
async def _(p: DeploymentRemoved, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.deployment_removed, UUID(p.id), UUID(p.route_id))
    await conn.execute(Q.route_touched, UUID(p.route_id), e.stream_version, e.created_at)


@_project.register
async def _(p: RouteDeleted, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.route_deployments_dropped, UUID(p.id))
    await conn.execute(Q.route_deleted, UUID(p.id), e.created_at, e.stream_version)


@_project.register
async def _(p: PolicySet, conn: asyncpg.Connection, e: Event) -> None:
    policy = {k: v for k, v in msgspec.structs.asdict(p).items() if k not in ("scope", "id")}
    await conn.execute(
        Q.policy_set, p.scope, UUID(p.id), msgspec.json.encode(policy).decode(), e.created_at
    )
    await _policy_changed(p.scope, p.id, conn, e)


@_project.register
async def _(p: PolicyCleared, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.policy_cleared, p.scope, UUID(p.id))
    await _policy_changed(p.scope, p.id, conn, e)


async def _policy_changed(scope: str, owner: str, conn: asyncpg.Connection, e: Event) -> None:
    """A tenant's policy is on the tenant's stream: the tenant's version follows."""
    if scope == "tenant":
        await conn.execute(Q.tenant_version, UUID(owner), e.stream_version)


@_project.register
async def _(p: PriceSet, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(
        Q.price_set, p.model, p.input_per_million, p.output_per_million, e.created_at
    )


@_project.register
async def _(p: PriceCleared, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.price_cleared, p.model)


@_project.register
async def _(p: ProviderPriceSet, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(
        Q.provider_price_set,
        UUID(p.provider_id),
        p.input_per_million,
        p.output_per_million,
        e.stream_version,
        e.created_at,
    )


@_project.register
async def _(p: BudgetExhausted | BudgetAlert, conn: asyncpg.Connection, e: Event) -> None:
    """Nothing to project: the event log itself is where cut-offs and alerts are read."""


@_project.register
async def _(p: AdminTokenCreated | AdminTokenRevoked, conn: asyncpg.Connection, e: Event) -> None:
    """Nothing to project: admin tokens are few, and read from the folded state."""
