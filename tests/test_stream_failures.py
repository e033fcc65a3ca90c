"""Streams that go wrong: the upstream breaks off, the client leaves, the gateway is not ready."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec
import pytest

from tests.support.processes import Server, free_port
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def key(stack: Stack) -> str:
    tenant = await stack.create_tenant()
    created = await stack.create_key(tenant["id"])
    secret: str = created["key"]
    return secret


def _stream_body(model: str) -> dict[str, Any]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": "go"}]}


async def test_upstream_breaking_mid_stream_ends_with_an_error_event(
    stack: Stack, key: str
) -> None:
    await stack.add_upstream("breaks-model", ["--fail-after", "3", "--delay-ms", "5"])
    await stack.until_model(key, "breaks-model")
    events: list[bytes] = []
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "POST",
            stack.data_plane_urls[0] + "/v1/chat/completions",
            json=_stream_body("breaks-model"),
            headers={"authorization": f"Bearer {key}"},
        ) as resp,
    ):
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                events.append(line[6:].encode())
    assert b"[DONE]" not in events
    chunks = [msgspec.json.decode(e) for e in events[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert contents == ["", "tok0", " tok1", " tok2"]
    error = msgspec.json.decode(events[-1])["error"]
    assert error["type"] == "upstream_error"
    assert error["code"] == "upstream_reset"  # the upstream closed the connection mid-answer
    assert "mid-answer" in error["message"]


async def test_client_leaving_mid_stream_closes_the_upstream_request(
    stack: Stack, key: str
) -> None:
    fake_url = await stack.add_upstream("long-model", ["--delay-ms", "100", "--tokens", "100"])
    await stack.until_model(key, "long-model")
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "POST",
            stack.data_plane_urls[1] + "/v1/chat/completions",
            json=_stream_body("long-model"),
            headers={"authorization": f"Bearer {key}"},
        ) as resp,
    ):
        seen = 0
        async for line in resp.aiter_lines():
            seen += line.startswith("data: ")
            if seen == 3:
                break  # leave after three events, ~10 s before the stream would end
    deadline = time.monotonic() + 3
    async with httpx.AsyncClient() as client:
        while True:
            requests = (await client.get(f"{fake_url}/_fake/requests")).json()
            if requests and requests[-1].get("disconnected"):
                break
            assert time.monotonic() < deadline, f"upstream still streaming: {requests[-1:]}"
            await asyncio.sleep(0.05)
    assert requests[-1]["events_sent"] < 20


async def test_a_data_plane_without_its_database_is_alive_but_not_ready(
    stack: Stack, key: str
) -> None:
    env = {
        **stack.env,
        "SLUICE_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/x",
        "SLUICE_SNAPSHOT_CACHE": str(stack.log_dir / "no-such-cache.msgpack"),
    }
    port = free_port()
    plane = Server("data-plane-no-db", "data_plane", ["--port", str(port)], env, stack.log_dir)
    try:
        plane.wait_http(f"http://127.0.0.1:{port}/healthz")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            ready = await client.get("/readyz")
            chat = await client.post(
                "/v1/chat/completions",
                json=_stream_body("demo-model"),
                headers={"authorization": f"Bearer {key}"},
            )
    finally:
        plane.stop()
    assert ready.status_code == 503
    assert ready.json()["status"] == "starting"
    assert chat.status_code == 503
    assert chat.json()["error"]["code"] == "service_unavailable"
