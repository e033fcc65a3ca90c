"""The official `openai` SDK, unchanged, against the data plane: chat whole and
streamed with a tool-call round trip, served by Anthropic, Gemini, Bedrock and
Azure OpenAI upstreams; embeddings served by OpenAI, Azure OpenAI and Gemini."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from tests.support.fake import expected_content
from tests.support.kinds import Kinds, start_kinds_fake
from tests.support.routing import new_key
from tests.support.stack import Stack

TOKENS = 20
QUESTION = "What is the weather in Lisbon"
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string"}},
            "required": ["input"],
        },
    },
}
CHAT_KINDS = ["anthropic", "gemini", "bedrock", "azure_openai"]
EMBEDDING_KINDS = ["openai", "azure_openai", "gemini"]


@pytest.fixture(scope="module")
async def kinds(stack: Stack) -> Kinds:
    served = Kinds(stack, start_kinds_fake(stack), await new_key(stack))
    await served.create()
    return served


@pytest.fixture
async def client(kinds: Kinds) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(
        base_url=kinds.url + "/v1", api_key=kinds.key, max_retries=0, timeout=20
    )
    yield sdk
    await sdk.close()


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_a_whole_chat(client: openai.AsyncOpenAI, kinds: Kinds, kind: str) -> None:
    answer = await client.chat.completions.create(
        model=kinds.model(kind),
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there friend"},
        ],
    )
    choice = answer.choices[0]
    assert choice.message.content == expected_content(TOKENS)
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, TOKENS)


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_a_streamed_chat(client: openai.AsyncOpenAI, kinds: Kinds, kind: str) -> None:
    stream = await client.chat.completions.create(
        model=kinds.model(kind),
        messages=[{"role": "user", "content": "Hello there friend"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    async for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(pieces) == expected_content(TOKENS)
    assert finish == "stop"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, TOKENS)


async def _streamed_turn(
    client: openai.AsyncOpenAI, model: str, messages: list[dict[str, Any]]
) -> tuple[str, str | None, dict[int, dict[str, Any]], int]:
    """(text, finish reason, tool calls by index, argument deltas) of a streamed turn."""
    stream = await client.chat.completions.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        tools=[TOOL],  # type: ignore[list-item]
        stream=True,
    )
    text, finish, calls, argument_deltas = "", None, {}, 0
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or ():
                into = calls.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
                if call.id:
                    into["id"] = call.id
                if call.function and call.function.name:
                    into["name"] = call.function.name
                if call.function and call.function.arguments:
                    into["arguments"] += call.function.arguments
                    argument_deltas += 1
    return text, finish, calls, argument_deltas


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_a_streamed_tool_call_round_trip(
    client: openai.AsyncOpenAI, kinds: Kinds, kind: str
) -> None:
    """The call's arguments reach the client in pieces as the upstream streams them
    (events 20 ms apart, so each comes in a read of its own)."""
    await kinds.faults(delay_ms=20)
    try:
        await _round_trip(client, kinds.model(kind), kind)
    finally:
        await kinds.faults()


async def _round_trip(client: openai.AsyncOpenAI, model: str, kind: str) -> None:
    asked: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    text, finish, calls, deltas = await _streamed_turn(client, model, asked)
    assert (text, finish) == ("", "tool_calls")
    assert list(calls) == [0]
    call = calls[0]
    assert call["name"] == "weather"
    assert call["id"]
    assert call["arguments"].replace(" ", "") == f'{{"input":"{QUESTION}"}}'.replace(" ", "")
    if kind != "gemini":  # Gemini sends a call whole, in one event
        assert deltas > 1
    turn = [
        *asked,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": "weather", "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny"},
    ]
    text, finish, calls, _ = await _streamed_turn(client, model, turn)
    assert (text, finish, calls) == (expected_content(TOKENS), "stop", {})


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_a_whole_tool_call_round_trip(
    client: openai.AsyncOpenAI, kinds: Kinds, kind: str
) -> None:
    model = kinds.model(kind)
    asked: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    first = await client.chat.completions.create(
        model=model,
        messages=asked,  # type: ignore[arg-type]
        tools=[TOOL],  # type: ignore[list-item]
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    assert len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.function.name == "weather"  # type: ignore[union-attr]
    assert call.function.arguments.replace(" ", "") == (  # type: ignore[union-attr]
        f'{{"input":"{QUESTION}"}}'.replace(" ", "")
    )
    turn = [
        *asked,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
    ]
    second = await client.chat.completions.create(
        model=model,
        messages=turn,  # type: ignore[arg-type]
        tools=[TOOL],  # type: ignore[list-item]
    )
    assert second.choices[0].message.content == expected_content(TOKENS)
    assert second.usage is not None
    assert second.usage.prompt_tokens == 7


@pytest.mark.parametrize("kind", EMBEDDING_KINDS)
async def test_embeddings(client: openai.AsyncOpenAI, kinds: Kinds, kind: str) -> None:
    texts = ["the first text", "and a second one here"]
    made = await client.embeddings.create(model=kinds.model(kind), input=texts)
    assert [item.index for item in made.data] == [0, 1]
    vectors = [item.embedding for item in made.data]
    assert all(len(v) == len(vectors[0]) > 0 for v in vectors)
    assert vectors[0] != vectors[1]
    assert made.usage.prompt_tokens > 0
    again = await client.embeddings.create(model=kinds.model(kind), input=texts)
    assert [item.embedding for item in again.data] == vectors  # deterministic upstream
    # base64, as the SDK asks for by default when numpy is absent: decoded the same
    raw = await client.embeddings.with_raw_response.create(
        model=kinds.model(kind), input=texts, encoding_format="base64"
    )
    data = raw.http_response.json()["data"]
    decoded = [
        list(struct.unpack(f"<{len(v)}f", base64.b64decode(item["embedding"])))
        for item, v in zip(data, vectors, strict=True)
    ]
    flat = [x for v in vectors for x in v]
    assert [x for v in decoded for x in v] == pytest.approx(flat, rel=1e-6)
