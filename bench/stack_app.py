"""A bare forwarding proxy for bench/stack.py: no checks, no accounting, only
the HTTP stack under test. Configured by the environment:

- STACK_UPSTREAM: base URL of the upstream (".../v1")
- STACK_CLIENT: "aiohttp" or "httpx"
- STACK_FRAMEWORK: "plain" (an ASGI callable) or "litestar"
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import httpx
from litestar import Litestar, Request, post
from litestar.response import Stream

UPSTREAM = os.environ.get("STACK_UPSTREAM", "http://127.0.0.1:9/v1") + "/chat/completions"
CLIENT = os.environ.get("STACK_CLIENT", "aiohttp")
FRAMEWORK = os.environ.get("STACK_FRAMEWORK", "plain")
HEADERS = {"content-type": "application/json"}

Chunks = Callable[[bytes], Awaitable[tuple[int, AsyncIterator[bytes]]]]


def _aiohttp_forwarder() -> Chunks:
    session: aiohttp.ClientSession | None = None

    async def forward(body: bytes) -> tuple[int, AsyncIterator[bytes]]:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        resp = await session.post(UPSTREAM, data=body, headers=HEADERS)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            finally:
                resp.release()

        return resp.status, chunks()

    return forward


def _httpx_forwarder() -> Chunks:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000)
    client = httpx.AsyncClient(limits=limits, timeout=60)

    async def forward(body: bytes) -> tuple[int, AsyncIterator[bytes]]:
        request = client.build_request("POST", UPSTREAM, content=body, headers=HEADERS)
        resp = await client.send(request, stream=True)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_raw():
                    yield chunk
            finally:
                await resp.aclose()

        return resp.status_code, chunks()

    return forward


forward = _aiohttp_forwarder() if CLIENT == "aiohttp" else _httpx_forwarder()


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status, chunks = await forward(body)
    await send({"type": "http.response.start", "status": status, "headers": []})
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _litestar_app() -> Litestar:
    @post("/v1/chat/completions", status_code=200)
    async def relay(request: Request[Any, Any, Any]) -> Stream:
        status, chunks = await forward(await request.body())
        return Stream(chunks, status_code=status)

    return Litestar([relay])


app = _litestar_app() if FRAMEWORK == "litestar" else plain_app
