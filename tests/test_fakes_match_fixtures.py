"""The fake's answers have the shapes of the wire-format fixtures written from each provider's docs.

Shapes: on keys present in both, recursively, the same JSON types (a null on either side
matches anything; list items are compared with the fixture's item of the same variant), and
every top-level key of the fixture is in the fake's answer. Streams: the fake's event kinds,
runs collapsed and ``ping`` left out, come in the fixture's order (a subsequence of it, or
the same where the fixture's scenario is one the fake plays), each event shaped like the
fixture's event of its kind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.clients import Conversation, events_of, request_of
from tests.fakes.testing import KEY, fresh_session, post, post_body, serve_kinds

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
async def url() -> AsyncIterator[str]:
    async with serve_kinds() as fake_url:
        yield fake_url


@pytest.fixture
async def session(url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with fresh_session(url) as client_session:
        yield client_session


def fixture(kind: str, name: str) -> bytes:
    path = FIXTURES / kind / name
    if not path.exists():
        pytest.skip(f"fixture {kind}/{name} not written")
    return path.read_bytes()


def _variant(item: Any, ref: Any) -> bool:
    if isinstance(item, dict) and isinstance(ref, dict):
        if "type" in item and "type" in ref:
            return bool(item["type"] == ref["type"])
        return bool(item.keys() & ref.keys())
    return _kind(item) == _kind(ref)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_shape(fake: Any, ref: Any, at: str = "$") -> None:
    """``fake`` is shaped like ``ref`` where both say something."""
    if fake is None or ref is None:
        return
    assert _kind(fake) == _kind(ref), f"{at}: {_kind(fake)} where the fixture has {_kind(ref)}"
    if isinstance(ref, dict):
        for key in fake.keys() & ref.keys():
            assert_shape(fake[key], ref[key], f"{at}.{key}")
    elif isinstance(ref, list):
        for i, item in enumerate(fake):
            same = [r for r in ref if _variant(item, r)]
            if same:
                assert_shape(item, same[0], f"{at}[{i}]")


def assert_like(fake: dict[str, Any], ref: dict[str, Any]) -> None:
    missing = ref.keys() - fake.keys()
    assert not missing, f"the fake's answer lacks {sorted(missing)}"
    assert_shape(fake, ref)


def classified(kind: str, raw: bytes) -> list[tuple[str, Any]]:
    """A stream's events, each with the kind of event it is."""
    out = []
    for name, data in events_of(kind, raw):
        if kind in ("openai", "azure_openai") and name == "data":
            if "error" in data:
                name = "error"
            elif not data.get("choices"):
                name = "usage" if data.get("usage") else "filters"
            else:
                choice = data["choices"][0]
                delta = choice.get("delta", {})
                name = (
                    "finish"
                    if choice.get("finish_reason")
                    else "role"
                    if "role" in delta
                    else "tool"
                    if delta.get("tool_calls")
                    else "content"
                )
        elif kind == "gemini" and name == "data":
            if "error" in data:
                name = "error"
            else:
                candidate = (data.get("candidates") or [{}])[0]
                name = "finish" if candidate.get("finishReason") else "chunk"
        elif kind == "anthropic" and name == "content_block_delta":
            name = data["delta"]["type"]
        out.append((name, data))
    return out


def pattern(events: list[tuple[str, Any]]) -> list[str]:
    out: list[str] = []
    for name, _ in events:
        if name != "ping" and (not out or out[-1] != name):
            out.append(name)
    return out


def is_subsequence(short: list[str], long: list[str]) -> bool:
    rest = iter(long)
    return all(name in rest for name in short)


def assert_stream_like(kind: str, raw: bytes, ref_raw: bytes, exact: bool) -> None:
    fake, ref = classified(kind, raw), classified(kind, ref_raw)
    if exact:
        assert pattern(fake) == pattern(ref)
    else:
        assert is_subsequence(pattern(fake), pattern(ref)), (pattern(fake), pattern(ref))
    shapes = {}
    for name, data in ref:
        shapes.setdefault(name, data)
    for name, data in fake:
        if name in shapes and isinstance(data, dict):
            assert_shape(data, shapes[name], name)


async def body_of(
    session: aiohttp.ClientSession, url: str, kind: str, c: Conversation, stream: bool, **knobs: Any
) -> bytes:
    headers = {f"x-fake-{k.replace('_', '-')}": str(v) for k, v in knobs.items()}
    status, raw, _ = await post(session, url, kind, c, stream, headers)
    assert status == 200, raw
    return raw


TOOLS = Conversation(tools=["get_weather"])
NON_STREAM = [
    ("openai", TOOLS, "chat_completion_tool_calls.json"),
    ("openai", Conversation(), "chat_completion.json"),
    ("azure_openai", Conversation(), "chat_completion_filtered.json"),
    ("anthropic", Conversation(), "message.json"),
    ("anthropic", TOOLS, "message.json"),
    ("gemini", Conversation(), "generate_content.json"),
    ("gemini", TOOLS, "generate_content_function_call.json"),
    ("bedrock", Conversation(), "converse_response_text.json"),
    ("bedrock", TOOLS, "converse_response.json"),
]


@pytest.mark.parametrize(("kind", "c", "name"), NON_STREAM)
async def test_answers_are_shaped_like_the_fixtures(
    session: aiohttp.ClientSession, url: str, kind: str, c: Conversation, name: str
) -> None:
    ref = json.loads(fixture(kind, name))
    assert_like(json.loads(await body_of(session, url, kind, c, False)), ref)


