"""Graceful drain of a data plane on SIGTERM (real processes): readiness turns 503 at
once, new connections are accepted for the drain delay, then refused; streams in
flight finish (or, past the grace period, end with the client's error event), every
request is recorded in `usage`, and the process exits."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.support.database import clone_database, drop_database, with_db
from tests.support.processes import Server, free_port
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

DELAY = 0.5  # SLUICE_DRAIN_DELAY_SECONDS in these tests


@pytest.fixture(scope="module")
async def drain_stack(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    """Fake provider and control plane (no data plane) on a database of their own."""
    name = await clone_database(pg_url, template_db)
    stack = start_stack(with_db(pg_url, name), log_dir, handed_out, data_planes=0)
    try:
        yield stack
    finally:
        stack.stop()
        await drop_database(pg_url, name)


def start_plane(stack: Stack, grace: float) -> tuple[Server, str]:
    port = free_port()
    env = {
        **stack.env,
        "SLUICE_SNAPSHOT_CACHE": "",
        "SLUICE_DRAIN_DELAY_SECONDS": str(DELAY),
        "SLUICE_DRAIN_GRACE_SECONDS": str(grace),
    }
    server = Server(f"drain-plane-{port}", "data_plane", ["--port", str(port)], env, stack.log_dir)
    stack.servers.append(server)
    url = f"http://127.0.0.1:{port}"
    server.wait_http(url + "/readyz")
    return server, url


async def prepare(stack: Stack, model: str, grace: float) -> tuple[Server, str, dict[str, Any]]:
    """A 10 s stream upstream (100 tokens, 100 ms apart) for `model`, a key, a data plane."""
    await stack.add_upstream(model, ["--tokens", "100", "--delay-ms", "100"])
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    server, url = start_plane(stack, grace)
    stack.data_plane_urls.append(url)
    try:
        await stack.until_model(key["key"], model, within=10)
    finally:
        stack.data_plane_urls.remove(url)
    return server, url, key


class Streams:
    """Streams opened at once; what each received, and when each ended."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str, model: str) -> None:
        self.session, self.url, self.key, self.model = session, url, key, model
        self.opened = 0
        self.all_open = asyncio.Event()
        self.count = 0  # the streams to open
        self.bodies: list[bytes] = []
        self.ended: list[float] = []

    async def chat(self) -> None:
        body = {
            "model": self.model,
            "stream": True,
            "messages": [{"role": "user", "content": "go"}],
        }
        headers = {"authorization": f"Bearer {self.key}"}
        await self._read(self.url + "/v1/chat/completions", body, headers)

    async def message(self) -> None:
        body = {
            "model": self.model,
            "stream": True,
            "max_tokens": 200,
            "messages": [{"role": "user", "content": "go"}],
        }
        headers = {"x-api-key": self.key, "anthropic-version": "2023-06-01"}
        await self._read(self.url + "/v1/messages", body, headers)

    async def _read(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        async with self.session.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            self.opened += 1
            if self.opened == self.count:
                self.all_open.set()
            data = await resp.read()
        self.ended.append(time.monotonic())
        self.bodies.append(data)

    async def until_open(self) -> None:
        await asyncio.wait_for(self.all_open.wait(), 30)


async def sigterm_and_poll_readiness(server: Server, url: str) -> float:
    """SIGTERM, then poll `/readyz`, each time on a new connection, until it answers
    503; the seconds that took (printed; the goal, 100 ms, is not asserted)."""
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        while True:
            async with fresh.get(url + "/readyz") as resp:
                if resp.status == 503:
                    assert (await resp.json())["status"] == "draining"
                    took = time.monotonic() - sent
                    print(f"readyz 503 {took * 1000:.1f} ms after SIGTERM")
                    return took
            await asyncio.sleep(0.005)


async def refused(url: str) -> bool:
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh,
            fresh.get(url + "/healthz") as resp,
        ):
            await resp.read()
    except aiohttp.ClientConnectionError:
        return True
    return False


async def until_exit(server: Server) -> float:
    await asyncio.to_thread(server.proc.wait, 60)
    assert server.proc.returncode in (0, -signal.SIGTERM), server.log()
    return time.monotonic()


async def usage_rows(stack: Stack, key_id: str) -> list[tuple[int, str | None]]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch("SELECT status, error_code FROM usage WHERE key_id = $1", key_id)
    finally:
        await conn.close()
    return [(r["status"], r["error_code"]) for r in rows]


async def test_streams_in_flight_finish_and_are_recorded(drain_stack: Stack) -> None:
    stack = drain_stack
    server, url, key = await prepare(stack, "drain-finish-model", grace=30)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        streams = Streams(session, url, key["key"], "drain-finish-model")
        began = time.monotonic()
        streams.count = 200
        tasks = [asyncio.create_task(streams.chat()) for _ in range(200)]
        await streams.until_open()
        await asyncio.sleep(max(0.0, 2 - (time.monotonic() - began)))
        # answered on a new connection: readiness turned while connections were accepted
        await sigterm_and_poll_readiness(server, url)
        while not await refused(url):  # then they are not
            assert len(streams.ended) == 0, "the listener stayed open until streams ended"
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
    exited = await until_exit(server)
    last = max(streams.ended)
    print(
        f"streams lasted {last - began:.1f} s; exit {(exited - last) * 1000:.0f} ms after the last"
    )
    assert exited - last < 3
    for data in streams.bodies:
        assert data.endswith(b"data: [DONE]\n\n"), data[-300:]
        assert b'"error"' not in data
    assert await usage_rows(stack, key["id"]) == [(200, None)] * 200


async def test_streams_past_the_grace_period_end_with_an_error_event(drain_stack: Stack) -> None:
    stack = drain_stack
    server, url, key = await prepare(stack, "drain-cut-model", grace=1)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        streams = Streams(session, url, key["key"], "drain-cut-model")
        streams.count = 20
        tasks = [asyncio.create_task(streams.chat()) for _ in range(10)]
        tasks += [asyncio.create_task(streams.message()) for _ in range(10)]
        await streams.until_open()
        await sigterm_and_poll_readiness(server, url)
        await asyncio.gather(*tasks)
    await until_exit(server)
    openai = [b for b in streams.bodies if b.startswith(b"data: ")]
    anthropic = [b for b in streams.bodies if b.startswith(b"event: ")]
    assert len(openai) == 10
    assert len(anthropic) == 10
    for data in openai:  # some content, then the error event, and no [DONE]
        assert b'"content"' in data
        last = data.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
        assert last.startswith(b'data: {"error"'), last
        assert b'"shutting_down"' in last
        assert b"[DONE]" not in data
    for data in anthropic:
        assert b"event: content_block_delta" in data
        last = data.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
        assert last.startswith(b"event: error\n"), last
        assert b"shutting down" in last
        assert b"message_stop" not in data
    assert sorted(await usage_rows(stack, key["id"])) == [(503, "shutting_down")] * 20
