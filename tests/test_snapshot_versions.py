"""Across a snapshot schema change: a disk cache written by another version of Sluice is
never served; the replica folds the event log instead."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from data_plane.cache import CachedState
from shared.state import SCHEMA_VERSION
from tests.support.own_postgres import OwnPostgres
from tests.support.processes import Server, free_port
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.timeout(180)

CHAT = {"model": "versions-model", "messages": [{"role": "user", "content": "hello"}]}
WAIT = 30.0  # seconds: only a bound on waiting, never an expectation


@pytest.fixture(scope="module")
async def versions_stack(
    own_pg: OwnPostgres, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    stack = start_stack(own_pg.url(), log_dir, handed_out, data_planes=0)
    provider = await stack.create_provider()
    await stack.create_route("versions-model", provider["id"], "fake-1")
    yield stack
    stack.stop()


def _plane(stack: Stack, name: str, cache: Path) -> tuple[Server, str]:
    env = {**stack.env, "SLUICE_SNAPSHOT_CACHE": str(cache), "SLUICE_SNAPSHOT_CACHE_INTERVAL": "0"}
    port = free_port()
    server = Server(name, "data_plane", ["--port", str(port)], env, stack.log_dir)
    return server, f"http://127.0.0.1:{port}"


async def _chat(url: str, key: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(
            url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
        )
        return resp.status_code


async def _readyz(url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.get(url + "/readyz")
        body: dict[str, Any] = resp.json()
        return resp.status_code, body


async def _write_cache(stack: Stack, cache: Path) -> None:
    newest = await stack.last_position()
    writer, url = _plane(stack, "data-plane-versions-writer", cache)
    try:
        writer.wait_http(url + "/readyz")
        deadline = time.monotonic() + WAIT
        while (await _readyz(url))[1]["cache_position"] < newest:
            assert time.monotonic() < deadline, "the cache was not written"
            await asyncio.sleep(0.05)
    finally:
        writer.stop()


def _with_schema_version(cache: Path, other: Path, version: int) -> None:
    """A copy of `cache` whose snapshot says it was written with schema `version`."""
    cached = msgspec.msgpack.decode(cache.read_bytes(), type=CachedState)
    doc = msgspec.msgpack.decode(cached.snapshot)
    assert doc["schema_version"] == SCHEMA_VERSION
    doc["schema_version"] = version
    changed = msgspec.structs.replace(cached, snapshot=msgspec.msgpack.encode(doc))
    other.write_bytes(msgspec.msgpack.encode(changed))


async def test_a_cache_of_another_schema_version_is_ignored(
    versions_stack: Stack, own_pg: OwnPostgres
) -> None:
    stack = versions_stack
    tenant = await stack.create_tenant()
    key = (await stack.create_key(tenant["id"]))["key"]
    cache = stack.log_dir / "versions-cache.msgpack"
    await _write_cache(stack, cache)
    other = stack.log_dir / "versions-cache-other.msgpack"
    _with_schema_version(cache, other, SCHEMA_VERSION + 1)

    own_pg.stop()
    try:
        # the cache as written serves while the database is down ...
        plane, url = _plane(stack, "data-plane-versions-same", cache)
        try:
            plane.wait_http(url + "/readyz", timeout=WAIT)
            assert (await _readyz(url))[1]["status"] == "stale"
            assert await _chat(url, key) == 200
        finally:
            plane.stop()

        # ... the same state marked with another schema version does not
        plane, url = _plane(stack, "data-plane-versions-other", other)
        try:
            plane.wait_http(url + "/healthz", timeout=WAIT)
            deadline = time.monotonic() + WAIT
            async with httpx.AsyncClient(timeout=5) as client:
                while 'disk_cache"} 1.0' not in (
                    metrics := (await client.get(url + "/metrics")).text
                ):
                    assert time.monotonic() < deadline, metrics
                    await asyncio.sleep(0.05)
            status, body = await _readyz(url)
            assert (status, body["status"]) == (503, "starting")
            assert await _chat(url, key) == 503
            assert f"snapshot schema {SCHEMA_VERSION + 1}" in plane.log()

            own_pg.start()  # the replica folds the log instead
            deadline = time.monotonic() + WAIT
            while (ready := await _readyz(url))[0] != 200:
                assert time.monotonic() < deadline, ready
                await asyncio.sleep(0.05)
            assert ready[1]["status"] == "ready"
            assert ready[1]["position"] == await stack.last_position()
            assert await _chat(url, key) == 200
        finally:
            plane.stop()
    finally:
        with contextlib.suppress(Exception):
            own_pg.start()
