"""The fake upstream speaks OpenAI's wire format: fixtures, shapes, the official client."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes.provider import DEFAULT_MODEL
from tests.support.fake import (
    AUTH,
    CHAT,
    MESSAGES,
    PROMPT_WORDS,
    TOKENS,
    assert_same_shapes,
    chat_body,
    chunk_kind,
    expected_content,
    fixture_events,
    fixture_json,
    kinds_pattern,
    parse_sse,
    read_http_chunks,
    shape,
    streamed_text,
)


def test_fixture_streams_are_well_formed() -> None:
    full = fixture_events("chat_completion_stream.sse")
    assert full[-1] == "[DONE]"
    chunks = [json.loads(e) for e in full[:-1]]
    assert kinds_pattern(chunks) == ["role", "content", "finish", "usage"]
    assert all("usage" in chunk for chunk in chunks)
    no_usage = fixture_events("chat_completion_stream_no_usage.sse")
    assert no_usage[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in no_usage[:-1])
    failed = fixture_events("chat_completion_stream_failed_midway.sse")
    assert "[DONE]" not in failed
    assert kinds_pattern([json.loads(e) for e in failed]) == ["role", "content"]


# --- wire format against the fixtures --------------------------------------------------------


async def test_non_stream_matches_fixture_shape(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=AUTH) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert shape(body) == shape(fixture_json("chat_completion.json"))
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-test"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == expected_content(TOKENS)
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("include_usage", "fixture"),
    [(True, "chat_completion_stream.sse"), (False, "chat_completion_stream_no_usage.sse")],
)
async def test_stream_matches_fixture_shape(
    fake_url: str, session: aiohttp.ClientSession, include_usage: bool, fixture: str
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": include_usage})
    async with session.post(f"{fake_url}{CHAT}", json=body, headers=AUTH) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        raw = await resp.read()
    assert raw.endswith(b"\n\ndata: [DONE]\n\n")
    events = parse_sse(raw)
    assert events[-1] == "[DONE]"
    assert events.count("[DONE]") == 1
    chunks = [json.loads(e) for e in events[:-1]]

    assert_same_shapes(chunks, [json.loads(e) for e in fixture_events(fixture)[:-1]])
    assert sum(chunk_kind(c) == "content" for c in chunks) == TOKENS
    assert len({c["id"] for c in chunks}) == 1
    assert len({c["created"] for c in chunks}) == 1
    assert streamed_text(chunks) == expected_content(TOKENS)
    if include_usage:
        assert chunks[-1]["usage"]["completion_tokens"] == TOKENS


async def test_each_stream_event_is_written_separately(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    async with session.post(f"{fake_url}{CHAT}", json=body, headers=AUTH) as resp:
        http_chunks: list[bytes] = []
        await read_http_chunks(resp, http_chunks)
    # One HTTP chunk per SSE event: role, TOKENS contents, finish, usage, [DONE].
    assert len(http_chunks) == TOKENS + 4
    for data in http_chunks:
        assert data.startswith(b"data: ")
        assert data.endswith(b"\n\n")
        assert data.count(b"\n\n") == 1


async def test_models_list_matches_fixture_shape(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    async with session.post(
        f"{fake_url}{CHAT}", json=chat_body(model="model-seen-by-fake"), headers=AUTH
    ) as resp:
        assert resp.status == 200
    async with session.get(f"{fake_url}/v1/models", headers=AUTH) as resp:
        assert resp.status == 200
        body = await resp.json()
    reference = fixture_json("models_list.json")
    assert body.keys() == reference.keys()
    assert body["object"] == "list"
    for entry in body["data"]:
        assert shape(entry) == shape(reference["data"][0])
        assert entry["object"] == "model"
    ids = {entry["id"] for entry in body["data"]}
    assert {DEFAULT_MODEL, "model-seen-by-fake"} <= ids


# --- deterministic content through the official client ---------------------------------------


async def test_openai_client_non_stream(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-test"
    assert completion.choices[0].message.content == expected_content(TOKENS)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == PROMPT_WORDS
    assert completion.usage.completion_tokens == TOKENS
    assert completion.usage.total_tokens == PROMPT_WORDS + TOKENS


async def test_openai_client_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-tokens": "12"},
    )
    pieces: list[str] = []
    finish_reasons = []
    usages = []
    async for chunk in stream:
        if chunk.usage is not None:
            assert chunk.choices == []
            usages.append(chunk.usage)
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    assert pieces == ["tok0", *(f" tok{i}" for i in range(1, 12))]
    assert "".join(pieces) == expected_content(12)
    assert finish_reasons == ["stop"]
    assert len(usages) == 1
    assert usages[0].prompt_tokens == PROMPT_WORDS
    assert usages[0].completion_tokens == 12
    assert usages[0].total_tokens == PROMPT_WORDS + 12


@pytest.mark.parametrize("stream", [False, True])
async def test_max_tokens_caps_the_completion(client: openai.AsyncOpenAI, stream: bool) -> None:
    if stream:
        chunks = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            max_completion_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
        content, finish, completion_tokens = "", None, None
        async for chunk in chunks:
            for choice in chunk.choices:
                content += choice.delta.content or ""
                finish = choice.finish_reason or finish
            if chunk.usage is not None:
                completion_tokens = chunk.usage.completion_tokens
    else:
        completion = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            max_tokens=3,
        )
        content = completion.choices[0].message.content or ""
        finish = completion.choices[0].finish_reason
        assert completion.usage is not None
        completion_tokens = completion.usage.completion_tokens
    assert content == expected_content(3)
    assert finish == "length"
    assert completion_tokens == 3


async def test_prompt_tokens_count_words_of_text_parts(client: openai.AsyncOpenAI) -> None:
    messages: Any = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}],
        },
        {"role": "assistant", "content": "four"},
    ]
    completion = await client.chat.completions.create(model="gpt-test", messages=messages)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 4
    empty: Any = [{"role": "user", "content": ""}]
    completion = await client.chat.completions.create(model="gpt-test", messages=empty)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 1


# --- errors ----------------------------------------------------------------------------------


# --- continuation of a final assistant message -----------------------------------------------


def prefilled(pieces: int) -> Any:
    """The conversation with the first ``pieces`` pieces of the answer already written."""
    return [*MESSAGES, {"role": "assistant", "content": expected_content(pieces)}]


async def test_a_prefill_is_continued(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-test",
        messages=prefilled(40),
        extra_headers={"x-fake-tokens": "60"},
        extra_body={"continue_final_message": True, "add_generation_prompt": False},
    )
    content = completion.choices[0].message.content
    assert content == "".join(f" tok{i}" for i in range(40, 60))
    assert expected_content(40) + content == expected_content(60)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 20
    assert completion.usage.prompt_tokens == PROMPT_WORDS + 40


async def test_a_prefill_is_continued_in_a_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-test",
        messages=prefilled(40),
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-tokens": "60"},
    )
    pieces: list[str] = []
    completion_tokens = None
    async for chunk in stream:
        pieces.extend(c.delta.content for c in chunk.choices if c.delta.content)
        if chunk.usage is not None:
            completion_tokens = chunk.usage.completion_tokens
    assert pieces == [f" tok{i}" for i in range(40, 60)]
    assert expected_content(40) + "".join(pieces) == expected_content(60)
    assert completion_tokens == 20


@pytest.mark.parametrize(
    ("written", "max_tokens", "content", "finish"),
    [
        (3, 1, " tok3", "length"),
        (TOKENS, None, "", "stop"),
        (TOKENS + 2, None, "", "stop"),
        (0, None, expected_content(TOKENS), "stop"),
    ],
)
async def test_continuation_with_caps_and_long_prefills(
    client: openai.AsyncOpenAI, written: int, max_tokens: int | None, content: str, finish: str
) -> None:
    completion = await client.chat.completions.create(
        model="gpt-test",
        messages=prefilled(written),
        **({} if max_tokens is None else {"max_tokens": max_tokens}),
    )
    assert completion.choices[0].message.content == content
    assert completion.choices[0].finish_reason == finish
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(content.split())
