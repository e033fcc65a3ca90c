"""Talking to the fake in each kind's wire, for tests: requests of one conversation, and
answers (plain or streamed) read back into one ``Summary``.

The conversation is a system text, a user text, optionally tools and a cap; with
``tool_result`` it goes on with the assistant's call of the first tool and its result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

__all__ = [
    "KINDS",
    "Conversation",
    "Summary",
    "events_of",
    "request_of",
    "sign",
    "summary_of",
]

KINDS = ("openai", "azure_openai", "anthropic", "gemini", "bedrock")


@dataclass
class Conversation:
    system: str = "You are terse."
    user: str = "say  hello\nto me"
    tools: list[str] = field(default_factory=list)
    choice: str = "auto"  # auto, none, or a tool's name
    max_tokens: int | None = None
    tool_result: str | None = None  # the result of a first call, sent back


@dataclass
class Summary:
    text: str = ""
    pieces: int = 0  # content events (text or argument pieces)
    tool: str | None = None
    tool_id: str | None = None
    arguments: str = ""
    finish: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    events: list[str] = field(default_factory=list)  # event types in order (streams)


def _openai(c: Conversation, stream: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": c.system},
        {"role": "user", "content": c.user},
    ]
    if c.tool_result is not None:
        function = {"name": c.tools[0], "arguments": json.dumps({"input": c.user})}
        call = {"id": "call_x", "type": "function", "function": function}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": "call_x", "content": c.tool_result})
    body: dict[str, Any] = {"model": "gpt-test", "messages": messages}
    if c.tools:
        body["tools"] = [{"type": "function", "function": {"name": n}} for n in c.tools]
        if c.choice != "auto":
            named = {"type": "function", "function": {"name": c.choice}}
            body["tool_choice"] = "none" if c.choice == "none" else named
    if c.max_tokens is not None:
        body["max_tokens"] = c.max_tokens
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def _anthropic(c: Conversation, stream: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": c.user}]
    if c.tool_result is not None:
        use = {"type": "tool_use", "id": "toolu_x", "name": c.tools[0], "input": {"input": c.user}}
        result = {"type": "tool_result", "tool_use_id": "toolu_x", "content": c.tool_result}
        messages += [{"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    body: dict[str, Any] = {"model": "claude-test", "max_tokens": c.max_tokens or 1024}
    body.update(system=c.system, messages=messages, stream=stream)
    if c.tools:
        body["tools"] = [{"name": n, "input_schema": {"type": "object"}} for n in c.tools]
        if c.choice != "auto":
            body["tool_choice"] = {"type": "none"} if c.choice == "none" else {}
            if c.choice != "none":
                body["tool_choice"] = {"type": "tool", "name": c.choice}
    return body


def _gemini(c: Conversation) -> dict[str, Any]:
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": c.user}]}]
    if c.tool_result is not None:
        call = {"functionCall": {"name": c.tools[0], "args": {"input": c.user}}}
        answer = {"name": c.tools[0], "response": {"result": c.tool_result}}
        contents += [
            {"role": "model", "parts": [call]},
            {"role": "user", "parts": [{"functionResponse": answer}]},
        ]
    body: dict[str, Any] = {"systemInstruction": {"parts": [{"text": c.system}]}}
    body["contents"] = contents
    if c.tools:
        body["tools"] = [{"functionDeclarations": [{"name": n} for n in c.tools]}]
        if c.choice != "auto":
            calling: dict[str, Any] = {"mode": "NONE" if c.choice == "none" else "ANY"}
            if c.choice != "none":
                calling["allowedFunctionNames"] = [c.choice]
            body["toolConfig"] = {"functionCallingConfig": calling}
    if c.max_tokens is not None:
        body["generationConfig"] = {"maxOutputTokens": c.max_tokens}
    return body


def _bedrock(c: Conversation) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": c.user}]}]
    if c.tool_result is not None:
        use = {"toolUseId": "tooluse_x", "name": c.tools[0], "input": {"input": c.user}}
        result = {"toolUseId": "tooluse_x", "content": [{"text": c.tool_result}]}
        messages += [
            {"role": "assistant", "content": [{"toolUse": use}]},
            {"role": "user", "content": [{"toolResult": result}]},
        ]
    body: dict[str, Any] = {"system": [{"text": c.system}], "messages": messages}
    if c.tools:
        specs = [{"toolSpec": {"name": n, "inputSchema": {"json": {}}}} for n in c.tools]
        body["toolConfig"] = {"tools": specs}
        if c.choice not in ("auto", "none"):
            body["toolConfig"]["toolChoice"] = {"tool": {"name": c.choice}}
    if c.max_tokens is not None:
        body["inferenceConfig"] = {"maxTokens": c.max_tokens}
    return body


def request_of(
    kind: str, c: Conversation, stream: bool, key: str
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Path, headers (unsigned for Bedrock) and body of the conversation in ``kind``'s wire."""
    if kind == "openai":
        return "/v1/chat/completions", {"Authorization": f"Bearer {key}"}, _openai(c, stream)
    if kind == "azure_openai":
        body = _openai(c, stream)
        del body["model"]
        path = "/openai/deployments/dep-1/chat/completions?api-version=2024-10-21"
        return path, {"api-key": key}, body
    if kind == "anthropic":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return "/v1/messages", headers, _anthropic(c, stream)
    if kind == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/gemini-test:{method}", {"x-goog-api-key": key}, _gemini(c)
    model = quote("anthropic.claude-test:0", safe="")
    path = f"/model/{model}/converse-stream" if stream else f"/model/{model}/converse"
    return path, {}, _bedrock(c)


