"""Helpers and fixtures for testing the fake OpenAI-compatible upstream."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam

from data_plane.fake_provider import FakeConfig, build_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openai"
API_KEY = "sk-fake-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
TOKENS = 5
CHAT = "/v1/chat/completions"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "say  hello\nto me"},
]
PROMPT_WORDS = 7  # "You are terse." (3) + "say hello to me" (4)


# --- helpers ---------------------------------------------------------------------------------


def expected_content(n: int) -> str:
    """The documented deterministic completion: pieces "tok0", " tok1", ..."""
    return " ".join(f"tok{i}" for i in range(n))


def parse_sse(raw: bytes) -> list[str]:
    """Data payloads of the complete events of an SSE body (a trailing partial one is dropped)."""
    *complete, _partial = raw.decode().replace("\r\n", "\n").split("\n\n")
    events = []
    for block in complete:
        lines = [line[5:] for line in block.split("\n") if line.startswith("data:")]
        if lines:
            events.append("\n".join(line.removeprefix(" ") for line in lines))
    return events


def shape(value: Any) -> Any:
    """Keys and JSON types of ``value``, recursively, without the values themselves."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def chunk_kind(chunk: dict[str, Any]) -> str:
    if not chunk["choices"]:
        return "usage"
    choice = chunk["choices"][0]
    if choice["finish_reason"] is not None:
        return "finish"
    return "role" if "role" in choice["delta"] else "content"


def kinds_pattern(chunks: list[dict[str, Any]]) -> list[str]:
    """Chunk kinds in order, runs of content chunks collapsed into one."""
    pattern: list[str] = []
    for chunk in chunks:
        kind = chunk_kind(chunk)
        if not (kind == "content" and pattern and pattern[-1] == "content"):
            pattern.append(kind)
    return pattern


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_events(name: str) -> list[str]:
    return parse_sse((FIXTURES / name).read_bytes())


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": MESSAGES, **extra}


async def read_http_chunks(
    resp: aiohttp.ClientResponse, into: list[bytes], arrivals: list[float] | None = None
) -> None:
    """Append each complete HTTP (transfer-encoding) chunk of the body to ``into``.

    What was read stays in ``into`` even if reading fails midway; ``arrivals`` gets the
    monotonic time at which each chunk was complete.
    """
    pending = b""
    async for data, end_of_http_chunk in resp.content.iter_chunks():
        pending += data
        if end_of_http_chunk:
            into.append(pending)
            pending = b""
            if arrivals is not None:
                arrivals.append(time.monotonic())


async def fake_log(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(f"{url}/_fake/requests") as resp:
        assert resp.status == 200
        log: list[dict[str, Any]] = await resp.json()
        return log


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fake_url() -> AsyncIterator[str]:
    runner = web.AppRunner(build_app(FakeConfig(tokens=TOKENS, api_key=API_KEY)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def client(fake_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{fake_url}/v1", api_key=API_KEY, max_retries=0
    ) as openai_client:
        yield openai_client


# --- the fixtures themselves -----------------------------------------------------------------
