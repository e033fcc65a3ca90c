"""`sluice data-plane --workers 2` (real processes): two worker processes listen on one
port and both answer, requests succeed over many connections, each worker spools its
own usage file, SIGTERM to the supervisor stops both cleanly, and a worker's
unexpected death stops the supervisor with a non-zero status."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.database import clone_database, drop_database, with_db
from tests.support.processes import Server, free_port
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.timeout(90)

MODEL = "workers-model"
CONNECTIONS = 40
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
async def workers_stack(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    """Fake provider and control plane (no data plane) on a database of their own."""
    name = await clone_database(pg_url, template_db)
    stack = start_stack(with_db(pg_url, name), log_dir, handed_out, data_planes=0)
    try:
        await stack.add_upstream(MODEL, [])
        yield stack
    finally:
        stack.stop()
        await drop_database(pg_url, name)


def start_workers(stack: Stack, name: str, env: dict[str, str]) -> tuple[Server, str]:
    port = free_port()
    args = ["--port", str(port), "--workers", "2"]
    server = Server(name, "data_plane", args, {**stack.env, **env}, stack.log_dir)
    stack.servers.append(server)
    url = f"http://127.0.0.1:{port}"
    server.wait_http(url + "/readyz")
    return server, url


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


async def answering(url: str) -> dict[int, str]:
    """Who answers /healthz, each time on a new connection: pid → replica id."""
    seen: dict[int, str] = {}
    for _ in range(CONNECTIONS):
        async with httpx.AsyncClient(timeout=5) as client:
            body = (await client.get(url + "/healthz")).json()
        seen[body["pid"]] = body["replica"]
    return seen


async def chat_over_new_connections(url: str, key: str) -> list[int]:
    async def one() -> int:
        async with httpx.AsyncClient(timeout=10) as client:  # a connection of its own
            resp = await client.post(
                url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
            )
            return resp.status_code

    return list(await asyncio.gather(*(one() for _ in range(CONNECTIONS))))


async def wait_listed(url: str, key: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(500):
            resp = await client.get(url + "/v1/models", headers={"authorization": f"Bearer {key}"})
            if MODEL in {m["id"] for m in resp.json().get("data", [])}:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"{MODEL} never listed by {url}")


async def test_two_workers_share_a_port_and_each_spools_its_own_usage(
    workers_stack: Stack, tmp_path: Path
) -> None:
    stack = workers_stack
    key = (await stack.create_key((await stack.create_tenant())["id"]))["key"]
    cache = tmp_path / "snapshot.msgpack"
    spool = tmp_path / "usage.jsonl"
    env = {"SLUICE_SNAPSHOT_CACHE": str(cache), "SLUICE_USAGE_SPOOL": str(spool)}

    # with the database: two processes, children of the supervisor, answer on one port
    server, url = start_workers(stack, "workers-online", env)
    workers = children(server.proc.pid)
    assert len(workers) == 2, server.log()
    seen = await answering(url)
    assert set(seen) == workers
    assert len(set(seen.values())) == 2  # a fleet replica id each
    await wait_listed(url, key)
    assert await chat_over_new_connections(url, key) == [200] * CONNECTIONS
    for _ in range(200):  # the shared snapshot cache, written by one worker or both
        if cache.exists():
            break
        await asyncio.sleep(0.05)
    assert server.stop() == 0, server.log()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert cache.exists()

    # without it: both start from the shared cache, and spool what they cannot write
    offline = {**env, "SLUICE_DATABASE_URL": f"postgresql://sluice@127.0.0.1:{free_port()}/x"}
    server, url = start_workers(stack, "workers-offline", offline)
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(url + "/readyz")).json()["status"] == "stale"
    assert len(await answering(url)) == 2
    assert await chat_over_new_connections(url, key) == [200] * CONNECTIONS
    assert server.stop() == 0, server.log()
    spooled = {p.name: len(p.read_bytes().splitlines()) for p in (spool.parent.glob("usage*"))}
    assert set(spooled) == {"usage.jsonl.0", "usage.jsonl.1"}, spooled
    assert all(spooled.values()), spooled
    assert sum(spooled.values()) == CONNECTIONS


async def test_a_worker_that_dies_stops_the_supervisor(workers_stack: Stack) -> None:
    server, _ = start_workers(workers_stack, "workers-death", {"SLUICE_SNAPSHOT_CACHE": ""})
    first, second = sorted(children(server.proc.pid))
    os.kill(first, signal.SIGKILL)
    assert server.proc.wait(30) == 1, server.log()
    assert not Path(f"/proc/{second}").exists()
    assert "stopping the others" in server.log()


async def _until_state(pid: int, state: str) -> None:
    """Waits (at most 30 s) until process `pid` is in `state` (the letter /proc shows)."""
    for _ in range(3000):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == state:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"process {pid} never reached state {state}")


async def test_workers_that_die_together_stop_the_supervisor(workers_stack: Stack) -> None:
    server, _ = start_workers(workers_stack, "workers-deaths", {"SLUICE_SNAPSHOT_CACHE": ""})
    workers = children(server.proc.pid)
    os.kill(server.proc.pid, signal.SIGSTOP)  # both are dead before the supervisor sees either
    try:
        # a stop is delivered, not instant: until it has taken effect the supervisor
        # could still collect a worker that dies
        await _until_state(server.proc.pid, "T")
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        for pid in workers:
            await _until_state(pid, "Z")  # dead, not yet collected
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert server.proc.wait(30) == 1, server.log()
    assert "Traceback" not in server.log(), server.log()


def test_workers_need_a_named_port() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "data_plane", "--port", "0", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert "--workers needs a port other than 0" in run.stderr
