"""Rolling upgrades on one event log: a data plane never skips an event it cannot
apply (it stops there, says so, and keeps serving), and the control plane appends no
event a live replica cannot apply unless told to."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from shared.events import EVENT_SCHEMA
from shared.replicas import LIVENESS
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(120)

FORCE = {"X-Sluice-Force-Schema": "true"}
CHAT = {"model": "upgrade-model", "messages": [{"role": "user", "content": "hello"}]}
WAIT = 15.0  # seconds: only a bound on waiting, never an expectation


async def _sql(stack: Stack, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _insert_event(stack: Stack, stream: str, type_: str, data: dict[str, Any]) -> int:
    """An event written as a newer control plane would (then the NOTIFY doorbell)."""
    rows = await _sql(
        stack,
        "WITH e AS (INSERT INTO events (stream, stream_version, type, data, actor)"
        " VALUES ($1, 1, $2, $3::jsonb, 'system:test') RETURNING position)"
        " SELECT position, pg_notify('sluice_events', position::text) FROM e",
        stream,
        type_,
        json.dumps(data),
    )
    position: int = rows[0]["position"]
    return position


async def _ready(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(url + "/readyz")


async def _until_ready_status(url: str, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    async with httpx.AsyncClient(timeout=5) as client:
        while (resp := await _ready(client, url)).status_code != status:
            assert time.monotonic() < deadline, resp.text
            await asyncio.sleep(0.02)
    body: dict[str, Any] = resp.json()
    return body


async def _another_sync(stack: Stack, url: str) -> None:
    """Wait until the follower has synced again (a doorbell rung after a pause)."""
    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.sleep(0.3)  # so that the next sync's age is visibly smaller
        before = (await _ready(client, url)).json()["seconds_since_sync"]
        await _sql(stack, "SELECT pg_notify('sluice_events', '1')")
        deadline = time.monotonic() + WAIT
        while (await _ready(client, url)).json()["seconds_since_sync"] >= before:
            assert time.monotonic() < deadline, "the follower did not sync again"
            await asyncio.sleep(0.02)


async def test_a_replica_stops_at_an_event_it_cannot_apply_and_keeps_serving(
    stack: Stack,
) -> None:
    tenant = await stack.create_tenant()
    key = (await stack.create_key(tenant["id"]))["key"]
    provider = await stack.create_provider()
    await stack.create_route("upgrade-model", provider["id"], "fake-1")
    await stack.until_model(key, "upgrade-model", within=WAIT)
    url = stack.data_plane_urls[0]
    applied = (await _until_ready_status(url, 200))["position"]

    # what a newer build would write: a tenant event of a type this build does not know
    later_tenant = str(uuid.uuid4())
    position = await _insert_event(
        stack, f"tenant:{later_tenant}", "tenant.future", {"id": later_tenant}
    )

    body = await _until_ready_status(url, 503)
    assert body["status"] == "blocked"
    assert body["error"]["code"] == "snapshot_blocked"
    assert body["error"]["type"] == "server_error"
    assert f"event {position}" in body["error"]["message"]
    assert "'tenant.future'" in body["error"]["message"]
    assert body["blocked"] == {
        "position": position,
        "type": "tenant.future",
        "schema": 1,
        "reason": "unknown_type",
    }
    assert body["position"] == applied  # the events before it, nothing after

    async with httpx.AsyncClient(timeout=10) as client:
        chat = await client.post(
            url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
        )
        assert chat.status_code == 200, chat.text
        metrics = (await client.get(url + "/metrics")).text
    assert 'sluice_snapshot_blocked{reason="unknown_type"} 1.0' in metrics
    assert 'sluice_snapshot_blocked{reason="newer_schema"} 0.0' in metrics
    assert f"sluice_snapshot_blocked_position {float(position)}" in metrics

    # retries say nothing more: one log line for the event
    await _another_sync(stack, url)
    await _another_sync(stack, url)
    assert (await _until_ready_status(url, 503))["blocked"]["position"] == position
    server = next(s for s in stack.servers if s.name == f"data-plane-{url.rsplit(':', 1)[1]}")
    assert server.proc.poll() is None
    blocked_lines = re.findall(rf"snapshot blocked: cannot apply event {position}\b", server.log())
    assert len(blocked_lines) == 1

    # the event becomes one this build knows (as if it had been upgraded): it moves on
    await _sql(
        stack,
        "UPDATE events SET type = 'tenant.created', data = $2::jsonb WHERE position = $1",
        position,
        json.dumps({"id": later_tenant, "name": "later"}),
    )
    await _sql(stack, "SELECT pg_notify('sluice_events', $1)", str(position))
    body = await _until_ready_status(url, 200)
    assert body["status"] == "ready"
    assert body["position"] >= position
    assert "snapshot unblocked" in server.log()


async def test_an_event_of_a_newer_schema_is_not_applied(stack: Stack) -> None:
    url = stack.data_plane_urls[1]
    tenant_id = str(uuid.uuid4())
    rows = await _sql(
        stack,
        "WITH e AS (INSERT INTO events (stream, stream_version, type, data, actor, event_schema)"
        " VALUES ($1, 1, 'tenant.created', $2::jsonb, 'system:test', $3) RETURNING position)"
        " SELECT position, pg_notify('sluice_events', position::text) FROM e",
        f"tenant:{tenant_id}",
        json.dumps({"id": tenant_id, "name": "from the future"}),
        EVENT_SCHEMA + 1,
    )
    body = await _until_ready_status(url, 503)
    assert body["blocked"]["position"] == rows[0]["position"]
    assert body["blocked"]["reason"] == "newer_schema"
    assert body["blocked"]["schema"] == EVENT_SCHEMA + 1
    # a control plane of this build cannot fold that log either: it says so, and writes nothing
    async with stack.admin() as admin:
        refused = await admin.post("/tenants", json={"name": "after-the-future"})
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert f"event {rows[0]['position']}" in refused.json()["detail"]


async def test_live_replicas_report_the_schema_they_understand(stack: Stack) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        rows = await _sql(
            stack,
            "SELECT event_schema FROM fleet_replicas"
            " WHERE seen_at > now() - make_interval(secs => $1)",
            LIVENESS,
        )
        if len(rows) >= len(stack.data_plane_urls):
            break
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.1)
    assert {row["event_schema"] for row in rows} == {EVENT_SCHEMA}


async def _heartbeat(stack: Stack, replica: uuid.UUID, schema: int, age: float) -> None:
    """The heartbeat row of a replica that understands `schema`, `age` seconds ago."""
    await _sql(
        stack,
        "INSERT INTO fleet_replicas (replica, event_schema, seen_at)"
        " VALUES ($1, $2, now() - make_interval(secs => $3))"
        " ON CONFLICT (replica) DO UPDATE SET event_schema = $2,"
        " seen_at = now() - make_interval(secs => $3)",
        replica,
        schema,
        age,
    )


async def _event_count(stack: Stack) -> int:
    count: int = (await _sql(stack, "SELECT count(*) AS n FROM events"))[0]["n"]
    return count


async def test_no_event_a_live_replica_cannot_apply_unless_forced(control_plane: Stack) -> None:
    stack = control_plane
    old = uuid.uuid4()  # a replica of a build that understands no event schema yet
    await _heartbeat(stack, old, EVENT_SCHEMA - 1, 0)
    before = await _event_count(stack)
    async with stack.admin() as admin:
        refused = await admin.post("/tenants", json={"name": "while-old"})
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert str(old) in problem["detail"]
        assert f"schema {EVENT_SCHEMA - 1}" in problem["detail"]
        assert problem["errors"][0]["key"] == "X-Sluice-Force-Schema"
        assert problem["errors"][0]["source"] == "header"
        assert await _event_count(stack) == before

        # a PUT elsewhere in the API is refused the same way, and forced the same way
        forced = await admin.post("/tenants", json={"name": "while-old"}, headers=FORCE)
        assert forced.status_code == 201, forced.text
        tenant_id = forced.json()["id"]
        put = {"rpm": 10}
        refused = await admin.put(f"/tenants/{tenant_id}/policy", json=put)
        assert refused.status_code == 409, refused.text
        ok = await admin.put(f"/tenants/{tenant_id}/policy", json=put, headers=FORCE)
        assert ok.status_code == 200, ok.text

        bad = await admin.post(
            "/tenants", json={"name": "x"}, headers={"X-Sluice-Force-Schema": "yes"}
        )
        assert bad.status_code == 400, bad.text
        assert bad.json()["errors"][0]["key"] == "X-Sluice-Force-Schema"

        # once that replica stops reporting (past the liveness window), no refusal
        await _heartbeat(stack, old, EVENT_SCHEMA - 1, LIVENESS + 1)
        later = await admin.post("/tenants", json={"name": "after-old"})
        assert later.status_code == 201, later.text
        # a replica that understands the schema never stands in the way
        await _heartbeat(stack, uuid.uuid4(), EVENT_SCHEMA, 0)
        again = await admin.post("/tenants", json={"name": "with-current"})
        assert again.status_code == 201, again.text
    schemas = await _sql(stack, "SELECT DISTINCT event_schema FROM events")
    assert {row["event_schema"] for row in schemas} == {1}


async def test_the_force_header_is_in_the_openapi_document(control_plane: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        doc = (
            await client.get(control_plane.control_plane_url + "/admin/schema/openapi.json")
        ).json()
    writes = [
        op
        for item in doc["paths"].values()
        for method, op in item.items()
        if method in ("post", "put", "patch", "delete")
    ]
    assert writes
    for op in writes:
        names = [(p["name"], p["in"]) for p in op.get("parameters", [])]
        assert ("X-Sluice-Force-Schema", "header") in names, op.get("operationId")
    reads = [op for item in doc["paths"].values() for m, op in item.items() if m == "get"]
    for op in reads:
        assert "X-Sluice-Force-Schema" not in [p["name"] for p in op.get("parameters", [])]