def sign(
    url: str, raw: bytes, headers: dict[str, str], keys: tuple[str, str], region: str
) -> dict[str, str]:
    """``headers`` plus a SigV4 signature of a POST of ``raw`` to ``url`` with ``keys``."""
    request = AWSRequest("POST", url, {"Content-Type": "application/json", **headers}, raw)
    SigV4Auth(Credentials(*keys), "bedrock", region).add_auth(request)
    return dict(request.headers.items())


def events_of(kind: str, raw: bytes) -> list[tuple[str, Any]]:
    """A stream's events: (type, parsed data); unparsable data gives type ``malformed``."""
    if kind == "bedrock":
        buffer = EventStreamBuffer()
        buffer.add_data(raw)
        out: list[tuple[str, Any]] = []
        for message in buffer:
            headers = message.headers
            name = headers.get(":event-type") or headers.get(":exception-type")
            out.append((str(name), json.loads(message.payload)))
        return out
    events: list[tuple[str, Any]] = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        data = "\n".join(x[5:].removeprefix(" ") for x in lines if x.startswith("data:"))
        name = next((x[6:].strip() for x in lines if x.startswith("event:")), "data")
        if not data:
            continue
        if data == "[DONE]":
            events.append(("[DONE]", None))
            continue
        try:
            events.append((name, json.loads(data)))
        except json.JSONDecodeError:
            events.append(("malformed", data))
    return events


def _openai_body(body: dict[str, Any], s: Summary) -> None:
    choice = body["choices"][0]
    message = choice["message"]
    s.text = message.get("content") or ""
    for call in message.get("tool_calls") or []:
        s.tool, s.tool_id = call["function"]["name"], call["id"]
        s.arguments = call["function"]["arguments"]
    s.finish = choice["finish_reason"]
    s.prompt_tokens = body["usage"]["prompt_tokens"]
    s.completion_tokens = body["usage"]["completion_tokens"]


def _anthropic_body(body: dict[str, Any], s: Summary) -> None:
    for block in body["content"]:
        if block["type"] == "text":
            s.text += block["text"]
        elif block["type"] == "tool_use":
            s.tool, s.tool_id = block["name"], block["id"]
            s.arguments = json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False)
    s.finish = body["stop_reason"]
    s.prompt_tokens = body["usage"]["input_tokens"]
    s.completion_tokens = body["usage"]["output_tokens"]


