"""The official `anthropic` SDK, unchanged, against the data plane: messages whole
and streamed, and a tool-use round trip, served by an Anthropic upstream (the
client's body and the answer's bytes relayed) and by an OpenAI upstream
(translated both ways). The answers are the fake's deterministic ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from tests.support.fake import expected_content
from tests.support.kinds import Kinds, start_kinds_fake
from tests.support.routing import new_key
from tests.support.stack import Stack

TOKENS = 20  # the fake's answer: tok0 … tok19
QUESTION = "What is the weather in Lisbon"
TOOL = {
    "name": "weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"input": {"type": "string"}},
        "required": ["input"],
    },
}
SERVED_BY = ["anthropic", "openai"]


@pytest.fixture(scope="module")
async def kinds(stack: Stack) -> Kinds:
    served = Kinds(stack, start_kinds_fake(stack), await new_key(stack))
    await served.create()
    return served


@pytest.fixture
async def client(kinds: Kinds) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(base_url=kinds.url, api_key=kinds.key, max_retries=0, timeout=20)
    yield sdk
    await sdk.close()


@pytest.mark.parametrize("kind", SERVED_BY)
async def test_a_whole_message(client: anthropic.AsyncAnthropic, kinds: Kinds, kind: str) -> None:
    message = await client.messages.create(
        model=kinds.model(kind),
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello there friend"}],
    )
    assert message.role == "assistant"
    assert message.model == kinds.model(kind) or kind == "anthropic"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == expected_content(TOKENS)  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, TOKENS)


@pytest.mark.parametrize("kind", SERVED_BY)
async def test_a_streamed_message(
    client: anthropic.AsyncAnthropic, kinds: Kinds, kind: str
) -> None:
    seen: list[str] = []
    async with client.messages.stream(
        model=kinds.model(kind),
        max_tokens=200,
        messages=[{"role": "user", "content": "Hello there friend"}],
    ) as stream:
        async for event in stream:
            seen.append(event.type)
        message = await stream.get_final_message()
    assert message.content[0].text == expected_content(TOKENS)  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, TOKENS)
    raw = [t for t in seen if t not in ("text",)]  # the SDK adds its own `text` events
    assert raw[0] == "message_start"
    assert raw[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(raw)
    assert raw.index("message_delta") == len(raw) - 2


async def _tool_turn(
    client: anthropic.AsyncAnthropic, model: str, messages: list[dict[str, Any]]
) -> tuple[anthropic.types.Message, list[str]]:
    deltas: list[str] = []
    async with client.messages.stream(
        model=model,
        max_tokens=200,
        tools=[TOOL],  # type: ignore[list-item]
        messages=messages,  # type: ignore[arg-type]
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                deltas.append(event.delta.type)
        return await stream.get_final_message(), deltas


@pytest.mark.parametrize("kind", SERVED_BY)
async def test_a_tool_use_round_trip(
    client: anthropic.AsyncAnthropic, kinds: Kinds, kind: str
) -> None:
    """The tool call streams as JSON pieces; its result goes back; the answer follows."""
    model = kinds.model(kind)
    asked: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    call, deltas = await _tool_turn(client, model, asked)
    assert call.stop_reason == "tool_use"
    uses = [block for block in call.content if block.type == "tool_use"]
    assert len(uses) == 1
    assert uses[0].name == "weather"
    assert uses[0].input == {"input": QUESTION}
    assert deltas.count("input_json_delta") > 1  # streamed in pieces, not in one
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "Sunny"}],
    }
    turn = [*asked, {"role": "assistant", "content": call.content}, result]
    answer, _ = await _tool_turn(client, model, turn)
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text == expected_content(TOKENS)  # type: ignore[union-attr]
    # the question (6 words) and the tool's result (1) count; the call's arguments do not
    assert answer.usage.input_tokens == 7


async def test_count_tokens_is_an_estimate(client: anthropic.AsyncAnthropic, kinds: Kinds) -> None:
    counted = await client.messages.with_raw_response.count_tokens(
        model=kinds.model("anthropic"),
        messages=[{"role": "user", "content": "Hello there friend, " * 10}],
    )
    assert counted.headers["x-sluice-estimate"] == "true"
    assert 40 <= (await counted.parse()).input_tokens <= 70
