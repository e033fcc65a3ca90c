"""Console: creating a key (its secret shown once), a key's page (its policy and its
spend against its budget), revoking it."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from control_plane.console.api import ApiError
from control_plane.console.base import admin_api, checked_form, page
from control_plane.console.forms import POLICY_FIELDS, policy_body, policy_values
from control_plane.console.spend import month_spend
from control_plane.console.tenants import tenant_page

__all__ = ["HANDLERS"]


@post("/tenants/{tenant_id:uuid}/keys", status_code=201)
async def create_key(request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID]) -> Template:
    fields = await checked_form(request)
    async with admin_api(request) as api:
        reply = await api.call(
            "POST", f"/tenants/{tenant_id}/keys", {"name": fields.get("name", "")}
        )
    if not reply.ok:
        return await tenant_page(
            request,
            tenant_id,
            status=reply.status,
            key_form=fields,
            key_errors=reply.field_errors(),
        )
    # the one response that holds the secret: not cached, not kept
    response = page(
        request, "console/key_created.html", status=201, title="Key created", key=reply.body
    )
    response.headers["cache-control"] = "no-store"
    return response


async def _key_page(
    request: Request[Any, Any, Any],
    key_id: FromPath[uuid.UUID],
    status: int = 200,
    policy_form: dict[str, str] | None = None,
    policy_errors: dict[str, str] | None = None,
) -> Template:
    async with admin_api(request) as api:
        key = await api.get(f"/keys/{key_id}")
        tenant = await api.get(f"/tenants/{key['tenant_id']}")
        mine = await api.call("GET", f"/keys/{key_id}/policy")
        tenants = await api.call("GET", f"/tenants/{key['tenant_id']}/policy")
        spend = await month_spend(api, key_id=str(key_id))
    policy = mine.body if mine.ok else None
    budget = (policy or {}).get("budget_usd")
    if budget is None and tenants.ok:
        budget = tenants.body.get("budget_usd")
    return page(
        request,
        "console/key.html",
        status=status,
        title=f"Key {key['name'] or key['key_prefix']}",
        key=key,
        tenant=tenant,
        policy=policy,
        spent=sum(numbers["cost_usd"] for numbers in spend.values()),
        requests=int(sum(numbers["requests"] for numbers in spend.values())),
        budget=budget,
        budget_from="key" if (policy or {}).get("budget_usd") is not None else "tenant",
        policy_fields=POLICY_FIELDS,
        policy_values=policy_values(policy) if policy_form is None else policy_form,
        policy_errors=policy_errors or {},
    )


@get("/keys/{key_id:uuid}")
async def key(request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID]) -> Template:
    return await _key_page(request, key_id)


@post("/keys/{key_id:uuid}/policy", status_code=303)
async def set_key_policy(
    request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    fields = await checked_form(request)
    remove = fields.get("action") == "remove"
    async with admin_api(request) as api:
        if remove:
            reply = await api.call("DELETE", f"/keys/{key_id}/policy")
        else:
            reply = await api.call("PUT", f"/keys/{key_id}/policy", policy_body(fields))
    if reply.ok or (remove and reply.status == 404):
        return Redirect(f"/console/keys/{key_id}", status_code=303)
    return await _key_page(
        request, key_id, status=reply.status, policy_form=fields, policy_errors=reply.field_errors()
    )


@post("/keys/{key_id:uuid}/revoke", status_code=303)
async def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID]) -> Response[Any]:
    await checked_form(request)
    async with admin_api(request) as api:
        found = await api.get(f"/keys/{key_id}")
        reply = await api.call("DELETE", f"/keys/{key_id}")
    if not reply.ok:
        raise ApiError(reply)
    return Redirect(f"/console/tenants/{found['tenant_id']}#keys", status_code=303)


HANDLERS = [create_key, key, set_key_policy, revoke_key]
