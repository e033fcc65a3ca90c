"""Helpers for routing tests: several fake upstreams, routes of many deployments,
faults set at run time, and what the fakes and the usage table saw."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
import uuid
from typing import Any

import asyncpg
import httpx

from tests.support.fake import expected_content, parse_sse
from tests.support.processes import Server, free_port
from tests.support.stack import Stack

__all__ = [
    "LEAKS",
    "assert_upstream_error",
    "assert_whole_stream",
    "chat",
    "clear_faults",
    "create_routed",
    "error_event",
    "fake_stats",
    "new_key",
    "on_fake",
    "open_route",
    "provider_for",
    "reset_stats",
    "seed_failing_once",
    "set_faults",
    "settled_stats",
    "start_fake",
    "stream_payloads",
    "streamed_pieces",
    "usage_of",
    "usage_rows",
    "wait_usage",
]


def start_fake(stack: Stack, *args: str) -> str:
    """Another fake OpenAI-compatible upstream (a process of its own); its base URL."""
    port = free_port()
    server = Server(
        f"fake-{port}", "data_plane.fake_provider", ["--port", str(port), *args], {}, stack.log_dir
    )
    stack.servers.append(server)
    url = f"http://127.0.0.1:{port}"
    server.wait_http(url + "/_fake/healthz")
    return url


async def provider_for(stack: Stack, fake_url: str) -> str:
    """A provider whose base URL is that fake's; its id."""
    body = {"name": "fake-" + secrets.token_hex(4), "base_url": fake_url + "/v1"}
    async with stack.admin() as admin:
        resp = await admin.post("/providers", json=body)
        assert resp.status_code == 201, resp.text
        provider_id: str = resp.json()["id"]
        return provider_id


async def create_routed(
    stack: Stack, model: str, deployments: list[dict[str, Any]], **settings: Any
) -> dict[str, Any]:
    """A route of several deployments (`settings`: strategy, retry, breaker, …)."""
    async with stack.admin() as admin:
        resp = await admin.post(
            "/routes", json={"model": model, "deployments": deployments, **settings}
        )
        assert resp.status_code == 201, resp.text
        route: dict[str, Any] = resp.json()
        return route


async def set_faults(fake_url: str, **knobs: Any) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.put(f"{fake_url}/_fake/faults", json=knobs)
        assert resp.status_code == 200, resp.text


