"""Tenants: the unit of isolation, policy and billing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.api.common import (
    IfMatch,
    Limit,
    Name,
    append,
    clean_name,
    from_rows,
    get_store,
    one,
    tenant_scope,
    versioned,
)
from control_plane.authz import LISTING, PLATFORM_WRITE, TENANT_PLATFORM_WRITE, TENANT_READ, needs
from control_plane.errors import Conflict, NotFound
from control_plane.queries import Q
from control_plane.store import Decide
from shared.events import Payload, TenantCreated, TenantDeleted, TenantRenamed
from shared.state import State

__all__ = ["TenantController", "create_tenant", "delete_tenant", "tenant_stream"]


class TenantIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class Tenant(msgspec.Struct):
    id: uuid.UUID
    name: str
    version: int
    created_at: datetime
    updated_at: datetime


def tenant_stream(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def _name_is_free(state: State, name: str, except_id: str | None = None) -> None:
    for tenant in state.tenants.values():
        if tenant.name == name and tenant.id != except_id:
            raise Conflict(f"a tenant named {name!r} already exists", field="name")


def _existing(state: State, tenant_id: str) -> None:
    if tenant_id not in state.tenants:
        raise NotFound(f"tenant {tenant_id} does not exist")


def create_tenant(tenant_id: str, name: str) -> Decide:
    """A new tenant named `name` (a cleaned name: see `clean_name`)."""

    def decide(state: State) -> list[Payload]:
        _name_is_free(state, name)
        return [TenantCreated(id=tenant_id, name=name)]

    return decide


def delete_tenant(tenant_id: str) -> Decide:
    """The tenant's end, and with it its keys' and policies'."""

    def decide(state: State) -> list[Payload]:
        _existing(state, tenant_id)
        return [TenantDeleted(id=tenant_id)]

    return decide


class TenantController(Controller):
    path = "/tenants"
    tags = ["tenants"]

    @post(status_code=HTTP_201_CREATED, summary="Create a tenant", opt=needs(PLATFORM_WRITE))
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[TenantIn]
    ) -> Response[Tenant]:
        tenant_id, name = str(uuid.uuid4()), clean_name(data.name)
        decide = create_tenant(tenant_id, name)
        await append(request, tenant_stream(tenant_id), decide, new=True)
        return await self._response(request, tenant_id, HTTP_201_CREATED)

    @get(summary="List tenants", opt=needs(LISTING))
    async def list(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = 100,
        offset: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0,
    ) -> list[Tenant]:
        rows = await get_store(request).pool.fetch(
            Q.list_tenants, limit, offset, tenant_scope(request)
        )
        return from_rows(Tenant, rows)

    @get("/{tenant_id:uuid}", summary="Get a tenant", opt=needs(TENANT_READ))
    async def read(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID]
    ) -> Response[Tenant]:
        return await self._response(request, str(tenant_id), 200)

    @patch("/{tenant_id:uuid}", summary="Rename a tenant", opt=needs(TENANT_PLATFORM_WRITE))
    async def rename(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[TenantIn],
        if_match: IfMatch = None,
    ) -> Response[Tenant]:
        tid, name = str(tenant_id), clean_name(data.name)

        def decide(state: State) -> list[Payload]:
            _existing(state, tid)
            _name_is_free(state, name, except_id=tid)
            return [TenantRenamed(id=tid, name=name)]

        await append(request, tenant_stream(tid), decide, if_match=if_match)
        return await self._response(request, tid, 200)

    @delete(
        "/{tenant_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a tenant",
        opt=needs(TENANT_PLATFORM_WRITE),
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        if_match: IfMatch = None,
    ) -> None:
        """Deleting a tenant revokes all its keys."""
        tid = str(tenant_id)
        await append(request, tenant_stream(tid), delete_tenant(tid), if_match=if_match)

    @staticmethod
    async def _response(
        request: Request[Any, Any, Any], tenant_id: str, status: int
    ) -> Response[Tenant]:
        row = await get_store(request).pool.fetchrow(Q.get_tenant, uuid.UUID(tenant_id))
        return versioned(one(Tenant, row, f"tenant {tenant_id}"), status)
