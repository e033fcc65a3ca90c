"""Helpers for routing tests: several fake upstreams, routes of many deployments,
faults set at run time, and what the fakes and the usage table saw."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.fake import expected_content, parse_sse
from tests.support.processes import Server, free_port
from tests.support.stack import Stack

__all__ = [
    "CLIENT_TIMEOUT",
    "LEAKS",
    "Answer",
    "ask",
    "assert_no_leak",
    "assert_upstream_error",
    "assert_whole_stream",
    "breaker_state",
    "chat",
    "clear_faults",
    "client_for",
    "create_routed",
    "deployment_metric",
    "error_event",
    "eventually",
    "failing",
    "fake_stats",
    "fresh_key",
    "healthy",
    "http",
    "keyed_route",
    "new_key",
    "on_fake",
    "open_route",
    "provider_for",
    "replica_states",
    "requests_seen",
    "reset_stats",
    "seed_failing_once",
    "send_for",
    "send_many",
    "served_by",
    "set_faults",
    "settled_stats",
    "start_fake",
    "stream_payloads",
    "streamed_pieces",
    "upstreams",
    "usage_of",
    "usage_rows",
    "wait_usage",
]


def start_fake(stack: Stack, *args: str) -> str:
    """Another fake OpenAI-compatible upstream (a process of its own); its base URL."""
    port = free_port()
    server = Server(
        f"fake-{port}", "tests.fakes.provider", ["--port", str(port), *args], {}, stack.log_dir
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


def assert_upstream_error(error: dict[str, Any], request_id: str, code: str, said: str) -> None:
    """An upstream failure exactly as the client gets it: OpenAI's four fields, type
    `upstream_error`, the code, and the gateway's generic words (`said`) naming the request."""
    assert error == {
        "message": f"{said} Request id: {request_id}.",
        "type": "upstream_error",
        "param": None,
        "code": code,
    }


# what the fakes' error bodies and non-JSON answers say: never anything a client gets
LEAKS = ("The server had an error", "<html", "nginx", "org-fakeprovider", "internal")


def assert_no_leak(resp: httpx.Response) -> None:
    assert not [text for text in LEAKS if text in resp.text], resp.text


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


@dataclass(frozen=True)
class Answer:
    """What one client request got (`status` 0: the client gave up waiting)."""

    status: int
    deployment: str | None
    attempts: int | None
    body: bytes
    started: float  # time.monotonic()
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def ask(client: httpx.AsyncClient, url: str, key: str, model: str, **extra: Any) -> Answer:
    """One request through a data plane, never raising for what the gateway did."""
    started = time.monotonic()
    try:
        resp = await chat(client, url, key, model, **extra)
    except httpx.TimeoutException:
        return Answer(0, None, None, b"", started, time.monotonic())
    attempts = resp.headers.get("x-sluice-attempts")
    return Answer(
        resp.status_code,
        resp.headers.get("x-sluice-deployment"),
        None if attempts is None else int(attempts),
        resp.content,
        started,
        time.monotonic(),
    )


def client_for(concurrency: int, timeout: float = 15.0) -> httpx.AsyncClient:
    """A client of at most `concurrency` connections."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(timeout=timeout, limits=limits)


async def send_many(
    url: str,
    key: str,
    model: str,
    n: int,
    *,
    concurrency: int = 16,
    wait: float = 15.0,
    **extra: Any,
) -> list[Answer]:
    """`n` requests, at most `concurrency` at a time, each given up after `wait` s."""
    gate = asyncio.Semaphore(concurrency)
    async with client_for(concurrency, wait) as client:

        async def one() -> Answer:
            async with gate:
                return await ask(client, url, key, model, **extra)

        return list(await asyncio.gather(*(one() for _ in range(n))))


async def send_for(
    url: str,
    key: str,
    model: str,
    seconds: float,
    *,
    concurrency: int = 16,
    wait: float = 15.0,
    stop: Callable[[Answer], bool] | None = None,
    **extra: Any,
) -> list[Answer]:
    """Requests from `concurrency` senders, each sending again as soon as answered,
    for `seconds` or until an answer meets `stop`."""
    until = time.monotonic() + seconds
    answers: list[Answer] = []
    async with client_for(concurrency, wait) as client:

        async def sender() -> None:
            nonlocal until
            while time.monotonic() < until:
                answer = await ask(client, url, key, model, **extra)
                answers.append(answer)
                if stop is not None and stop(answer):
                    until = 0.0

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return answers


async def deployment_metric(url: str, name: str, deployment_id: str) -> float | None:
    """A `sluice_deployment_*` metric of the deployment on that data plane (None: that
    replica has not used the deployment)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(url + "/metrics")).text
    label = f'deployment="{deployment_id}"'
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return None


async def breaker_state(url: str, deployment_id: str) -> float | None:
    """`sluice_deployment_breaker_state`: 0 closed, 1 half open, 2 open."""
    return await deployment_metric(url, "sluice_deployment_breaker_state", deployment_id)


async def replica_states(stack: Stack, deployment_id: str) -> list[str]:
    """The breaker state each data plane last reported for the deployment."""
    async with stack.admin() as admin:
        resp = await admin.get(f"/deployments/{deployment_id}/health")
        assert resp.status_code == 200, resp.text
        return [r["state"] for r in resp.json()["replicas"]]


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.05
) -> float:
    """Wait until `check()` holds; the seconds it took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"not within {within} s: {what}"
        await asyncio.sleep(every)
    return time.monotonic() - started


async def keyed_route(
    stack: Stack, deployments: list[dict[str, Any]], **settings: Any
) -> tuple[str, str, list[str]]:
    """A new key and a route of `deployments` (see `on_fake`) that it may use, once every
    data plane serves it: (key, model, the deployments' ids in the order given)."""
    key = await new_key(stack)
    model, route = await open_route(stack, key, deployments, **settings)
    return key, model, [d["id"] for d in route["deployments"]]


# Fixtures for the upstream tests (a plugin of tests/conftest.py): a module that
# names none of them pays nothing.

CLIENT_TIMEOUT = 20.0  # seconds: a request still running then has hung


@pytest.fixture(scope="module")
def upstreams(stack: Stack) -> tuple[str, str]:
    """Two fakes of the module's own: the first is given faults, the second stays healthy."""
    return start_fake(stack), start_fake(stack)


async def _fresh(fake_url: str) -> str:
    await settled_stats(fake_url)  # what an earlier test left running has ended
    await clear_faults(fake_url)
    await reset_stats(fake_url)
    return fake_url


@pytest.fixture
async def failing(upstreams: tuple[str, str]) -> str:
    """The fake a test gives faults, without faults and with its counters at zero."""
    return await _fresh(upstreams[0])


@pytest.fixture
async def healthy(upstreams: tuple[str, str]) -> str:
    """The fake that stays healthy, with its counters at zero."""
    return await _fresh(upstreams[1])


@pytest.fixture
async def fresh_key(stack: Stack) -> str:
    return await new_key(stack)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client that gives up after `CLIENT_TIMEOUT`: no test waits on a hung request."""
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        yield client


def served_by(answers: list[Answer]) -> Counter[str | None]:
    """How many answers each deployment gave; every answer must be a 200."""
    assert all(a.status == 200 for a in answers), Counter(a.status for a in answers)
    return Counter(a.deployment for a in answers)


async def requests_seen(*fakes: str) -> list[int]:
    """The chat requests each fake has had, once none is running there."""
    return [(await settled_stats(url))["chat_requests"] for url in fakes]