async def clear_faults(fake_url: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.delete(f"{fake_url}/_fake/faults")
        assert resp.status_code == 204, resp.text


async def fake_stats(fake_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.get(f"{fake_url}/_fake/stats")
        stats: dict[str, Any] = resp.json()
        return stats


async def reset_stats(fake_url: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        await client.delete(f"{fake_url}/_fake/stats")


async def chat(
    client: httpx.AsyncClient,
    url: str,
    key: str,
    model: str,
    *,
    stream: bool = False,
    **extra: Any,
) -> httpx.Response:
    """One chat completion through a data plane (a stream is read whole)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}
    if stream:
        body["stream"] = True
    return await client.post(
        f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )


async def usage_rows(stack: Stack, where: str = "true", *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(f"SELECT * FROM usage WHERE {where} ORDER BY created_at", *args)
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def wait_usage(
    stack: Stack, count: int, where: str = "true", *args: Any, within: float = 10.0
) -> list[dict[str, Any]]:
    """Wait until at least `count` usage rows match (records are written in batches)."""
    deadline = time.monotonic() + within
    while True:
        rows = await usage_rows(stack, where, *args)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


# --- faults end to end: keys, routes, streams and errors as the client sees them ----------


async def new_key(stack: Stack) -> str:
    """A key of a tenant of its own."""
    tenant = await stack.create_tenant()
    key: str = (await stack.create_key(tenant["id"]))["key"]
    return key


async def on_fake(stack: Stack, fake_url: str, **fields: Any) -> dict[str, Any]:
    """A deployment (as the routes API takes it) on a provider of its own at that fake;
    its upstream model is a fresh name unless `fields` names one."""
    upstream = {"upstream_model": "up-" + secrets.token_hex(4), **fields}
    return {"provider_id": await provider_for(stack, fake_url), **upstream}


async def open_route(
    stack: Stack, key: str, deployments: list[dict[str, Any]], **settings: Any
) -> tuple[str, dict[str, Any]]:
    """A route under a fresh model name, once every data plane serves it to `key`:
    its model name and the route (deployments in the order given, with their ids)."""
    model = settings.pop("model", None) or "m-" + secrets.token_hex(5)
    route = await create_routed(stack, model, deployments, **settings)
    await stack.until_model(key, model, within=10)
    return model, route


async def settled_stats(fake_url: str, within: float = 10.0) -> dict[str, Any]:
    """The fake's counters once nothing runs there (a request is counted when it ends)."""
    deadline = time.monotonic() + within
    while True:
        stats = await fake_stats(fake_url)
        if stats["in_flight"] == 0 or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.05)


def seed_failing_once(rate: float) -> int:
    """A seed for the fake's `fail_rate` draw (one `random.Random(seed).random()` a
    request) under which the first request fails and the second does not."""
    for seed in range(10_000):
        draw = random.Random(seed)
        if draw.random() < rate <= draw.random():
            return seed
    raise AssertionError("no such seed")


def stream_payloads(resp: httpx.Response) -> list[str]:
    """The data payloads of a stream read whole."""
    assert resp.headers["content-type"].startswith("text/event-stream"), resp.text
    return parse_sse(resp.content)


def streamed_pieces(payloads: list[str]) -> list[str]:
    """The content pieces of a stream's chunks, in order (the role event's "" left out)."""
    pieces = []
    for payload in payloads:
        if payload == "[DONE]":
            continue
        for choice in json.loads(payload).get("choices", []):
            content = (choice.get("delta") or {}).get("content")
            if content:
                pieces.append(content)
    return pieces


def assert_whole_stream(resp: httpx.Response, tokens: int) -> list[str]:
    """A stream that reached the client whole: every piece once, in order, every event
    JSON, one `[DONE]` at the end and no error; its payloads."""
    assert resp.status_code == 200, resp.text
    payloads = stream_payloads(resp)
    assert payloads[-1] == "[DONE]"
    assert payloads.count("[DONE]") == 1
    chunks = [json.loads(p) for p in payloads[:-1]]  # a malformed event would not parse
    assert not [c for c in chunks if "error" in c]
    assert "".join(streamed_pieces(payloads)) == expected_content(tokens)
    return payloads


def assert_upstream_error(
    error: dict[str, Any], request_id: str, code: str, *, hidden: tuple[str, ...] = ()
) -> None:
    """An upstream failure as the client gets it: OpenAI's four fields, type
    `upstream_error`, the code, a generic message naming the request, none of `hidden`."""
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["type"], error["code"]) == ("upstream_error", code), error
    assert error["message"].endswith(f" Request id: {request_id}."), error
    for text in (*LEAKS, *hidden):
        assert text not in error["message"], (text, error)


# what the fake's own error bodies and non-JSON answers say; never for the client
LEAKS = ("The server had an error", "<html", "nginx", "org-fakeprovider", "Bad Gateway")


def error_event(resp: httpx.Response) -> dict[str, Any]:
    """The final error event of a stream that broke (no `[DONE]` after it)."""
    assert resp.status_code == 200, resp.text
    payloads = stream_payloads(resp)
    assert "[DONE]" not in payloads
    error: dict[str, Any] = json.loads(payloads[-1])["error"]
    return error


async def usage_of(stack: Stack, resp: httpx.Response) -> dict[str, Any]:
    """The usage record of the request that `resp` answered."""
    request_id = uuid.UUID(resp.headers["x-request-id"])
    rows = await wait_usage(stack, 1, "request_id = $1", request_id)
    assert len(rows) == 1, rows
    return rows[0]
