"""Slow, incomplete and idle clients on both planes (real processes, raw sockets): half
a header block is closed at the header deadline, a body that stops short gets 408 in
the plane's own error format and the connection closes, a body that never starts is
closed soon after the body deadline, connections past the limit
are closed at once, and the plane serves everyone else meanwhile."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.database import clone_database, drop_database, with_db
from tests.support.processes import Server, free_port
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.timeout(90)

LIMITS = {
    "SLUICE_HEADER_TIMEOUT_SECONDS": "1",
    "SLUICE_BODY_TIMEOUT_SECONDS": "1",
    "SLUICE_KEEP_ALIVE_SECONDS": "1",
}
CLOSED_BY = 5.0  # seconds; far past the 1 s deadlines, far below uvicorn's own (none)
MODEL = "slow-model"


@pytest.fixture(scope="module")
async def slow_stack(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    name = await clone_database(pg_url, template_db)
    stack = start_stack(with_db(pg_url, name), log_dir, handed_out, 1, LIMITS)
    try:
        yield stack
    finally:
        stack.stop()
        await drop_database(pg_url, name)


@pytest.fixture(scope="module")
async def client_key(slow_stack: Stack) -> str:
    tenant = await slow_stack.create_tenant()
    secret: str = (await slow_stack.create_key(tenant["id"]))["key"]
    provider = await slow_stack.create_provider()
    await slow_stack.create_route(MODEL, provider["id"], "fake-1")  # synced after the key
    await slow_stack.until_model(secret, MODEL, within=10)
    return secret


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@asynccontextmanager
async def _connect(url: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(*_address(url))
    try:
        yield reader, writer
    finally:
        writer.close()


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (fails past CLOSED_BY)."""
    try:
        return await asyncio.wait_for(reader.read(), CLOSED_BY)
    except ConnectionResetError:
        return b""


async def _still_serving(url: str, headers: dict[str, str] | None = None) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(url, headers=headers)).status_code == 200


def _planes(stack: Stack, key: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Each plane's URL and a normal request that needs a working plane."""
    return {
        "data": (stack.data_plane_urls[0], {"authorization": f"Bearer {key}"}),
        "control": (stack.control_plane_url, {"authorization": f"Bearer {stack.admin_token}"}),
    }


def _normal_path(plane: str) -> str:
    return "/v1/models" if plane == "data" else "/admin/v1/tenants"


@pytest.mark.parametrize("plane", ["data", "control"])
async def test_half_a_header_block_is_closed(
    slow_stack: Stack, client_key: str, plane: str
) -> None:
    url, headers = _planes(slow_stack, client_key)[plane]
    async with _connect(url) as (reader, writer):
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-le")
        await writer.drain()
        waiting = asyncio.create_task(_until_closed(reader))
        await _still_serving(url + _normal_path(plane), headers)
        assert await waiting == b""


@pytest.mark.parametrize("plane", ["data", "control"])
async def test_half_a_header_block_after_a_kept_alive_request_is_closed(
    slow_stack: Stack, client_key: str, plane: str
) -> None:
    url, _ = _planes(slow_stack, client_key)[plane]
    async with _connect(url) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSED_BY)
        assert head.startswith(b"HTTP/1.1 200")
        writer.write(b"GET /healthz HTTP/1.1\r\nho")  # stops the keep-alive timer
        await writer.drain()
        rest = await _until_closed(reader)
        assert b"HTTP/1.1" not in rest.split(b"\r\n\r\n", 1)[-1]  # no second response