def _gemini_parts(body: dict[str, Any], s: Summary) -> None:
    for candidate in body.get("candidates", []):
        for part in candidate["content"]["parts"]:
            s.text += part.get("text", "")
            if "functionCall" in part:
                call = part["functionCall"]
                s.tool = call["name"]
                s.arguments = json.dumps(call["args"], separators=(",", ":"), ensure_ascii=False)
        s.finish = candidate.get("finishReason", s.finish)
    usage = body.get("usageMetadata", {})
    s.prompt_tokens = usage.get("promptTokenCount")
    s.completion_tokens = usage.get("candidatesTokenCount")


def _bedrock_body(body: dict[str, Any], s: Summary) -> None:
    for block in body["output"]["message"]["content"]:
        s.text += block.get("text", "")
        if "toolUse" in block:
            use = block["toolUse"]
            s.tool, s.tool_id = use["name"], use["toolUseId"]
            s.arguments = json.dumps(use["input"], separators=(",", ":"), ensure_ascii=False)
    s.finish = body["stopReason"]
    s.prompt_tokens = body["usage"]["inputTokens"]
    s.completion_tokens = body["usage"]["outputTokens"]


def _openai_event(data: Any, s: Summary) -> None:
    if data.get("usage"):
        s.prompt_tokens = data["usage"]["prompt_tokens"]
        s.completion_tokens = data["usage"]["completion_tokens"]
    for choice in data.get("choices", []):
        delta = choice["delta"]
        if delta.get("content"):
            s.text += delta["content"]
            s.pieces += 1
        for call in delta.get("tool_calls") or []:
            function = call.get("function", {})
            s.tool = function.get("name") or s.tool
            s.tool_id = call.get("id") or s.tool_id
            if function.get("arguments"):
                s.arguments += function["arguments"]
                s.pieces += 1
        s.finish = choice.get("finish_reason") or s.finish


def _anthropic_event(name: str, data: Any, s: Summary) -> None:
    if name == "message_start":
        s.prompt_tokens = data["message"]["usage"]["input_tokens"]
    elif name == "content_block_start" and data["content_block"]["type"] == "tool_use":
        s.tool, s.tool_id = data["content_block"]["name"], data["content_block"]["id"]
    elif name == "content_block_delta":
        delta = data["delta"]
        if delta["type"] == "text_delta":
            s.text += delta["text"]
            s.pieces += 1
        elif delta["type"] == "input_json_delta":
            s.arguments += delta["partial_json"]
            s.pieces += 1
    elif name == "message_delta":
        s.finish = data["delta"]["stop_reason"]
        s.completion_tokens = data["usage"]["output_tokens"]


def _bedrock_event(name: str, data: Any, s: Summary) -> None:
    if name == "contentBlockStart":
        use = data["start"]["toolUse"]
        s.tool, s.tool_id = use["name"], use["toolUseId"]
    elif name == "contentBlockDelta":
        delta = data["delta"]
        s.text += delta.get("text", "")
        s.arguments += delta.get("toolUse", {}).get("input", "")
        s.pieces += 1
    elif name == "messageStop":
        s.finish = data["stopReason"]
    elif name == "metadata":
        s.prompt_tokens = data["usage"]["inputTokens"]
        s.completion_tokens = data["usage"]["outputTokens"]


def summary_of(kind: str, raw: bytes, stream: bool) -> Summary:
    """What an answer of ``kind`` says, plain or streamed."""
    s = Summary()
    if not stream:
        body = json.loads(raw)
        if kind in ("openai", "azure_openai"):
            _openai_body(body, s)
        elif kind == "anthropic":
            _anthropic_body(body, s)
        elif kind == "gemini":
            _gemini_parts(body, s)
        else:
            _bedrock_body(body, s)
        return s
    for name, data in events_of(kind, raw):
        s.events.append(name)
        if name in ("[DONE]", "malformed"):
            continue
        if kind in ("openai", "azure_openai"):
            _openai_event(data, s)
        elif kind == "anthropic":
            _anthropic_event(name, data, s)
        elif kind == "gemini":
            before = s.text
            _gemini_parts(data, s)
            s.pieces += s.text != before or any(
                "functionCall" in p
                for c in data.get("candidates", [])
                for p in c["content"]["parts"]
            )
        else:
            _bedrock_event(name, data, s)
    return s
