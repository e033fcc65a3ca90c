"""The two inbound dialects as a client sees them: how to ask (path, key header,
a minimal valid body), and what an error must look like in each (a whole body,
or a stream's final event). Plus routes of one deployment each on the providers
of a `Kinds`, for tests whose upstream failures must not touch another test's
deployment (a failure makes this replica wait out a backoff or Retry-After)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.kinds import Kinds
from tests.support.stack import Stack

__all__ = [
    "ANTHROPIC_TYPES",
    "DIALECTS",
    "Event",
    "anthropic_error",
    "anthropic_type",
    "ask",
    "auth",
    "body_for",
    "dialect_error",
    "fresh_routes",
    "openai_error",
    "path_of",
    "sse_events",
    "streamed_text",
]

DIALECTS = ("openai", "anthropic")
ANTHROPIC_VERSION = "2023-06-01"
# Anthropic's error type by HTTP status (other 4xx: invalid_request_error, other 5xx: api_error)
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    found = ANTHROPIC_TYPES.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if status < 500 else "api_error"


def path_of(dialect: str) -> str:
    return "/v1/messages" if dialect == "anthropic" else "/v1/chat/completions"


def auth(dialect: str, key: str, bearer: bool = False) -> dict[str, str]:
    """The key as the dialect's clients send it (Anthropic's `x-api-key` unless `bearer`)."""
    if dialect == "anthropic":
        given = {"authorization": f"Bearer {key}"} if bearer else {"x-api-key": key}
        return {**given, "anthropic-version": ANTHROPIC_VERSION}
    return {"authorization": f"Bearer {key}"}


def body_for(dialect: str, model: str, *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    """A minimal valid request of the dialect (three words of prompt)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "hello there friend"}],
    }
    if dialect == "anthropic":
        body["max_tokens"] = 200
    if stream:
        body["stream"] = True
    return {**body, **extra}


async def ask(
    client: httpx.AsyncClient,
    url: str,
    dialect: str,
    key: str,
    body: Any,
    *,
    path: str | None = None,
) -> httpx.Response:
    """One request, read whole; `body` as JSON unless it is bytes (sent as they are)."""
    headers = {**auth(dialect, key), "content-type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(url + (path or path_of(dialect)), content=content, headers=headers)


# --- errors as each dialect writes them ------------------------------------------------------


def openai_error(data: Any) -> dict[str, Any]:
    """OpenAI's `{"error": {"message", "type", "param", "code"}}`, exactly those keys, typed."""
    assert isinstance(data, dict), data
    assert set(data) == {"error"}, data
    error = data["error"]
    assert isinstance(error, dict), error
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["type"], str), error
    assert error["type"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error
    return error


def anthropic_error(data: Any) -> dict[str, Any]:
    """Anthropic's `{"type": "error", "error": {"type", "message"}}` (an upstream's relayed
    body may carry its `request_id` beside them)."""
    assert isinstance(data, dict), data
    assert data.get("type") == "error", data
    assert set(data) <= {"type", "error", "request_id"}, data
    error = data["error"]
    assert isinstance(error, dict), error
    assert set(error) == {"type", "message"}, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["type"], str), error
    return error


def dialect_error(dialect: str, resp: httpx.Response) -> dict[str, Any]:
    """The error of a refused request, checked for the dialect's shape and for its
    Anthropic type agreeing with the status; its inner object."""
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    data = resp.json()
    if dialect == "openai":
        return openai_error(data)
    error = anthropic_error(data)
    assert error["type"] == anthropic_type(resp.status_code), (resp.status_code, error)
    return error


@dataclass(frozen=True)
class Event:
    """One server-sent event: its `event:` name (None if it had none) and its data."""

    name: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def sse_events(raw: bytes) -> list[Event]:
    """The complete events of a stream body, with their names."""
    *blocks, _partial = raw.decode().replace("\r\n", "\n").split("\n\n")
    events = []
    for block in blocks:
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append(Event(name, "\n".join(data)))
    return events


def streamed_text(dialect: str, events: list[Event]) -> str:
    """The answer's text so far, as the client's events carry it."""
    text = []
    for event in events:
        if event.data == "[DONE]":
            continue
        data = event.json()
        if dialect == "anthropic":
            delta = data.get("delta") or {}
            if data.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
                text.append(delta["text"])
        else:
            for choice in data.get("choices") or ():
                text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text)


# --- routes of their own ---------------------------------------------------------------------


async def fresh_routes(stack: Stack, kinds: Kinds, wanted: dict[str, str]) -> dict[str, str]:
    """A route of one attempt on a deployment of its own for each label of `wanted`
    (label -> the kind whose provider serves it), once every data plane serves them
    to `kinds.key`: their model names by label."""
    made: dict[str, str] = {}
    prefix = "own-" + secrets.token_hex(3)
    async with stack.admin() as admin:
        for n, (label, kind) in enumerate(wanted.items()):
            model = f"{prefix}-{n}-{kind}"
            body = {
                "model": model,
                "deployments": [{"provider_id": kinds.providers[kind], "upstream_model": "fake-1"}],
                "retry": {"max_attempts": 1},
            }
            resp = await admin.post("/routes", json=body)
            assert resp.status_code == 201, resp.text
            made[label] = model
    if made:  # the log is applied in order: the last route served means all are
        await stack.until_model(kinds.key, model, within=15)
    return made
