"""Every data plane folds exactly the event log: under concurrent writers, across a
killed LISTEN connection, and when starting from a stored snapshot."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from control_plane.store import EventStore
from data_plane.sync import FOLLOWER_APPLICATION_NAME
from shared.event_log import catch_up
from shared.events import (
    KeyCreated,
    Payload,
    TenantCreated,
    TenantRenamed,
    encode_payload,
    event_type,
)
from shared.snapshot_codec import state_digest
from shared.state import State
from tests.support.processes import Server, free_port
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(120)


async def _table_fold(database_url: str) -> tuple[State, int]:
    """The fold of the whole table, from scratch, and the table's row count."""
    conn = await asyncpg.connect(database_url)
    try:
        state = await catch_up(conn, State())
        count: int = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    return state, count


async def _snapshot_of(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        data: dict[str, Any] = (await client.get(url + "/debug/snapshot")).json()
        return data


async def _until_position(urls: list[str], position: int, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    for url in urls:
        while (await _snapshot_of(url))["position"] < position:
            assert time.monotonic() < deadline, f"{url} did not reach position {position}"
            await asyncio.sleep(0.05)


async def test_concurrent_writers_two_followers_exact_fold(stack: Stack) -> None:
    writers, per_writer = 8, 500
    pools = [await asyncpg.create_pool(stack.database_url, min_size=1, max_size=4) for _ in (0, 1)]
    # two stores: two control-plane processes' worth of writers
    stores = [EventStore(pool, "sluice_events") for pool in pools]
    shared_ids = [str(uuid.uuid4()) for _ in range(4)]
    for tid in shared_ids:
        await stores[0].append(
            f"tenant:{tid}",
            lambda s, t=tid: [TenantCreated(id=t, name=f"shared-{t}")],
            actor="system:w",
        )

    async def writer(w: int) -> None:
        store = stores[w % 2]
        own = str(uuid.uuid4())
        await store.append(
            f"tenant:{own}",
            lambda s: [TenantCreated(id=own, name=f"own-{own}")],
            actor=f"system:w{w}",
        )
        for i in range(per_writer - 1):
            if i % 2:  # a stream every writer shares
                tid = shared_ids[i % len(shared_ids)]

                def decide(s: State, t: str = tid, n: str = f"w{w}-{i}") -> list[Payload]:
                    return [TenantRenamed(id=t, name=n)]

                await store.append(f"tenant:{tid}", decide, actor=f"system:w{w}")
            else:  # a stream of its own
                kid = str(uuid.uuid4())

                def create(s: State, k: str = kid) -> list[Payload]:
                    return [KeyCreated(id=k, tenant_id=own, name="", prefix="p", hash=k)]

                await store.append(f"key:{kid}", create, actor=f"system:w{w}")

    try:
        await asyncio.gather(*(writer(w) for w in range(writers)))
    finally:
        for pool in pools:
            await pool.close()
    expected, rows = await _table_fold(stack.database_url)
    assert expected.event_count == rows
    await _until_position(stack.data_plane_urls, expected.position)
    for url in stack.data_plane_urls:
        seen = await _snapshot_of(url)
        assert seen["position"] == expected.position
        assert seen["event_count"] == rows  # every event once: no gap, no duplicate
        assert seen["digest"] == state_digest(expected)


async def _kill_listeners(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            FOLLOWER_APPLICATION_NAME,
        )
    finally:
        await conn.close()
    return len(killed)


async def test_killed_listener_reconnects_and_catches_up(stack: Stack) -> None:
    """Killed server-side three times in a row: each time the data planes reconnect
    quickly (the backoff starts afresh after a good connection) and apply the
    event appended while they were away."""
    tenant = await stack.create_tenant()
    async with httpx.AsyncClient(timeout=5) as client:
        before = [
            (await client.get(u + "/readyz")).json()["reconnects"] for u in stack.data_plane_urls
        ]
        for _ in range(3):
            assert await _kill_listeners(stack.database_url) == len(stack.data_plane_urls)
            key = await stack.create_key(tenant["id"])  # appended while the listeners are down
            deadline = time.monotonic() + 2
            for url in stack.data_plane_urls:
                auth = {"authorization": f"Bearer {key['key']}"}
                while (await client.get(url + "/v1/models", headers=auth)).status_code != 200:
                    assert time.monotonic() < deadline, f"{url} never saw the new key"
                    await asyncio.sleep(0.02)
        for url, earlier in zip(stack.data_plane_urls, before, strict=True):
            deadline = time.monotonic() + 2
            while (ready := (await client.get(url + "/readyz")).json())["reconnects"] < earlier + 3:
                assert time.monotonic() < deadline, ready
                await asyncio.sleep(0.02)
            assert ready["connected"] is True
            metrics = (await client.get(url + "/metrics")).text
            assert f"sluice_event_log_reconnects_total {float(ready['reconnects'])}" in metrics


async def test_snapshots_are_written_and_new_data_planes_start_from_them(stack: Stack) -> None:
    await stack.create_tenant()  # at least one event after any earlier snapshot
    expected, _ = await _table_fold(stack.database_url)
    conn = await asyncpg.connect(stack.database_url)
    try:
        deadline = time.monotonic() + 15
        while True:  # the control plane's timer asks for one every second in the tests
            newest = await conn.fetchval("SELECT max(position) FROM snapshots")
            if newest is not None and newest >= expected.position:
                break
            assert time.monotonic() < deadline, "no snapshot was written"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    server = stack.start_data_plane()
    server.wait_http(stack.data_plane_urls[-1] + "/readyz")
    assert f"starting from the snapshot at position {newest}" in server.log()
    await _until_position([stack.data_plane_urls[-1]], expected.position)
    current, _ = await _table_fold(stack.database_url)
    seen = await _snapshot_of(stack.data_plane_urls[-1])
    assert seen["digest"] == state_digest(current)
    server.stop()
    stack.data_plane_urls.pop()
    stack.servers.remove(server)


async def test_a_snapshot_of_an_unknown_schema_is_refused_and_said(stack: Stack) -> None:
    expected, _ = await _table_fold(stack.database_url)
    future = msgspec.msgpack.encode({"schema_version": 999, "anything": [1, 2, 3]})
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "INSERT INTO snapshots (position, schema_version, data) VALUES ($1, 999, $2)"
            " ON CONFLICT (position) DO UPDATE SET schema_version = 999, data = $2",
            expected.position,
            future,
        )
    finally:
        await conn.close()
    server = stack.start_data_plane()
    try:
        server.wait_http(stack.data_plane_urls[-1] + "/readyz")
        seen = await _snapshot_of(stack.data_plane_urls[-1])
        async with httpx.AsyncClient(timeout=5) as client:
            metrics = (await client.get(stack.data_plane_urls[-1] + "/metrics")).text
    finally:
        server.stop()
        stack.data_plane_urls.pop()
        stack.servers.remove(server)
    assert "snapshot schema 999" in server.log()
    assert seen["digest"] == state_digest((await _table_fold(stack.database_url))[0])
    assert 'sluice_snapshot_rejected_total{reason="stored_snapshot"} 1.0' in metrics


async def test_the_safety_poll_covers_a_lost_notification(stack: Stack) -> None:
    """An event that commits without its NOTIFY still arrives, by the slow poll."""
    port = free_port()
    env = {
        **stack.env,
        "SLUICE_SYNC_POLL_INTERVAL": "0.3",
        "SLUICE_SNAPSHOT_CACHE": str(stack.log_dir / f"cache-{port}.msgpack"),
    }
    plane = Server("data-plane-poll", "data_plane", ["--port", str(port)], env, stack.log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        plane.wait_http(url + "/readyz")
        tid = str(uuid.uuid4())
        payload = TenantCreated(id=tid, name="no-doorbell")
        conn = await asyncpg.connect(stack.database_url)
        try:  # the event alone, as if its notification had been lost
            position = await conn.fetchval(
                "INSERT INTO events (stream, stream_version, type, data, actor)"
                " VALUES ($1, 1, $2, $3::jsonb, 'system:test') RETURNING position",
                f"tenant:{tid}",
                event_type(payload),
                encode_payload(payload).decode(),
            )
        finally:
            await conn.close()
        await _until_position([url], position, within=5)
    finally:
        plane.stop()


async def test_readiness_and_metrics_report_the_sync(stack: Stack) -> None:
    await stack.create_tenant()
    expected, rows = await _table_fold(stack.database_url)
    await _until_position(stack.data_plane_urls, expected.position)
    async with httpx.AsyncClient(timeout=5) as client:
        for url in stack.data_plane_urls:
            ready = (await client.get(url + "/readyz")).json()
            assert ready["status"] == "ready"
            assert ready["position"] == expected.position
            assert ready["lag"] == 0
            assert 0 <= ready["seconds_since_sync"] < 6  # the poll refreshes it every 5 s
            metrics = await client.get(url + "/metrics")
            assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
            values = dict(
                line.rsplit(" ", 1)
                for line in metrics.text.splitlines()
                if line and not line.startswith("#")
            )
            assert float(values["sluice_snapshot_position"]) == expected.position
            assert float(values["sluice_snapshot_events"]) == rows
            assert float(values["sluice_snapshot_lag_events"]) == 0
            assert 0 <= float(values["sluice_snapshot_seconds_since_sync"]) < 6
            assert float(values["sluice_event_log_connected"]) == 1
            assert float(values["sluice_snapshot_stale"]) == 0
            assert "sluice_event_log_reconnects_total" in values
