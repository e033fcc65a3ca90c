"""Errors as the client's dialect writes them, whatever the upstream's kind.

An upstream's refusal (each kind's own error body, forced by the fake's `status`
knob) reaches an OpenAI client as `{"error": {...}}` and an Anthropic client as
`{"type": "error", ...}`, with the status the one policy gives it and, where the
upstream's words are not the client's business (401, 429, 5xx), the gateway's own
words only. A stream that breaks after its first pieces ends with the dialect's
error event, and its usage record says what broke it. The gateway's own refusals
(keys, rate limits, budgets) come in the Anthropic dialect's shape too.

Every case runs on a route of its own: a failure makes the replica wait out the
deployment's backoff or Retry-After, which must not slow the next case down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.dialects import (
    DIALECTS,
    anthropic_error,
    ask,
    auth,
    body_for,
    dialect_error,
    fresh_routes,
    openai_error,
    sse_events,
    streamed_text,
)
from tests.support.kinds import KINDS, Kinds, start_kinds_fake
from tests.support.routing import new_key, usage_of
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)


def overloaded(kind: str) -> int:
    """How the kind's upstream says it is overloaded: Anthropic's own 529, else 503."""
    return 529 if kind == "anthropic" else 503


def statuses(kind: str) -> list[int]:
    return [400, 401, 404, 429, 500, overloaded(kind)]


RETRY_AFTER = 7
CASES = [
    (dialect, kind, status, stream)
    for dialect in DIALECTS
    for kind in KINDS
    for status in statuses(kind)
    for stream in (False, True)
]
MID_STREAM = [(dialect, kind) for dialect in DIALECTS for kind in KINDS]


def case_id(dialect: str, kind: str, status: int, stream: bool) -> str:
    return f"{dialect}-{kind}-{status}-{'stream' if stream else 'whole'}"


# The client's status for each upstream status (an overloaded upstream: 503 for an
# OpenAI client, Anthropic's own 529 for an Anthropic client).
CLIENT_STATUS = {400: 400, 401: 502, 404: 404, 429: 429, 500: 502, 503: 503, 529: 503}
# Where the upstream's words are not the client's business: the gateway's type, code
# and words (the request id follows them).
GENERIC = {
    401: ("upstream_auth_failed", "The upstream refused the gateway's credentials (HTTP 401)."),
    429: ("upstream_rate_limited", "The upstream refused the request for now (HTTP 429)."),
    500: ("upstream_error", "The upstream failed (HTTP 500)."),
    503: ("upstream_overloaded", "The upstream is overloaded (HTTP 503)."),
    529: ("upstream_overloaded", "The upstream is overloaded (HTTP 529)."),
}
# What the fake's error bodies say, kind by kind: never in a generic answer.
UPSTREAM_WORDS = (
    "org-fakeprovider",
    "The server had an error",
    "invalid x-api-key",
    "Internal server error",
    "Overloaded",
    "rate limit for your organization",
    "Incorrect API key",
    "Access denied",
    "UNAUTHENTICATED",
    "RESOURCE_EXHAUSTED",
    "INTERNAL",
    "UNAVAILABLE",
    "Resource has been exhausted",
    "overloaded. Please try again",
    "ThrottlingException",
    "InternalServerException",
    "ServiceUnavailableException",
    "Too many requests",
    "Bedrock is unable",
    "req_",
)
# A stream broken by the kind's own error event after three pieces: what the gateway
# makes of that event (OpenAI's and Azure's are generic; Anthropic's and Gemini's say
# overloaded; Bedrock's is throttling), as an OpenAI code and an Anthropic type.
MID_STREAM_CODE = {
    "openai": "upstream_stream_error",
    "azure_openai": "upstream_stream_error",
    "anthropic": "upstream_overloaded",
    "gemini": "upstream_overloaded",
    "bedrock": "upstream_rate_limited",
}
MID_STREAM_TYPE = {
    "openai": "api_error",
    "azure_openai": "api_error",
    "anthropic": "overloaded_error",
    "gemini": "overloaded_error",
    "bedrock": "rate_limit_error",
}
FIRST_PIECES = "tok0 tok1 tok2"


@pytest.fixture(scope="module")
async def kinds(stack: Stack) -> Kinds:
    served = Kinds(stack, start_kinds_fake(stack), await new_key(stack))
    await served.create()
    return served


@pytest.fixture(scope="module")
async def routes(stack: Stack, kinds: Kinds) -> dict[str, str]:
    """A route of its own for every case."""
    wanted = {case_id(*case): case[1] for case in CASES}
    wanted |= {f"mid-{dialect}-{kind}": kind for dialect, kind in MID_STREAM}
    wanted |= {f"limits-{dialect}": "anthropic" for dialect in DIALECTS}
    wanted["budget"] = "openai"
    return await fresh_routes(stack, kinds, wanted)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


@pytest.fixture
async def faults(kinds: Kinds) -> AsyncIterator[Kinds]:
    """The fake, its knobs cleared after the test."""
    yield kinds
    await kinds.faults()


# --- an upstream's refusal, before anything was streamed --------------------------------------


@pytest.mark.parametrize(
    ("dialect", "kind", "status", "stream"), CASES, ids=[case_id(*c) for c in CASES]
)
async def test_an_upstream_refusal_in_the_clients_dialect(
    http: httpx.AsyncClient,
    faults: Kinds,
    routes: dict[str, str],
    dialect: str,
    kind: str,
    status: int,
    stream: bool,
) -> None:
    knobs: dict[str, Any] = {"status": status}
    if status == 429:
        knobs["retry_after"] = RETRY_AFTER
    await faults.faults(**knobs)
    model = routes[case_id(dialect, kind, status, stream)]
    resp = await ask(http, faults.url, dialect, faults.key, body_for(dialect, model, stream=stream))

    expected = CLIENT_STATUS[status]
    if dialect == "anthropic" and status in (503, 529):
        expected = 529
    assert resp.status_code == expected, resp.text
    error = dialect_error(dialect, resp)  # the shape, and Anthropic's type for the status
    request_id = resp.headers["x-request-id"]
    assert resp.headers["x-sluice-attempts"] == "1"
    if status == 429:
        assert int(resp.headers["retry-after"]) >= RETRY_AFTER
    if status in GENERIC:
        code, words = GENERIC[status]
        assert error["message"] == f"{words} Request id: {request_id}.", error
        if dialect == "openai":
            assert (error["type"], error["code"], error["param"]) == ("upstream_error", code, None)
        leaked = [words for words in UPSTREAM_WORDS if words in resp.text]
        assert not leaked, resp.text
    else:  # the client's request was refused: the upstream's words are for the client
        assert "Request id" not in error["message"]


# --- a stream that breaks after its first pieces ----------------------------------------------


@pytest.mark.parametrize(("dialect", "kind"), MID_STREAM, ids=[f"{d}-{k}" for d, k in MID_STREAM])
async def test_a_stream_broken_mid_answer_ends_with_the_dialects_error_event(
    http: httpx.AsyncClient, faults: Kinds, routes: dict[str, str], dialect: str, kind: str
) -> None:
    await faults.faults(error_after=3)
    model = routes[f"mid-{dialect}-{kind}"]
    resp = await ask(http, faults.url, dialect, faults.key, body_for(dialect, model, stream=True))

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.content)
    assert resp.content.endswith(b"\n\n")  # nothing after the last complete event
    *before, last = events
    assert streamed_text(dialect, before) == FIRST_PIECES
    if dialect == "openai":
        assert "[DONE]" not in [e.data for e in events]
        errors = [e for e in events if "error" in e.json()]
        assert errors == [last]
        error = openai_error(last.json())
        assert error["code"] == MID_STREAM_CODE[kind]
        assert error["type"] == "upstream_error"
        assert f"Request id: {resp.headers['x-request-id']}" in error["message"]
    else:
        names = [e.name for e in events]
        assert names[0] == "message_start"
        assert "message_stop" not in names, names
        assert "message_delta" not in names, names
        assert names.count("error") == 1, names
        assert last.name == "error", names
        assert [e for e in events if e.json().get("type") == "error"] == [last]
        error = anthropic_error(last.json())
        assert error["type"] == MID_STREAM_TYPE[kind]
        if kind == "anthropic":  # the upstream's own event, relayed as it came
            assert error == {"type": "overloaded_error", "message": "Overloaded"}
        else:  # the gateway's words
            assert f"Request id: {resp.headers['x-request-id']}" in error["message"]
    row = await usage_of(faults.stack, resp)
    assert row["stream"] is True
    assert row["error_code"] == MID_STREAM_CODE[kind]
    assert row["status"] != 200
    assert row["completion_tokens"] == 3


# --- the gateway's own refusals ---------------------------------------------------------------


async def _served_only(stack: Stack, key: str, model: str, within: float = 10) -> None:
    """Wait until every data plane lists `model` alone for `key` (its policy has arrived)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5) as client:
        for url in stack.data_plane_urls:
            while True:
                resp = await client.get(f"{url}/v1/models", headers=auth("openai", key))
                if [m["id"] for m in resp.json()["data"]] == [model]:
                    break
                assert time.monotonic() < deadline, f"the policy did not reach {url}"
                await asyncio.sleep(0.02)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_keys_rate_limit_in_the_clients_dialect(
    http: httpx.AsyncClient, kinds: Kinds, routes: dict[str, str], dialect: str
) -> None:
    stack, model = kinds.stack, routes[f"limits-{dialect}"]
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    async with stack.admin() as admin:
        put = await admin.put(f"/keys/{key['id']}/policy", json={"rpm": 1, "models": [model]})
        assert put.status_code == 200, put.text
    await _served_only(stack, key["key"], model)

    first = await ask(http, kinds.url, dialect, key["key"], body_for(dialect, model))
    second = await ask(http, kinds.url, dialect, key["key"], body_for(dialect, model))
    assert first.status_code == 200, first.text
    assert second.status_code == 429, second.text
    assert 1 <= int(second.headers["retry-after"]) <= 60
    error = dialect_error(dialect, second)
    if dialect == "openai":
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    else:
        assert error["type"] == "rate_limit_error"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_exhausted_budget_in_the_clients_dialect(
    http: httpx.AsyncClient, kinds: Kinds, routes: dict[str, str], dialect: str
) -> None:
    stack, model = kinds.stack, routes["budget"]
    tenant = await stack.create_tenant()
    async with stack.admin() as admin:
        price = {"input_per_million": 1000, "output_per_million": 1000}
        assert (await admin.put(f"/prices/{model}", json=price)).status_code == 200
        policy = {"budget_usd": 0.000001, "budget_period": "total"}
        put = await admin.put(f"/tenants/{tenant['id']}/policy", json=policy)
        assert put.status_code == 200, put.text
    key = (await stack.create_key(tenant["id"]))["key"]
    await stack.until_model(key, model, within=10)  # after the price and the policy

    spent = await ask(http, kinds.url, dialect, key, body_for(dialect, model))
    assert spent.status_code == 200, spent.text  # a cent of a cent: the budget is gone
    deadline = time.monotonic() + 5
    while True:  # the first request's cost counts once it has ended here
        refused = await ask(http, kinds.url, dialect, key, body_for(dialect, model))
        if refused.status_code != 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert refused.status_code == 429, refused.text
    error = dialect_error(dialect, refused)
    assert "budget" in error["message"]
    if dialect == "openai":
        assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")
    else:
        assert error["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("dialect", "path", "given"),
    [
        ("anthropic", "/v1/messages", {"x-api-key": "sk-not-a-key"}),
        ("anthropic", "/v1/messages", {"authorization": "Bearer sk-not-a-key"}),
        ("anthropic", "/v1/messages", {}),
        ("anthropic", "/v1/messages/count_tokens", {"x-api-key": "sk-not-a-key"}),
        ("anthropic", "/v1/messages/count_tokens", {}),
        ("openai", "/v1/chat/completions", {"authorization": "Bearer sk-not-a-key"}),
        ("openai", "/v1/chat/completions", {"x-api-key": "sk-not-a-key"}),
        ("openai", "/v1/chat/completions", {}),
    ],
    ids=[
        "anthropic-x-api-key",
        "anthropic-bearer",
        "anthropic-none",
        "count-tokens-x-api-key",
        "count-tokens-none",
        "openai-bearer",
        "openai-x-api-key-is-no-key",
        "openai-none",
    ],
)
async def test_a_wrong_or_missing_key_in_the_clients_dialect(
    http: httpx.AsyncClient, kinds: Kinds, dialect: str, path: str, given: dict[str, str]
) -> None:
    body = body_for(dialect, kinds.model("anthropic"))
    headers = {**given, "anthropic-version": "2023-06-01"}
    resp = await http.post(kinds.url + path, json=body, headers=headers)
    assert resp.status_code == 401, resp.text
    error = dialect_error(dialect, resp)  # Anthropic's type: authentication_error
    if dialect == "openai":
        assert error["type"] == "invalid_request_error"
        missing = "authorization" not in given  # OpenAI's clients have no x-api-key
        assert error["code"] == ("missing_api_key" if missing else "invalid_api_key")
    assert "sk-not-a-key" not in resp.text
