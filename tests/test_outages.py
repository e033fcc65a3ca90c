"""PostgreSQL goes away: data planes keep serving from memory (or from their disk
cache when they start during the outage) and catch up when it returns; the
control plane answers 503 meanwhile and recovers by itself."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.migrate import migrate
from tests.support.own_postgres import OwnPostgres
from tests.support.processes import Server, free_port
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CHAT = {"model": "outage-model", "messages": [{"role": "user", "content": "still there?"}]}


@pytest.fixture(scope="module")
async def outage_stack(
    own_pg: OwnPostgres, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    stack = start_stack(own_pg.url(), log_dir, handed_out, data_planes=1)
    provider = await stack.create_provider()
    await stack.create_route("outage-model", provider["id"], "fake-1")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
async def tenant_id(outage_stack: Stack) -> str:
    tenant = await outage_stack.create_tenant()
    tid: str = tenant["id"]
    return tid


async def _status(url: str, key: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.post(
            url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
        )
        return resp.status_code


async def _until(url: str, key: str, status: int, within: float) -> None:
    deadline = time.monotonic() + within
    while (got := await _status(url, key)) != status:
        assert time.monotonic() < deadline, f"still {got}, not {status}, after {within} s"
        await asyncio.sleep(0.05)


async def _admin_until_ok(stack: Stack, method: str, path: str, within: float) -> httpx.Response:
    deadline = time.monotonic() + within
    async with stack.admin() as admin:
        while True:
            resp = await admin.request(method, path)
            if resp.status_code < 500:
                return resp
            assert resp.status_code == 503, resp.text
            assert time.monotonic() < deadline, "the control plane did not recover"
            await asyncio.sleep(0.2)


async def test_serving_through_a_database_outage(
    outage_stack: Stack, own_pg: OwnPostgres, tenant_id: str
) -> None:
    stack = outage_stack
    dp = stack.data_plane_urls[0]
    keep = await stack.create_key(tenant_id)
    revoke = await stack.create_key(tenant_id)
    await _until(dp, keep["key"], 200, within=5)
    await _until(dp, revoke["key"], 200, within=5)

    statuses: list[int] = []
    stop = asyncio.Event()

    async def client() -> None:
        while not stop.is_set():
            statuses.append(await _status(dp, keep["key"]))
            await asyncio.sleep(0.02)

    traffic = asyncio.create_task(client())
    own_pg.stop()
    try:
        down_since = time.monotonic()
        async with stack.admin() as admin:
            during = await admin.get("/tenants")
        assert during.status_code == 503
        assert during.headers["content-type"] == "application/problem+json"
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - down_since)))
    finally:
        own_pg.start()
    await asyncio.sleep(0.5)
    stop.set()
    await traffic
    assert len(statuses) > 100
    assert set(statuses) == {200}, f"{len([s for s in statuses if s != 200])} requests failed"

    resp = await _admin_until_ok(stack, "DELETE", f"/keys/{revoke['id']}", within=20)
    assert resp.status_code == 204
    await _until(dp, revoke["key"], 401, within=10)  # enforced without a restart
    assert await _status(dp, keep["key"]) == 200


async def test_starting_from_the_disk_cache_while_the_database_is_down(
    outage_stack: Stack, own_pg: OwnPostgres, tenant_id: str
) -> None:
    stack = outage_stack
    valid = await stack.create_key(tenant_id)
    revoked = await stack.create_key(tenant_id)
    async with stack.admin() as admin:
        assert (await admin.delete(f"/keys/{revoked['id']}")).status_code == 204
        newest = (await admin.get("/events", params={"limit": 1})).json()["data"][0]["position"]

    cache = stack.log_dir / "outage-cache.msgpack"
    env = {
        **stack.env,
        "SLUICE_SNAPSHOT_CACHE": str(cache),
        "SLUICE_SNAPSHOT_CACHE_INTERVAL": "0",
    }

    def start_plane(name: str) -> tuple[Server, str]:
        port = free_port()
        plane = Server(name, "data_plane", ["--port", str(port)], env, stack.log_dir)
        return plane, f"http://127.0.0.1:{port}"

    first, url = start_plane("data-plane-cache-writer")
    try:
        first.wait_http(url + "/readyz")
        await _until(url, revoked["key"], 401, within=5)
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 10
            while (await client.get(url + "/readyz")).json()["cache_position"] < newest:
                assert time.monotonic() < deadline, "the cache was not written"
                await asyncio.sleep(0.05)
    finally:
        first.stop()

    own_pg.stop()
    second, url = start_plane("data-plane-from-cache")
    try:
        second.wait_http(url + "/readyz")
        async with httpx.AsyncClient() as client:
            ready: dict[str, Any] = (await client.get(url + "/readyz")).json()
        assert ready["status"] == "stale"
        assert ready["position"] >= newest
        assert await _status(url, valid["key"]) == 200
        assert await _status(url, revoked["key"]) == 401
    finally:
        own_pg.start()
    try:
        deadline = time.monotonic() + 15
        async with httpx.AsyncClient() as client:
            while (await client.get(url + "/readyz")).json()["status"] != "ready":
                assert time.monotonic() < deadline, "never caught up after the database returned"
                await asyncio.sleep(0.1)
        assert await _status(url, valid["key"]) == 200
    finally:
        second.stop()


def _plane(
    stack: Stack, name: str, cache: Path, database_url: str | None = None
) -> tuple[Server, str]:
    env = {**stack.env, "SLUICE_SNAPSHOT_CACHE": str(cache), "SLUICE_SNAPSHOT_CACHE_INTERVAL": "0"}
    if database_url is not None:
        env["SLUICE_DATABASE_URL"] = database_url
    port = free_port()
    return Server(
        name, "data_plane", ["--port", str(port)], env, stack.log_dir
    ), f"http://127.0.0.1:{port}"


async def _write_cache(stack: Stack, cache: Path, upto: int) -> None:
    writer, url = _plane(stack, f"data-plane-writes-{cache.stem}", cache)
    try:
        writer.wait_http(url + "/readyz")
        deadline = time.monotonic() + 10
        async with httpx.AsyncClient() as client:
            while (await client.get(url + "/readyz")).json()["cache_position"] < upto:
                assert time.monotonic() < deadline, "the cache was not written"
                await asyncio.sleep(0.05)
    finally:
        writer.stop()


async def _newest(stack: Stack) -> int:
    async with stack.admin() as admin:
        position: int = (await admin.get("/events", params={"limit": 1})).json()["data"][0][
            "position"
        ]
        return position


async def test_a_restart_with_the_database_up_never_serves_an_old_cache(
    outage_stack: Stack, tenant_id: str
) -> None:
    stack = outage_stack
    key = await stack.create_key(tenant_id)
    cache = stack.log_dir / "old-cache.msgpack"
    await _write_cache(stack, cache, await _newest(stack))
    async with stack.admin() as admin:  # revoked after the cache was written
        assert (await admin.delete(f"/keys/{key['id']}")).status_code == 204
    plane, url = _plane(stack, "data-plane-restarted", cache)
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 30
            while True:  # the first 200 it ever gives
                with contextlib.suppress(httpx.TransportError):
                    ready = await client.get(url + "/readyz")
                    if ready.status_code == 200:
                        break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert ready.json()["status"] == "ready"  # loaded from the database, not the cache
        assert await _status(url, key["key"]) == 401
    finally:
        plane.stop()


async def test_a_cache_from_another_database_is_thrown_away(
    outage_stack: Stack, own_pg: OwnPostgres, tenant_id: str
) -> None:
    stack = outage_stack
    key = await stack.create_key(tenant_id)
    cache = stack.log_dir / "foreign-cache.msgpack"
    await _write_cache(stack, cache, await _newest(stack))
    own_pg.start("elsewhere")
    await asyncio.to_thread(migrate, own_pg.url("elsewhere"))
    own_pg.stop()
    plane, url = _plane(stack, "data-plane-elsewhere", cache, own_pg.url("elsewhere"))
    try:
        plane.wait_http(url + "/readyz")  # from the cache, the database being down
        assert await _status(url, key["key"]) == 200
        own_pg.start()
        deadline = time.monotonic() + 15
        async with httpx.AsyncClient() as client:
            while (await client.get(url + "/readyz")).json()["status"] != "ready":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            metrics = (await client.get(url + "/metrics")).text
        assert await _status(url, key["key"]) == 401  # that database knows no such key
        assert 'sluice_snapshot_rejected_total{reason="disk_cache"} 1.0' in metrics
    finally:
        plane.stop()
        own_pg.start()


async def test_a_corrupt_cache_is_not_served(outage_stack: Stack, own_pg: OwnPostgres) -> None:
    stack = outage_stack
    cache = stack.log_dir / "corrupt-cache.msgpack"
    cache.write_bytes(b"\x00not a snapshot")
    own_pg.stop()
    plane, url = _plane(stack, "data-plane-corrupt-cache", cache)
    try:
        plane.wait_http(url + "/healthz")
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 10
            while 'disk_cache"} 1.0' not in (metrics := (await client.get(url + "/metrics")).text):
                assert time.monotonic() < deadline, metrics
                await asyncio.sleep(0.05)
            assert (await client.get(url + "/readyz")).status_code == 503
    finally:
        own_pg.start()
        plane.stop()