async def _slow_body(url: str, path: str, headers: dict[str, str]) -> tuple[int, str, Any]:
    """POST with `content-length: 1000` and 10 bytes: the status, type and body of the
    answer, which must come before the connection closes."""
    lines = [f"POST {path} HTTP/1.1", "host: x", "content-type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["content-length: 1000", "", ""]
    async with _connect(url) as (reader, writer):
        writer.write("\r\n".join(lines).encode() + b'{"model":')
        await writer.drain()
        answer = await _until_closed(reader)
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    fields = dict(line.lower().split(": ", 1) for line in header_lines)
    if fields.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return int(status_line.split()[1]), fields["content-type"], json.loads(body)


def _dechunk(data: bytes) -> bytes:
    whole = b""
    while True:
        size, _, data = data.partition(b"\r\n")
        if int(size, 16) == 0:
            return whole
        whole, data = whole + data[: int(size, 16)], data[int(size, 16) + 2 :]


async def test_slow_body_on_the_data_plane_gets_openai_408(
    slow_stack: Stack, client_key: str
) -> None:
    url, headers = _planes(slow_stack, client_key)["data"]
    slow = asyncio.create_task(_slow_body(url, "/v1/chat/completions", headers))
    await _still_serving(url + "/v1/models", headers)
    status, content_type, body = await slow
    assert (status, content_type) == (408, "application/json")
    assert set(body) == {"error"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "request_timeout"
    assert body["error"]["message"]


async def test_slow_body_on_messages_gets_anthropic_408(slow_stack: Stack, client_key: str) -> None:
    url, _ = _planes(slow_stack, client_key)["data"]
    headers = {"x-api-key": client_key, "anthropic-version": "2023-06-01"}
    slow = asyncio.create_task(_slow_body(url, "/v1/messages", headers))
    await _still_serving(url + "/healthz")
    status, content_type, body = await slow
    assert (status, content_type) == (408, "application/json")
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"]


async def test_slow_body_on_the_control_plane_gets_a_problem(
    slow_stack: Stack, client_key: str
) -> None:
    url, headers = _planes(slow_stack, client_key)["control"]
    slow = asyncio.create_task(_slow_body(url, "/admin/v1/tenants", headers))
    await _still_serving(url + "/admin/v1/tenants", headers)
    status, content_type, body = await slow
    assert (status, content_type) == (408, "application/problem+json")
    assert body["status"] == 408
    assert body["detail"]


@pytest.mark.parametrize("plane", ["data", "control"])
async def test_a_body_that_never_starts_is_closed(
    slow_stack: Stack, client_key: str, plane: str
) -> None:
    url, headers = _planes(slow_stack, client_key)[plane]
    path = "/v1/chat/completions" if plane == "data" else "/admin/v1/tenants"
    lines = [f"POST {path} HTTP/1.1", "host: x", "content-type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["content-length: 1000", "", ""]
    async with _connect(url) as (reader, writer):
        writer.write("\r\n".join(lines).encode())  # the headers, then not one body byte
        await writer.drain()
        waiting = asyncio.create_task(_until_closed(reader))
        await _still_serving(url + _normal_path(plane), headers)
        answer = await waiting  # closed (within CLOSED_BY), with at most a 408
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")


MAX_CONNECTIONS = 8
EXTRA = 4


@pytest.mark.parametrize(
    ("module", "ready"), [("data_plane", "/healthz"), ("control_plane", "/readyz")]
)
async def test_connections_past_the_limit_are_closed(
    slow_stack: Stack, log_dir: Path, module: str, ready: str
) -> None:
    port = free_port()
    env = {
        **slow_stack.env,
        "SLUICE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "SLUICE_HEADER_TIMEOUT_SECONDS": "60",  # idle connections stay open, unless refused
        "SLUICE_SNAPSHOT_CACHE": str(log_dir / f"cache-{port}.msgpack"),
    }
    server = Server(f"{module}-limited-{port}", module, ["--port", str(port)], env, log_dir)
    url = f"http://127.0.0.1:{port}"
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        server.wait_http(url + ready)
        opened += [
            await asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS + EXTRA)
        ]
        states = await asyncio.gather(*(_closed_soon(reader) for reader, _ in opened))
        assert states.count(True) == EXTRA
        assert states.count(False) == MAX_CONNECTIONS
        for _, writer in opened:
            writer.close()
        await _until_serving(url + ready)  # once they are gone
    finally:
        for _, writer in opened:
            writer.close()
        server.stop()


async def _closed_soon(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the (idle) connection within 2 s."""
    try:
        return await asyncio.wait_for(reader.read(), 2) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def _until_serving(url: str) -> None:
    """The server answers again once the refused and released connections are gone."""
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(50):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} does not answer after the connections closed")
