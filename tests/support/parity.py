"""One conversation sent in either dialect, and its answer read back in that dialect's
own terms (text, usage, stop), whole or streamed, checking that the answer is well formed:
what the parity and mixed-route tests compare across kinds, dialects and wires."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "DIALECTS",
    "PROMPT_TOKENS",
    "Seen",
    "body_for",
    "read_answer",
    "send",
    "sse_events",
]

DIALECTS = ("openai", "anthropic")
SYSTEM = "Be brief."
QUESTION = "Hello there friend"
PROMPT_TOKENS = 5  # "Be brief." (2) + "Hello there friend" (3)
MAX_TOKENS = 100
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


@dataclass(frozen=True)
class Seen:
    """An answer as its client reads it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    stop: str


def body_for(dialect: str, model: str, stream: bool) -> dict[str, Any]:
    """The same conversation (system "Be brief.", user "Hello there friend", at most 100
    tokens) as each dialect writes it; an OpenAI stream asks for its usage."""
    if dialect == "openai":
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": MAX_TOKENS,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": QUESTION},
            ],
        }
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return body
    body = {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    if stream:
        body["stream"] = True
    return body


async def send(
    client: httpx.AsyncClient, url: str, key: str, dialect: str, model: str, stream: bool
) -> httpx.Response:
    """The conversation in `dialect` (an Anthropic client's key in `x-api-key`); a stream
    is read whole."""
    if dialect == "openai":
        headers = {"authorization": f"Bearer {key}"}
    else:
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return await client.post(
        url + PATHS[dialect], json=body_for(dialect, model, stream), headers=headers
    )


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of every event of an SSE body; the body must end with a whole
    event (no partial one left over)."""
    text = raw.decode().replace("\r\n", "\n")
    assert text.endswith("\n\n"), text[-200:]
    events = []
    for block in text[:-2].split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        assert data, block
        events.append((name, "\n".join(data)))
    return events


def read_answer(resp: httpx.Response, dialect: str, stream: bool) -> Seen:
    """The client's view of a 200 answer, every part of it checked for form."""
    assert resp.status_code == 200, resp.text
    if stream:
        assert resp.headers["content-type"].startswith("text/event-stream"), resp.headers
        events = sse_events(resp.content)
        if dialect == "openai":
            return _openai_stream(events)
        return _anthropic_stream(events)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    if dialect == "openai":
        return _openai_whole(body)
    return _anthropic_whole(body)


def _openai_whole(body: dict[str, Any]) -> Seen:
    assert body["object"] == "chat.completion", body
    assert len(body["choices"]) == 1, body
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    return Seen(
        choice["message"]["content"],
        usage["prompt_tokens"],
        usage["completion_tokens"],
        choice["finish_reason"],
    )


def _openai_stream(events: list[tuple[str | None, str]]) -> Seen:
    payloads = [data for _, data in events]
    assert payloads[-1] == "[DONE]", payloads
    assert payloads.count("[DONE]") == 1, payloads
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert not [c for c in chunks if "error" in c], chunks
    # Azure OpenAI's stream opens with its prompt filter's verdict, a chunk of its own
    chunks = [c for c in chunks if "prompt_filter_results" not in c]
    assert len({c["id"] for c in chunks}) == 1, chunks
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text, finish, usages = "", [], []
    for chunk in chunks:
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
            if choice.get("finish_reason"):
                finish.append(choice["finish_reason"])
        if chunk.get("usage"):
            usages.append(chunk["usage"])
    assert len(finish) == 1, chunks
    assert len(usages) == 1, chunks  # one usage chunk, the last, with no choices
    assert chunks[-1]["usage"] == usages[0]
    assert chunks[-1]["choices"] == []
    usage = usages[0]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    return Seen(text, usage["prompt_tokens"], usage["completion_tokens"], finish[0])


def _anthropic_whole(body: dict[str, Any]) -> Seen:
    assert (body["type"], body["role"]) == ("message", "assistant"), body
    assert [block["type"] for block in body["content"]] == ["text"], body
    return Seen(
        body["content"][0]["text"],
        body["usage"]["input_tokens"],
        body["usage"]["output_tokens"],
        body["stop_reason"],
    )


def _anthropic_stream(events: list[tuple[str | None, str]]) -> Seen:
    data = [json.loads(payload) for _, payload in events]
    for (name, _), event in zip(events, data, strict=True):
        assert name == event["type"], (name, event)  # the event line names its data
    types = [e["type"] for e in data if e["type"] != "ping"]
    assert "error" not in types, data
    assert types[0] == "message_start", types
    assert types[-2:] == ["message_delta", "message_stop"], types
    assert types.count("message_start") == types.count("message_delta") == 1, types
    starts = [e for e in data if e["type"] == "content_block_start"]
    assert [e["content_block"]["type"] for e in starts] == ["text"], data
    assert types.count("content_block_stop") == 1, types
    text = "".join(
        e["delta"]["text"]
        for e in data
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )
    start = data[0]["message"]
    delta = next(e for e in data if e["type"] == "message_delta")
    # a message_delta's usage is cumulative: an input count there overrides the start's
    # (which an upstream that counts at the end cannot know yet)
    usage = start["usage"] | {k: v for k, v in delta["usage"].items() if v is not None}
    return Seen(text, usage["input_tokens"], usage["output_tokens"], delta["delta"]["stop_reason"])
