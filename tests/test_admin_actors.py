"""Every event names who made it: `admin:bootstrap` for the bootstrap token,
`token:<name>` for a named admin token; the audit log is searchable by actor; and a
tenant admin's audit log is its tenant's events (its keys' included), and no other."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.support.authz import all_events, as_token, create_token
from tests.support.stack import Stack

Event = dict[str, Any]


def _made(events: list[Event]) -> set[tuple[str, str]]:
    return {(e["type"], e["stream"]) for e in events}


async def test_each_identity_is_the_actor_of_its_events(control_plane: Stack) -> None:
    stack = control_plane
    tenant = (await stack.create_tenant())["id"]
    other = (await stack.create_tenant())["id"]
    platform = await create_token(stack, "platform_admin")
    admin = await create_token(stack, "tenant_admin", tenant)
    async with as_token(stack, platform["token"]) as client:
        made = await client.post(
            "/providers",
            json={"name": "actor-" + uuid.uuid4().hex[:6], "base_url": "http://127.0.0.1:9/v1"},
        )
        assert made.status_code == 201, made.text
        provider = made.json()["id"]
        platform_key = await client.post(f"/tenants/{tenant}/keys", json={"name": "by-platform"})
        assert platform_key.status_code == 201, platform_key.text
    async with as_token(stack, admin["token"]) as client:
        key = await client.post(f"/tenants/{tenant}/keys", json={"name": "by-tenant-admin"})
        assert key.status_code == 201, key.text
        kid = key.json()["id"]
        assert (await client.put(f"/keys/{kid}/policy", json={"rpm": 5})).status_code == 200
        assert (await client.delete(f"/keys/{kid}")).status_code == 204
    pkid = platform_key.json()["id"]
    async with stack.admin() as bootstrap:
        me = (await bootstrap.get("/me")).json()
        assert me == {"actor": "admin:bootstrap", "role": "platform_admin", "tenant_id": None}
        by_bootstrap = await all_events(bootstrap, actor="admin:bootstrap")
        by_platform = await all_events(bootstrap, actor=f"token:{platform['name']}")
        by_admin = await all_events(bootstrap, actor=f"token:{admin['name']}")
    assert {("tenant.created", f"tenant:{tenant}"), ("tenant.created", f"tenant:{other}")} <= _made(
        by_bootstrap
    )
    assert {("admin_token.created", f"admin_token:{admin['id']}")} <= _made(by_bootstrap)
    assert _made(by_platform) == {
        ("provider.created", f"provider:{provider}"),
        ("key.created", f"key:{pkid}"),
    }
    assert _made(by_admin) == {
        ("key.created", f"key:{kid}"),
        ("policy.set", f"key:{kid}"),
        ("key.revoked", f"key:{kid}"),
    }
    assert {e["actor"] for e in by_platform} == {f"token:{platform['name']}"}
    assert {e["actor"] for e in by_admin} == {f"token:{admin['name']}"}


async def test_a_tenant_admins_audit_log_is_its_tenants_events(control_plane: Stack) -> None:
    stack = control_plane
    tenant = (await stack.create_tenant())["id"]
    other = (await stack.create_tenant())["id"]
    mine = await stack.create_key(tenant)
    theirs = await stack.create_key(other)
    provider = (await stack.create_provider())["id"]
    admin = await create_token(stack, "tenant_admin", tenant)
    async with stack.admin() as bootstrap:
        for owner in (f"/keys/{mine['id']}", f"/keys/{theirs['id']}", f"/tenants/{other}"):
            assert (await bootstrap.put(f"{owner}/policy", json={"rpm": 9})).status_code == 200
        assert (await bootstrap.delete(f"/keys/{mine['id']}")).status_code == 204
    async with as_token(stack, admin["token"]) as client:
        made = await client.post(f"/tenants/{tenant}/keys", json={"name": "own"})
        assert made.status_code == 201, made.text
        seen = await all_events(client)
        by_bootstrap = await all_events(client, actor="admin:bootstrap")
    own_key = made.json()["id"]
    streams = {e["stream"] for e in seen}
    assert streams <= {
        f"tenant:{tenant}",
        f"key:{mine['id']}",
        f"key:{own_key}",
        f"admin_token:{admin['id']}",
    }
    assert {
        ("tenant.created", f"tenant:{tenant}"),
        ("key.created", f"key:{mine['id']}"),
        ("policy.set", f"key:{mine['id']}"),
        ("key.revoked", f"key:{mine['id']}"),
        ("key.created", f"key:{own_key}"),
    } <= _made(seen)
    assert {e["stream"] for e in by_bootstrap} <= streams
    assert f"provider:{provider}" not in streams
    # the column the filter reads: each event records its tenant, NULL for the platform's
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT stream, tenant_id FROM events WHERE stream = ANY($1::text[])",
            [f"key:{mine['id']}", f"key:{theirs['id']}", f"tenant:{other}", f"provider:{provider}"],
        )
    finally:
        await conn.close()
    owners = {(r["stream"], None if r["tenant_id"] is None else str(r["tenant_id"])) for r in rows}
    assert owners == {
        (f"key:{mine['id']}", tenant),
        (f"key:{theirs['id']}", other),
        (f"tenant:{other}", other),
        (f"provider:{provider}", None),
    }
