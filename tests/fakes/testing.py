"""A fake of every kind for tests: started in the test's loop, with keys, AWS credentials and
clean knobs, and a way to post a ``Conversation`` to any kind's endpoint (signed for Bedrock)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

from tests.fakes.clients import Conversation, request_of, sign
from tests.fakes.provider import FakeConfig, build_app

__all__ = ["AWS", "KEY", "REGION", "TOKENS", "fresh_session", "post", "serve_kinds"]

KEY = "sk-fake-kinds"
AWS = ("AKIDFAKEKINDS", "fake-secret-access-key")
REGION = "eu-west-3"
TOKENS = 5


@contextlib.asynccontextmanager
async def serve_kinds() -> AsyncIterator[str]:
    """A fake answering ``TOKENS`` pieces, wanting ``KEY`` and SigV4 with ``AWS``: its URL."""
    config = FakeConfig(
        tokens=TOKENS,
        api_key=KEY,
        aws_access_key_id=AWS[0],
        aws_secret_access_key=AWS[1],
        aws_region=REGION,
    )
    runner = web.AppRunner(build_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def fresh_session(url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session, the fake's knobs, counters and log reset first."""
    async with aiohttp.ClientSession() as session:
        for path in ("faults", "stats", "requests"):
            async with session.delete(f"{url}/_fake/{path}") as resp:
                assert resp.status == 204
        yield session


async def post(
    session: aiohttp.ClientSession,
    url: str,
    kind: str,
    c: Conversation,
    stream: bool,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    """Status and raw body of the conversation sent to ``kind``'s endpoint."""
    path, own, body = request_of(kind, c, stream, KEY)
    raw = json.dumps(body).encode()
    full = {"Content-Type": "application/json", **own, **(headers or {})}
    if kind == "bedrock":
        full = sign(url + path, raw, full, AWS, REGION)
    async with session.post(URL(url + path, encoded=True), data=raw, headers=full) as resp:
        return resp.status, await resp.read(), resp


async def post_body(
    session: aiohttp.ClientSession, url: str, kind: str, body: object, stream: bool = False
) -> tuple[int, bytes]:
    """Status and raw body of ``body`` sent as is to ``kind``'s endpoint."""
    path, own, _ = request_of(kind, Conversation(), stream, KEY)
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **own}
    if kind == "bedrock":
        headers = sign(url + path, raw, headers, AWS, REGION)
    async with session.post(URL(url + path, encoded=True), data=raw, headers=headers) as resp:
        return resp.status, await resp.read()
