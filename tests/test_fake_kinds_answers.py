"""The fake serves every upstream kind with the same answers: text, tool calls, usage, streams."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.clients import KINDS, Conversation, Summary, events_of, request_of, sign
from tests.fakes.clients import summary_of as summarize
from tests.fakes.embeddings import vector
from tests.fakes.testing import AWS, KEY, REGION, TOKENS, fresh_session, post, serve_kinds

PROMPT_WORDS = 7  # "You are terse." + "say hello to me"
STOPS = {  # end, max_tokens, tool_use per kind
    "openai": ("stop", "length", "tool_calls"),
    "azure_openai": ("stop", "length", "tool_calls"),
    "anthropic": ("end_turn", "max_tokens", "tool_use"),
    "gemini": ("STOP", "MAX_TOKENS", "STOP"),
    "bedrock": ("end_turn", "max_tokens", "tool_use"),
}


def expected(n: int) -> str:
    return " ".join(f"tok{i}" for i in range(n))


@pytest.fixture(scope="module")
async def url() -> AsyncIterator[str]:
    async with serve_kinds() as fake_url:
        yield fake_url


@pytest.fixture
async def session(url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with fresh_session(url) as client_session:
        yield client_session


async def answer(
    session: aiohttp.ClientSession, url: str, kind: str, c: Conversation, stream: bool, **knobs: Any
) -> Summary:
    headers = {f"x-fake-{k.replace('_', '-')}": str(v) for k, v in knobs.items()}
    status, raw, _ = await post(session, url, kind, c, stream, headers)
    assert status == 200, raw
    return summarize(kind, raw, stream)


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_text_answer_and_usage(
    session: aiohttp.ClientSession, url: str, kind: str, stream: bool
) -> None:
    s = await answer(session, url, kind, Conversation(), stream)
    assert s.text == expected(TOKENS)
    assert (s.prompt_tokens, s.completion_tokens) == (PROMPT_WORDS, TOKENS)
    assert s.finish == STOPS[kind][0]
    assert s.tool is None
    if stream:
        assert s.pieces == TOKENS


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_max_tokens_caps_the_answer(
    session: aiohttp.ClientSession, url: str, kind: str, stream: bool
) -> None:
    s = await answer(session, url, kind, Conversation(max_tokens=3), stream)
    assert (s.text, s.completion_tokens, s.finish) == (expected(3), 3, STOPS[kind][1])


STREAM_ORDER = {
    "openai": ["data"] * 5 + ["[DONE]"],  # role, 2 pieces, finish, usage
    "azure_openai": ["data"] * 6 + ["[DONE]"],  # prompt filter results first
    "anthropic": [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ],
    "gemini": ["data", "data", "data"],
    "bedrock": [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ],
}


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_event_order(session: aiohttp.ClientSession, url: str, kind: str) -> None:
    s = await answer(session, url, kind, Conversation(), True, tokens=2)
    assert s.events == STREAM_ORDER[kind]


async def test_anthropic_thinking_block_comes_first(
    session: aiohttp.ClientSession, url: str
) -> None:
    path, headers, body = request_of("anthropic", Conversation(), False, KEY)
    body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    body["max_tokens"] = 2048
    async with session.post(url + path, json=body, headers=headers) as resp:
        message = await resp.json()
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["signature"]
    assert message["usage"]["output_tokens"] == TOKENS + 3
    async with session.post(url + path, json={**body, "stream": True}, headers=headers) as resp:
        events = events_of("anthropic", await resp.read())
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names.count("ping") == 1
    deltas = [d["delta"]["type"] for n, d in events if n == "content_block_delta"]
    assert deltas == ["thinking_delta"] * 3 + ["signature_delta"] + ["text_delta"] * TOKENS
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["thinking", "text"]
    body["thinking"]["budget_tokens"] = 100
    async with session.post(url + path, json=body, headers=headers) as resp:
        assert resp.status == 400


# --- tool calls ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_tool_call_on_request(
    session: aiohttp.ClientSession, url: str, kind: str, stream: bool
) -> None:
    c = Conversation(tools=["lookup", "other"])
    s = await answer(session, url, kind, c, stream)
    arguments = json.dumps({"input": c.user}, separators=(",", ":"))
    assert (s.tool, s.text) == ("lookup", "")
    assert json.loads(s.arguments) == {"input": c.user}
    pieces = math.ceil(len(arguments) / 8)
    assert (s.prompt_tokens, s.completion_tokens) == (PROMPT_WORDS, pieces)
    assert s.finish == STOPS[kind][2]
    if stream and kind != "gemini":  # Gemini sends the whole call in one chunk
        assert s.pieces == pieces
    if kind != "gemini":
        prefix = {"anthropic": "toolu_", "bedrock": "tooluse_"}.get(kind, "call_")
        assert s.tool_id is not None
        assert s.tool_id.startswith(prefix)


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_choice_forced_none_and_knob(
    session: aiohttp.ClientSession, url: str, kind: str
) -> None:
    forced = await answer(session, url, kind, Conversation(tools=["a", "b"], choice="b"), False)
    assert forced.tool == "b"
    off = await answer(session, url, kind, Conversation(tools=["a"]), True, tool_call=0)
    assert (off.tool, off.text) == (None, expected(TOKENS))
    if kind != "bedrock":  # Bedrock has no tool choice "none"
        none = await answer(session, url, kind, Conversation(tools=["a"], choice="none"), False)
        assert none.tool is None


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_after_a_tool_result_a_text_answer_with_the_same_usage(
    session: aiohttp.ClientSession, url: str, kind: str, stream: bool
) -> None:
    c = Conversation(tools=["lookup"], tool_result="sunny and warm")
    s = await answer(session, url, kind, c, stream)
    assert (s.tool, s.text) == (None, expected(TOKENS))
    assert (s.prompt_tokens, s.completion_tokens) == (PROMPT_WORDS + 3, TOKENS)


# --- wire shape knobs ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_spaced_json_says_the_same(
    session: aiohttp.ClientSession, url: str, kind: str, stream: bool
) -> None:
    c = Conversation(tools=["lookup"])
    compact = await post(session, url, kind, c, stream)
    spaced = await post(session, url, kind, c, stream, {"x-fake-spaced-json": "1"})
    assert b'": ' in spaced[1]
    assert b'": ' not in compact[1]
    plain, loose = summarize(kind, compact[1], stream), summarize(kind, spaced[1], stream)
    assert (plain.arguments, plain.completion_tokens) == (loose.arguments, loose.completion_tokens)
    assert plain.events == loose.events


@pytest.mark.parametrize("kind", KINDS)
async def test_split_bytes_writes_small_pieces(
    session: aiohttp.ClientSession, url: str, kind: str
) -> None:
    path, own, body = request_of(kind, Conversation(), True, KEY)
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **own, "x-fake-split-bytes": "7"}
    if kind == "bedrock":
        headers = sign(url + path, raw, headers, AWS, REGION)
    chunks: list[bytes] = []
    target = aiohttp.client.URL(url + path, encoded=True)
    async with session.post(target, data=raw, headers=headers) as resp:
        pending = b""
        async for data, end in resp.content.iter_chunks():
            pending += data
            if end:
                chunks.append(pending)
                pending = b""
    assert max(map(len, chunks)) <= 7
    s = summarize(kind, b"".join(chunks), True)
    assert (s.text, s.completion_tokens) == (expected(TOKENS), TOKENS)


# --- embeddings ------------------------------------------------------------------------------


async def test_openai_and_azure_embeddings(session: aiohttp.ClientSession, url: str) -> None:
    body = {"model": "emb", "input": ["one two", "three"]}
    async with session.post(
        f"{url}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {KEY}"}
    ) as resp:
        plain = await resp.json()
    assert [d["embedding"] for d in plain["data"]] == [vector("one two"), vector("three")]
    assert plain["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    body.update(encoding_format="base64", dimensions=4)
    path = "/openai/deployments/emb-dep/embeddings?api-version=2024-10-21"
    async with session.post(url + path, json=body, headers={"api-key": KEY}) as resp:
        packed = await resp.json()
    assert packed["model"] == "emb-dep"
    first = struct.unpack("<4f", base64.b64decode(packed["data"][0]["embedding"]))
    assert list(first) == vector("one two", 4)


async def test_gemini_embeddings(session: aiohttp.ClientSession, url: str) -> None:
    one = {"model": "models/e", "content": {"parts": [{"text": "one two"}]}}
    body = {"requests": [one, {**one, "outputDimensionality": 3}]}
    async with session.post(
        f"{url}/v1beta/models/e:batchEmbedContents", json=body, headers={"x-goog-api-key": KEY}
    ) as resp:
        answer = await resp.json()
    assert answer == {
        "embeddings": [{"values": vector("one two")}, {"values": vector("one two", 3)}]
    }
    stats = await (await session.get(f"{url}/_fake/stats")).json()
    assert (stats["embedding_requests"], stats["chat_requests"]) == (1, 0)
    assert stats["by_kind"] == {"gemini": 1}


# --- the log ---------------------------------------------------------------------------------


async def test_log_and_stats_count_every_kind(session: aiohttp.ClientSession, url: str) -> None:
    for kind in KINDS:
        await answer(session, url, kind, Conversation(), False)
    async with session.get(f"{url}/_fake/requests") as resp:
        log = await resp.json()
    assert [e["kind"] for e in log] == list(KINDS)
    assert log[2]["authorization"] == KEY  # Anthropic's x-api-key
    assert log[4]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDFAKEKINDS/")
    stats = await (await session.get(f"{url}/_fake/stats")).json()
    assert stats["by_kind"] == dict.fromkeys(KINDS, 1)
    assert stats["by_status"] == {"200": 5}