async def test_gemini_blocked_prompt_is_shaped_like_the_fixture(
    session: aiohttp.ClientSession, url: str
) -> None:
    ref = json.loads(fixture("gemini", "generate_content_blocked.json"))
    raw = await body_of(session, url, "gemini", Conversation(), False, content_filter="prompt")
    assert_like(json.loads(raw), ref)


STREAMS = [
    ("openai", Conversation(), {}, "chat_completion_stream.sse", True),
    ("openai", TOOLS, {}, "chat_completion_stream_tool_calls.sse", True),
    ("openai", Conversation(), {"error_after": 2}, "chat_completion_stream_error_chunk.sse", True),
    ("azure_openai", Conversation(), {}, "chat_completion_stream_filtered.sse", False),
    ("anthropic", TOOLS, {}, "message_stream_tool_use.sse", False),
    ("anthropic", Conversation(), {}, "message_stream_tool_use.sse", False),
    ("anthropic", Conversation(), {"error_after": 2}, "message_stream_overloaded.sse", True),
    ("gemini", Conversation(), {}, "stream_generate_content.sse", True),
    ("gemini", Conversation(), {"error_after": 2}, "stream_generate_content_error.sse", True),
    ("bedrock", Conversation(), {}, "converse_stream.bin", False),
    ("bedrock", TOOLS, {}, "converse_stream.bin", False),
    ("bedrock", Conversation(), {"error_after": 2}, "converse_stream_throttled.bin", True),
]


@pytest.mark.parametrize(("kind", "c", "knobs", "name", "exact"), STREAMS)
async def test_streams_follow_the_fixtures(
    session: aiohttp.ClientSession,
    url: str,
    kind: str,
    c: Conversation,
    knobs: dict[str, Any],
    name: str,
    exact: bool,
) -> None:
    ref = fixture(kind, name)
    assert_stream_like(kind, await body_of(session, url, kind, c, True, **knobs), ref, exact)


async def test_anthropic_thinking_follows_the_fixtures(
    session: aiohttp.ClientSession, url: str
) -> None:
    path, headers, body = request_of("anthropic", TOOLS, False, KEY)
    body.update(thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2048)
    async with session.post(url + path, json=body, headers=headers) as resp:
        assert_like(await resp.json(), json.loads(fixture("anthropic", "message.json")))
    body.update(stream=True, tools=[])
    async with session.post(url + path, json=body, headers=headers) as resp:
        raw = await resp.read()
    assert_stream_like("anthropic", raw, fixture("anthropic", "message_stream_thinking.sse"), True)


ERRORS = [
    ("openai", 429, "error_rate_limit.json"),
    ("openai", 500, "error_server_error.json"),
    *((("anthropic", s, f"error_{s}.json")) for s in (400, 401, 404, 413, 429, 500, 529)),
    *((("gemini", s, f"error_{s}.json")) for s in (400, 403, 404, 429, 500, 503)),
    ("bedrock", 400, "error_validation_400.json"),
    ("bedrock", 403, "error_access_denied_403.json"),
    ("bedrock", 404, "error_not_found_404.json"),
    ("bedrock", 429, "error_throttling_429.json"),
    ("bedrock", 500, "error_internal_500.json"),
    ("bedrock", 503, "error_service_unavailable_503.json"),
]


@pytest.mark.parametrize(("kind", "status", "name"), ERRORS)
async def test_error_bodies_are_shaped_like_the_fixtures(
    session: aiohttp.ClientSession, url: str, kind: str, status: int, name: str
) -> None:
    ref = json.loads(fixture(kind, name))
    headers = {"x-fake-status": str(status)}
    got, raw, _ = await post(session, url, kind, Conversation(), False, headers)
    assert got == status
    fake = json.loads(raw)
    assert_like(fake, ref)
    if kind == "anthropic":
        assert fake["error"]["type"] == ref["error"]["type"]
    elif kind == "gemini":
        assert fake["error"]["status"] == ref["error"]["status"]


async def test_embeddings_are_shaped_like_the_fixtures(
    session: aiohttp.ClientSession, url: str
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    for form, name in (("float", "float"), ("base64", "base64")):
        body = {"model": "emb", "input": ["one two", "three"], "encoding_format": form}
        async with session.post(f"{url}/v1/embeddings", json=body, headers=auth) as resp:
            ref = json.loads(fixture("openai", f"embeddings_response_{name}.json"))
            assert_like(await resp.json(), ref)
    ref = json.loads(fixture("gemini", "batch_embed_contents.json"))
    request = json.loads(fixture("gemini", "batch_embed_contents_request.json"))
    model = request["requests"][0]["model"].removeprefix("models/")
    async with session.post(
        f"{url}/v1beta/models/{model}:batchEmbedContents",
        json=request,
        headers={"x-goog-api-key": KEY},
    ) as resp:
        assert resp.status == 200
        assert_like(await resp.json(), ref)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("anthropic", "request.json"),
        ("gemini", "generate_content_request.json"),
        ("bedrock", "converse_request.json"),
        ("openai", "chat_request_tools_images.json"),
    ],
)
async def test_the_fixture_requests_are_accepted(
    session: aiohttp.ClientSession, url: str, kind: str, name: str
) -> None:
    body = json.loads(fixture(kind, name))
    body.pop("stream", None)
    status, raw = await post_body(session, url, kind, body)
    assert status == 200, raw
