"""Named admin tokens: shown once, kept as hashes, bounded in time, revocable; `/me`;
and the store's atomic append across streams."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from control_plane.errors import NotFound
from control_plane.store import EventStore, Step
from shared.events import KeyCreated, Payload, TenantCreated
from shared.state import State
from tests.support.stack import Stack


def _as(stack: Stack, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.control_plane_url + "/admin/v1",
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )


async def _token(stack: Stack, **body: Any) -> dict[str, Any]:
    async with stack.admin() as admin:
        resp = await admin.post("/admin-tokens", json=body)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    stack.handed_out.append(created["token"])
    return created


async def test_a_token_is_shown_once_and_kept_as_a_hash(control_plane: Stack) -> None:
    tenant = await control_plane.create_tenant()
    created = await _token(
        control_plane, name="ci-deployer", role="tenant_admin", tenant_id=tenant["id"]
    )
    secret = created["token"]
    assert secret.startswith("sluice-admin-")
    assert secret.startswith(created["prefix"])
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    async with control_plane.admin() as admin:
        listed = (await admin.get("/admin-tokens")).json()
        one = (await admin.get(f"/admin-tokens/{created['id']}")).json()
        audit = (await admin.get("/events", params={"type": "admin_token.created"})).json()
    assert [t["name"] for t in listed] == ["ci-deployer"]
    assert "token" not in listed[0]
    assert "token" not in one
    assert secret not in str(listed) + str(one) + str(audit)
    assert audit["data"][0]["data"]["hash"] == "<redacted>"
    assert audit["data"][0]["tenant_id"] == tenant["id"]
    conn = await asyncpg.connect(control_plane.database_url)
    try:
        stored = await conn.fetchval(
            "SELECT data::text FROM events WHERE type = $1", "admin_token.created"
        )
    finally:
        await conn.close()
    assert secret not in stored
    async with _as(control_plane, secret) as caller:
        me = (await caller.get("/me")).json()
    assert me == {"actor": "token:ci-deployer", "role": "tenant_admin", "tenant_id": tenant["id"]}


async def test_me_names_the_bootstrap_token(control_plane: Stack) -> None:
    async with control_plane.admin() as admin:
        me = (await admin.get("/me")).json()
    assert me == {"actor": "admin:bootstrap", "role": "platform_admin", "tenant_id": None}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "x", "role": "tenant_admin"}, 400, "tenant_id"),
        ({"name": "x", "role": "platform_admin", "tenant_id": str(uuid.uuid4())}, 400, "tenant_id"),
        ({"name": "x", "role": "viewer", "tenant_id": str(uuid.uuid4())}, 404, "tenant_id"),
        ({"name": "x", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, 422, "expires_at"),
        ({"name": "x", "role": "viewer", "expires_at": "2099-01-01T00:00:00Z"}, 422, "expires_at"),
        ({"name": "x", "role": "viewer", "expires_at": "2030-01-01T00:00:00"}, 400, "expires_at"),
        ({"name": "x", "role": "owner"}, 400, "role"),
        ({"name": "x\u200b", "role": "viewer"}, 422, "name"),
        ({"name": "x", "role": "viewer", "scopes": []}, 400, "scopes"),
    ],
)
async def test_bad_token_requests_name_the_field(
    control_plane: Stack, body: dict[str, Any], status: int, field: str
) -> None:
    async with control_plane.admin() as admin:
        resp = await admin.post("/admin-tokens", json=body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert field in {e["key"] for e in resp.json()["errors"]}


async def test_names_are_unique_and_revocation_is_immediate(control_plane: Stack) -> None:
    created = await _token(control_plane, name="on-call", role="viewer")
    async with control_plane.admin() as admin:
        again = await admin.post("/admin-tokens", json={"name": "on-call", "role": "viewer"})
        assert again.status_code == 409
        assert again.json()["errors"][0]["key"] == "name"
        async with _as(control_plane, created["token"]) as caller:
            assert (await caller.get("/tenants")).status_code == 200
            assert (await admin.delete(f"/admin-tokens/{created['id']}")).status_code == 204
            refused = await caller.get("/tenants")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        # revoking again changes nothing; the name stays taken, so `token:on-call` in the
        # audit log is this token and no later one
        assert (await admin.delete(f"/admin-tokens/{created['id']}")).status_code == 204
        reused = await admin.post("/admin-tokens", json={"name": "on-call", "role": "viewer"})
        assert reused.status_code == 409
        assert (await admin.get(f"/admin-tokens/{created['id']}")).json()["revoked"] is True
        assert "on-call" not in {t["name"] for t in (await admin.get("/admin-tokens")).json()}
        revoked = await admin.get("/events", params={"type": "admin_token.revoked"})
    assert [e["actor"] for e in revoked.json()["data"]] == ["admin:bootstrap"]


def test_a_route_without_a_permission_is_refused_naming_nothing_internal(
    control_plane: Stack,
) -> None:
    """OPTIONS is such a route (made by the framework): refused, without its internals."""
    resp = httpx.options(
        control_plane.control_plane_url + "/admin/v1/tenants",
        headers={"authorization": f"Bearer {control_plane.admin_token}"},
    )
    assert resp.status_code == 403
    assert "litestar" not in resp.text
    assert "handler" not in resp.text


async def test_an_expired_token_is_refused(control_plane: Stack) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    created = await _token(control_plane, name="brief", role="viewer", expires_at=soon)
    async with _as(control_plane, created["token"]) as caller:
        while datetime.now(UTC) < datetime.fromisoformat(soon):
            if (await caller.get("/me")).status_code != 200:
                break
        resp = await caller.get("/me")
    assert resp.status_code == 401
    assert "expired" in resp.json()["detail"]


async def test_a_plan_over_several_streams_is_all_or_nothing(control_plane: Stack) -> None:
    """`append_all`: a refusal in the third step leaves the first two unwritten."""
    pool = await asyncpg.create_pool(control_plane.database_url, min_size=1, max_size=2)
    try:
        store = EventStore(pool, "sluice_events")
        before = await control_plane.last_position()
        tenant_id, key_id = str(uuid.uuid4()), str(uuid.uuid4())

        def tenant(_: State) -> list[Payload]:
            return [TenantCreated(id=tenant_id, name=f"atomic-{tenant_id[:8]}")]

        def key(state: State) -> list[Payload]:
            assert tenant_id in state.tenants  # sees the step before it
            return [KeyCreated(id=key_id, tenant_id=tenant_id, name="", prefix="p", hash="h")]

        def refuse(_: State) -> list[Payload]:
            raise NotFound("provider nobody does not exist", field="providers[0]")

        steps = [Step(f"tenant:{tenant_id}", tenant, 0), Step(f"key:{key_id}", key, 0)]
        with pytest.raises(NotFound):
            await store.append_all([*steps, Step("route:x", refuse)], actor="system:test")
        assert await control_plane.last_position() == before
        events = await store.append_all(steps, actor="system:test")
        assert [e.type for e in events] == ["tenant.created", "key.created"]
        rows = await pool.fetch(
            "SELECT tenant_id FROM events WHERE position > $1 ORDER BY position", before
        )
        assert [str(r["tenant_id"]) for r in rows] == [tenant_id, tenant_id]
    finally:
        await pool.close()


async def test_an_event_without_a_named_actor_cannot_be_stored(control_plane: Stack) -> None:
    conn = await asyncpg.connect(control_plane.database_url)
    try:
        for actor in ("", "admin", "someone"):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(
                    "INSERT INTO events (stream, stream_version, type, data, actor)"
                    " VALUES ('x:1', 1, 'tenant.created', '{}', $1)",
                    actor,
                )
    finally:
        await conn.close()
