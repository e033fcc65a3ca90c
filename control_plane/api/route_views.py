"""How the admin API shows a route: its settings and its deployments, read from the
projections (`/routes`) or from a folded state (`/state`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from control_plane.errors import NotFound
from control_plane.projections import RouteSettings
from control_plane.queries import Q
from shared.routing import BreakerPolicy, Deployment, RetryPolicy, Timeouts
from shared.state import Route as StateRoute

__all__ = ["Route", "RouteSpec", "read_route", "read_routes"]


class RouteSpec(msgspec.Struct, kw_only=True):
    """A route as configured: the public model name, who may use it (null: every
    tenant), how to choose among its deployments, retry, and breaker."""

    id: str
    model: str
    strategy: str
    deployments: list[Deployment]
    tenant_ids: list[str] | None
    retry: RetryPolicy
    breaker: BreakerPolicy
    continuation: bool
    context_fallback: str | None

    @classmethod
    def from_state(cls, route: StateRoute) -> RouteSpec:
        return cls(
            id=route.id,
            model=route.model,
            strategy=route.strategy,
            deployments=list(route.deployments),
            tenant_ids=None if route.tenant_ids is None else sorted(route.tenant_ids),
            retry=route.retry,
            breaker=route.breaker,
            continuation=route.continuation,
            context_fallback=route.context_fallback,
        )


class Route(RouteSpec, kw_only=True):
    """A route with its version (its `ETag`; deployments' changes count too)."""

    version: int
    created_at: datetime
    updated_at: datetime


async def read_route(pool: asyncpg.Pool, route_id: str) -> Route:
    row = await pool.fetchrow(Q.get_route, uuid.UUID(route_id))
    if row is None:
        raise NotFound(f"route {route_id} does not exist")
    return (await _routes(pool, [row]))[0]


async def read_routes(pool: asyncpg.Pool) -> list[Route]:
    return await _routes(pool, await pool.fetch(Q.list_routes))


async def _routes(pool: asyncpg.Pool, rows: list[asyncpg.Record]) -> list[Route]:
    found = await pool.fetch(Q.list_deployments, [row["id"] for row in rows])
    deployments: dict[uuid.UUID, list[Deployment]] = {}
    for d in found:
        deployments.setdefault(d["route_id"], []).append(_deployment(d))
    return [_route(row, deployments.get(row["id"], [])) for row in rows]


def _route(row: asyncpg.Record, deployments: list[Deployment]) -> Route:
    settings = msgspec.json.decode(row["settings"], type=RouteSettings)
    tenant_ids: list[Any] | None = row["tenant_ids"]
    return Route(
        id=str(row["id"]),
        model=row["model"],
        strategy=row["strategy"],
        deployments=deployments,
        tenant_ids=None if tenant_ids is None else sorted(str(t) for t in tenant_ids),
        retry=settings.retry,
        breaker=settings.breaker,
        continuation=settings.continuation,
        context_fallback=settings.context_fallback,
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _deployment(row: asyncpg.Record) -> Deployment:
    return Deployment(
        id=str(row["id"]),
        provider_id=str(row["provider_id"]),
        upstream_model=row["upstream_model"],
        weight=row["weight"],
        priority=row["priority"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        timeouts=msgspec.json.decode(row["timeouts"], type=Timeouts),
        continuation=row["continuation"],
    )
