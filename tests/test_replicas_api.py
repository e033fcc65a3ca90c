"""`GET /admin/v1/replicas`: the live data planes, each with the position its snapshot
has reached and how far behind the log's head that is, from their own heartbeats; what
blocks one; and only platform identities may read it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from shared.events import EVENT_SCHEMA
from tests.support.authz import create_token
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(90)

WAIT = 20.0  # seconds: a heartbeat every 2, a sync on every NOTIFY


async def _replicas_until(stack: Stack, done: Any) -> list[dict[str, Any]]:
    """The API's list of replicas, once `done(list)` holds (the last list on timeout)."""
    deadline = time.monotonic() + WAIT
    async with stack.admin() as admin:
        while True:
            resp = await admin.get("/replicas")
            assert resp.status_code == 200, resp.text
            found: list[dict[str, Any]] = resp.json()
            if done(found) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)


def _synced(head: int) -> Any:
    def done(found: list[dict[str, Any]]) -> bool:
        return len(found) == 2 and all(r["position"] == head for r in found)

    return done


async def test_both_data_planes_report_the_head_once_synced(stack: Stack) -> None:
    await stack.create_tenant()  # an event, so that the head is past 0
    head = await stack.last_position()
    assert head > 0
    found = await _replicas_until(stack, _synced(head))
    assert len(found) == 2, found
    assert len({r["replica"] for r in found}) == 2
    for replica in found:
        assert replica["position"] == head
        assert replica["head"] == head
        assert replica["lag"] == 0
        assert replica["blocked"] is None
        assert replica["event_schema"] == EVENT_SCHEMA
        uuid.UUID(replica["replica"])
    # a new event: each replica's heartbeat catches up with the new head
    await stack.create_tenant()
    newer = await stack.last_position()
    assert newer > head
    found = await _replicas_until(stack, _synced(newer))
    assert [(r["position"], r["lag"]) for r in found] == [(newer, 0), (newer, 0)]


async def test_only_platform_identities_read_the_replicas(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    made = await create_token(stack, "tenant_admin", tenant["id"], name="tenant-ops")
    viewer = await create_token(stack, "viewer", name="watcher")
    async with httpx.AsyncClient(base_url=stack.control_plane_url, timeout=10) as client:
        as_tenant = await client.get(
            "/admin/v1/replicas", headers={"authorization": f"Bearer {made['token']}"}
        )
        as_viewer = await client.get(
            "/admin/v1/replicas", headers={"authorization": f"Bearer {viewer['token']}"}
        )
        nobody = await client.get("/admin/v1/replicas")
    assert as_tenant.status_code == 403, as_tenant.text
    assert as_tenant.headers["content-type"].startswith("application/problem+json")
    assert as_viewer.status_code == 200, as_viewer.text
    assert nobody.status_code == 401


async def test_a_blocked_replica_says_why_and_how_far_behind(stack: Stack) -> None:
    """Last in this module: the log then holds an event no replica of this build applies."""
    before = await stack.last_position()
    await _replicas_until(stack, _synced(before))
    tenant_id = str(uuid.uuid4())
    conn = await asyncpg.connect(stack.database_url)
    try:
        future: int = await conn.fetchval(
            "WITH e AS (INSERT INTO events"
            " (stream, stream_version, type, data, actor, event_schema)"
            " VALUES ($1, 1, 'tenant.created', $2::jsonb, 'system:test', $3) RETURNING position)"
            " SELECT position FROM e, pg_notify('sluice_events', position::text)",
            f"tenant:{tenant_id}",
            json.dumps({"id": tenant_id, "name": "from the future"}),
            EVENT_SCHEMA + 1,
        )
    finally:
        await conn.close()

    def blocked(found: list[dict[str, Any]]) -> bool:
        return len(found) == 2 and all(r["blocked"] for r in found)

    found = await _replicas_until(stack, blocked)
    assert len(found) == 2, found
    for replica in found:
        assert replica["head"] == future
        assert replica["position"] == before
        assert replica["lag"] == future - before
        assert f"cannot apply event {future}" in replica["blocked"]
        assert "newer build" in replica["blocked"]
