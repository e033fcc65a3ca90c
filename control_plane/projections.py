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
    BudgetAlert,
    BudgetExhausted,
    Event,
    KeyCreated,
    KeyRevoked,
    Payload,
    PolicyCleared,
    PolicySet,
    PriceCleared,
    PriceSet,
    ProviderCreated,
    ProviderPriceSet,
    RouteCreated,
    RouteDeleted,
    TenantCreated,
    TenantDeleted,
    TenantRenamed,
)

__all__ = ["project"]


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
        e.created_at,
    )


@_project.register
async def _(p: RouteCreated, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.routes_replaced, p.model, e.created_at)
    tenant_ids = None if p.tenant_ids is None else [UUID(t) for t in p.tenant_ids]
    await conn.execute(
        Q.route_created,
        UUID(p.id),
        p.model,
        UUID(p.provider_id),
        p.upstream_model,
        tenant_ids,
        e.created_at,
    )


@_project.register
async def _(p: RouteDeleted, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.route_deleted, UUID(p.id), e.created_at)


@_project.register
async def _(p: PolicySet, conn: asyncpg.Connection, e: Event) -> None:
    policy = {k: v for k, v in msgspec.structs.asdict(p).items() if k not in ("scope", "id")}
    await conn.execute(
        Q.policy_set, p.scope, UUID(p.id), msgspec.json.encode(policy).decode(), e.created_at
    )


@_project.register
async def _(p: PolicyCleared, conn: asyncpg.Connection, e: Event) -> None:
    await conn.execute(Q.policy_cleared, p.scope, UUID(p.id))


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
        Q.provider_price_set, UUID(p.provider_id), p.input_per_million, p.output_per_million
    )


@_project.register
async def _(p: BudgetExhausted | BudgetAlert, conn: asyncpg.Connection, e: Event) -> None:
    """Nothing to project: the event log itself is where cut-offs and alerts are read."""
