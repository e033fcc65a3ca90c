"""Helpers and fixtures for testing the fake OpenAI-compatible upstream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.provider import FakeConfig, build_app

Knobs = Callable[..., Awaitable[dict[str, str]]]
"""Sets knobs by their JSON names and gives the headers a request then carries."""
STREAM = {"stream": True, "stream_options": {"include_usage": True}}
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


def assert_same_shapes(chunks: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    """``chunks`` come in the order of ``reference``'s kinds, each shaped like its kind there."""
    assert kinds_pattern(chunks) == kinds_pattern(reference)
    reference_shapes = {chunk_kind(c): shape(c) for c in reference}
    for chunk in chunks:
        assert shape(chunk) == reference_shapes[chunk_kind(chunk)], chunk


def chunks_of(events: list[str]) -> list[dict[str, Any]]:
    """The chunks of SSE data payloads, ``[DONE]`` left out."""
    return [json.loads(e) for e in events if e != "[DONE]"]


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


def fault_headers(**knobs: Any) -> dict[str, str]:
    """The ``x-fake-*`` header form of fault knobs given by their JSON names."""

    def text(value: Any) -> str:
        if value is None:
            return "null"
        return str(int(value)) if isinstance(value, bool) else str(value)

    return {"x-fake-" + name.replace("_", "-"): text(value) for name, value in knobs.items()}


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


async def read_stream(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    into: list[bytes],
    arrivals: list[float] | None = None,
    **body: Any,
) -> None:
    """Post a streamed chat completion and read it with ``read_http_chunks``."""
    body = chat_body(**{"stream": True, **body})
    async with session.post(f"{url}{CHAT}", json=body, headers=headers) as resp:
        assert resp.status == 200
        await read_http_chunks(resp, into, arrivals)


async def fake_log(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(f"{url}/_fake/requests") as resp:
        assert resp.status == 200
        log: list[dict[str, Any]] = await resp.json()
        return log


async def fake_stats(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/_fake/stats") as resp:
        assert resp.status == 200
        stats: dict[str, Any] = await resp.json()
        return stats


async def put_faults(session: aiohttp.ClientSession, url: str, **knobs: Any) -> dict[str, Any]:
    """Set the fake's process knobs (the others go back to their startup values)."""
    async with session.put(f"{url}/_fake/faults", json=knobs) as resp:
        assert resp.status == 200, await resp.text()
        faults: dict[str, Any] = await resp.json()
        return faults


async def post_chat(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], **body: Any
) -> tuple[int, bytes]:
    """Status and raw body of a chat completion with ``chat_body(**body)``."""
    async with session.post(f"{url}{CHAT}", json=chat_body(**body), headers=headers) as resp:
        return resp.status, await resp.read()


async def until_idle(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """The fake's stats once no chat request is running (the fake may take a poll to notice)."""
    for _ in range(250):
        stats = await fake_stats(session, url)
        if not stats["in_flight"]:
            return stats
        await asyncio.sleep(0.02)
    raise AssertionError(f"requests still running after 5 s: {stats}")


async def reset_fake(session: aiohttp.ClientSession, url: str) -> None:
    """Startup knobs, zeroed counters and an empty request log."""
    for path in ("faults", "stats", "requests"):
        async with session.delete(f"{url}/_fake/{path}") as resp:
            assert resp.status == 204


@contextlib.asynccontextmanager
async def fake_cli(*args: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``python -m tests.fakes.provider --port 0 *args``: its URL and process."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.fakes.provider", "--port", "0", *args),
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 15)).decode().strip()
        assert line.startswith("fake provider listening on http://127.0.0.1:")
        yield line.rsplit(" ", 1)[1], proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


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
async def clean_fake(fake_url: str) -> AsyncIterator[None]:
    """The module's fake with its startup knobs, zeroed counters and an empty log."""
    async with aiohttp.ClientSession() as session:
        await reset_fake(session, fake_url)
        yield
        await reset_fake(session, fake_url)


@pytest.fixture(params=["header", "process"])
def knobs(request: pytest.FixtureRequest, fake_url: str, session: aiohttp.ClientSession) -> Knobs:
    """Knobs set by ``x-fake-*`` headers, then by ``PUT /_fake/faults``."""

    async def apply(**values: Any) -> dict[str, str]:
        if request.param == "header":
            return {**AUTH, **fault_headers(**values)}
        await put_faults(session, fake_url, **values)
        return dict(AUTH)

    return apply


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
