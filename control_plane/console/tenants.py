"""Console: the tenants list, creating a tenant, and a tenant's page (its policy and
its keys). A tenant admin's list holds its own tenant only, and another tenant's page
is the API's 404."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from control_plane.console.api import AdminApi
from control_plane.console.base import admin_api, checked_form, page
from control_plane.console.forms import POLICY_FIELDS, policy_body, policy_values
from control_plane.console.spend import month_spend

__all__ = ["HANDLERS", "tenant_page"]


async def _policy(api: AdminApi, path: str) -> dict[str, Any] | None:
    """A policy, or None when none is set (the API's 404 for an unset policy)."""
    reply = await api.call("GET", path)
    return reply.body if reply.ok else None


@get("/tenants")
async def tenants(request: Request[Any, Any, Any]) -> Template:
    async with admin_api(request) as api:
        found = await api.get("/tenants", limit=1000)
    return page(request, "console/tenants.html", title="Tenants", tenants=found, form={}, errors={})


@post("/tenants", status_code=303)
async def create_tenant(request: Request[Any, Any, Any]) -> Response[Any] | Template:
    fields = await checked_form(request)
    async with admin_api(request) as api:
        reply = await api.call("POST", "/tenants", {"name": fields.get("name", "")})
        if reply.ok:
            return Redirect(f"/console/tenants/{reply.body['id']}", status_code=303)
        found = await api.get("/tenants", limit=1000)
    return page(
        request,
        "console/tenants.html",
        status=reply.status,
        title="Tenants",
        tenants=found,
        form=fields,
        errors=reply.field_errors(),
    )


async def tenant_page(
    request: Request[Any, Any, Any],
    tenant_id: FromPath[uuid.UUID],
    status: int = 200,
    policy_form: dict[str, str] | None = None,
    policy_errors: dict[str, str] | None = None,
    key_form: dict[str, str] | None = None,
    key_errors: dict[str, str] | None = None,
) -> Template:
    async with admin_api(request) as api:
        tenant = await api.get(f"/tenants/{tenant_id}")
        keys = await api.get(f"/tenants/{tenant_id}/keys")
        policy = await _policy(api, f"/tenants/{tenant_id}/policy")
        spend = await month_spend(api, tenant_id=str(tenant_id))
    return page(
        request,
        "console/tenant.html",
        status=status,
        title=f"Tenant {tenant['name']}",
        tenant=tenant,
        keys=keys,
        spend={key: numbers["cost_usd"] for key, numbers in spend.items()},
        policy=policy,
        policy_fields=POLICY_FIELDS,
        policy_values=policy_values(policy) if policy_form is None else policy_form,
        policy_errors=policy_errors or {},
        key_form=key_form or {},
        key_errors=key_errors or {},
    )


@get("/tenants/{tenant_id:uuid}")
async def tenant(request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID]) -> Template:
    return await tenant_page(request, tenant_id)


@post("/tenants/{tenant_id:uuid}/policy", status_code=303)
async def set_tenant_policy(
    request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    fields = await checked_form(request)
    async with admin_api(request) as api:
        if fields.get("action") == "remove":
            reply = await api.call("DELETE", f"/tenants/{tenant_id}/policy")
        else:
            reply = await api.call("PUT", f"/tenants/{tenant_id}/policy", policy_body(fields))
    if reply.ok or (reply.status == 404 and fields.get("action") == "remove"):
        return Redirect(f"/console/tenants/{tenant_id}", status_code=303)
    return await tenant_page(
        request,
        tenant_id,
        status=reply.status,
        policy_form=fields,
        policy_errors=reply.field_errors(),
    )


HANDLERS = [tenants, create_tenant, tenant, set_tenant_policy]
