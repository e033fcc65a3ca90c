"""Operations: PostgreSQL goes away for ~10 s and the logs say so once per loop (fleet
sync, event log, usage, budget checks, job queue), not once per retry, then once
that it is back. The data plane's files holding secrets or usage (snapshot cache,
usage spool) are 0600 in folders it created 0700."""

from __future__ import annotations

import asyncio
import re
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.own_postgres import OwnPostgres
from tests.support.processes import Server, free_port
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MODEL = "quiet-model"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "anyone there?"}]}
# what a log line says when a loop loses the database, and when it has it back
GONE = re.compile(r"([a-z][a-z ]*\(database\)) unavailable \(")
BACK = re.compile(r"([a-z][a-z ]*\(database\)) available again after")
LOUD = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")  # a log entry above INFO


class Plane:
    """A data plane whose cache and spool go to folders that do not exist yet."""

    def __init__(self, stack: Stack) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.private = stack.log_dir / f"private-{port}"
        self.cache = self.private / "cache" / "snapshot.msgpack"
        self.spool = self.private / "spool" / "usage.jsonl"
        env = {
            **stack.env,
            "SLUICE_SNAPSHOT_CACHE": str(self.cache),
            "SLUICE_SNAPSHOT_CACHE_INTERVAL": "0",
            "SLUICE_USAGE_SPOOL": str(self.spool),
        }
        self.server = Server(
            f"data-plane-{port}", "data_plane", ["--port", str(port)], env, stack.log_dir
        )
        stack.servers.append(self.server)
        stack.data_plane_urls.append(self.url)
        self.server.wait_http(self.url + "/readyz")


@pytest.fixture(scope="module")
async def quiet(
    own_pg: OwnPostgres, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[tuple[Stack, Plane, str]]:
    stack = start_stack(own_pg.url(), log_dir, handed_out, data_planes=0)
    try:
        plane = Plane(stack)
        provider = await stack.create_provider()
        await stack.create_route(MODEL, provider["id"], "fake-quiet")
        key = await stack.create_key((await stack.create_tenant())["id"])
        await stack.until_model(key["key"], MODEL, within=10)
        yield stack, plane, key["key"]
    finally:
        stack.stop()


async def _chat(plane: Plane, key: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(
            plane.url + "/v1/chat/completions",
            json=CHAT,
            headers={"authorization": f"Bearer {key}"},
        )
        return resp.status_code


def _new_lines(server: Server, since: int) -> list[str]:
    return server.log_path.read_bytes()[since:].decode(errors="replace").splitlines()


async def test_an_outage_is_logged_once_per_loop_and_its_end_once(
    quiet: tuple[Stack, Plane, str], own_pg: OwnPostgres
) -> None:
    stack, plane, key = quiet
    control = next(s for s in stack.servers if s.name == "control-plane")
    servers = [control, plane.server]
    assert await _chat(plane, key) == 200
    since = {s.name: s.log_path.stat().st_size for s in servers}

    own_pg.stop()
    for _ in range(10):  # ~10 s of outage, with traffic (usage records wait meanwhile)
        assert await _chat(plane, key) == 200
        await asyncio.sleep(1)
    during = {s.name: _new_lines(s, since[s.name]) for s in servers}
    for lines in during.values():
        loud = [line for line in lines if LOUD.search(line)]
        gone = [m.group(1) for line in loud if (m := GONE.search(line))]
        # one line per loop that lost the database, and hardly anything else
        assert len(gone) == len(set(gone)), "\n".join(lines)
        assert len(loud) <= len(gone) + 2, "\n".join(lines)
    gone_dp = {m.group(1) for line in during[plane.server.name] if (m := GONE.search(line))}
    assert {"event log (database)", "usage recording (database)"} <= gone_dp
    assert any(GONE.search(line) for line in during[control.name])

    own_pg.start()
    deadline = time.monotonic() + 40
    for server in servers:
        gone = {m.group(1) for line in during[server.name] if (m := GONE.search(line))}
        while True:
            lines = _new_lines(server, since[server.name])
            back = [m.group(1) for line in lines if (m := BACK.search(line))]
            if set(back) >= gone:
                break
            assert time.monotonic() < deadline, "\n".join(lines[-40:])
            await asyncio.sleep(0.5)
        assert sorted(back) == sorted(gone), "\n".join(lines)


async def test_the_cache_and_the_spool_are_private(
    quiet: tuple[Stack, Plane, str], own_pg: OwnPostgres
) -> None:
    _, plane, key = quiet
    deadline = time.monotonic() + 20
    while not plane.cache.exists():
        assert time.monotonic() < deadline, "no snapshot cache written"
        await asyncio.sleep(0.1)
    # a record the database cannot take goes to the spool when the data plane stops
    own_pg.stop()
    assert await _chat(plane, key) == 200
    await asyncio.to_thread(plane.server.stop)
    own_pg.start()
    assert plane.spool.exists(), plane.server.log()
    for path in (plane.cache, plane.spool):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (plane.private, plane.cache.parent, plane.spool.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
