"""Graceful drain of the control plane on SIGTERM (a real process): `/readyz` turns
503 at once, new connections are refused after the drain delay, and an admin request
in flight (held back by a lock on the event log) still completes before the exit."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.processes import Server, free_port
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)

DELAY = 0.5


async def test_control_plane_finishes_a_request_in_flight_then_exits(
    database_url: str, log_dir: Path, handed_out: list[str]
) -> None:
    stack = Stack(database_url=database_url, log_dir=log_dir, handed_out=handed_out)
    handed_out.append(stack.admin_token)
    port = free_port()
    env = {
        **stack.env,
        "SLUICE_DRAIN_DELAY_SECONDS": str(DELAY),
        "SLUICE_DRAIN_GRACE_SECONDS": "20",
    }
    server = Server(
        f"drain-control-plane-{port}", "control_plane", ["--port", str(port)], env, log_dir
    )
    url = f"http://127.0.0.1:{port}"
    lock = await asyncpg.connect(database_url)
    try:
        server.wait_http(url + "/readyz")
        stack.control_plane_url = url
        locked = lock.transaction()
        await locked.start()
        await lock.execute("LOCK TABLE events IN EXCLUSIVE MODE")  # appends wait for it
        async with stack.admin() as admin:
            creating = asyncio.create_task(admin.post("/tenants", json={"name": "drain-held"}))
            while not await _waiting_for_lock(lock):
                assert not creating.done(), creating.result().text
                await asyncio.sleep(0.02)
            sent = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(timeout=2) as fresh:
                for _ in range(200):
                    resp = await fresh.get(url + "/readyz")
                    if resp.status_code == 503:
                        break
                    await asyncio.sleep(0.005)
            print(f"readyz 503 {(time.monotonic() - sent) * 1000:.1f} ms after SIGTERM")
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["status"] == 503
            for _ in range(100):
                if await _refused(url):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("new connections still accepted after the drain delay")
            await asyncio.sleep(0.5)
            assert server.proc.poll() is None, "exited with a request in flight"
            assert not creating.done(), "the request in flight was not held back"
            await locked.rollback()
            created = await creating
        assert created.status_code == 201, created.text
        await asyncio.to_thread(server.proc.wait, 30)
        assert server.proc.returncode in (0, -signal.SIGTERM), server.log()
    finally:
        await lock.close()
        server.stop()
    names = await _tenant_names(database_url)
    assert "drain-held" in names


async def _waiting_for_lock(conn: asyncpg.Connection) -> bool:
    """True once another session waits for a lock on `events`."""
    waiting: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass)"
    )
    return waiting


async def _refused(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as fresh:
            await fresh.get(url + "/healthz")
    except httpx.ConnectError:
        return True
    return False


async def _tenant_names(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT data->>'name' AS name FROM events WHERE type = 'tenant.created'"
        )
    finally:
        await conn.close()
    return [r["name"] for r in rows]
