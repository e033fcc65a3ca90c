"""The standard for upstream faults, end to end: real data planes, control plane,
PostgreSQL and fake upstreams whose faults are set per process.

For each fault a route with a second deployment gives the client the whole answer,
and a route without one ends with a bounded, clean error: OpenAI's error JSON (or a
final SSE error event once the stream has begun) with a generic message naming the
request, none of the upstream's words, never a hang (every client has a timeout) and
never more attempts at the failing upstream than the route's `max_attempts`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import pytest
from aiohttp import web

from tests.support.fake import expected_content
from tests.support.routing import (
    assert_no_leak,
    assert_upstream_error,
    assert_whole_stream,
    chat,
    error_event,
    on_fake,
    open_route,
    seed_failing_once,
    set_faults,
    settled_stats,
    stream_payloads,
    streamed_pieces,
    usage_of,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)


TOKENS = 20  # the fakes' answer: "tok0 tok1 … tok19"
RETRY = {"max_attempts": 3, "backoff": 0.05, "max_backoff": 0.2}
SHORT = {"first_token": 0.5, "response": 0.5, "idle": 0.5}  # seconds


class Alone(NamedTuple):
    """What the client gets without a fallback: the status (of the usage record, for a
    stream that broke after its 200), the error code and the gateway's generic words."""

    status: int
    code: str
    said: str


@dataclass(frozen=True)
class Fault:
    name: str
    knobs: dict[str, Any]  # of the failing fake
    stream: bool
    # before: the attempt fails before the commit point; during: the stream breaks
    # after it; harmless: the gateway mends it alone
    when: str = "before"
    alone: Alone | None = None  # None: the 429s, tested on their own below
    timeouts: dict[str, float] = field(default_factory=dict)  # of the failing deployment


CUT_AT = 5  # content events before a stream breaks
FAILED = Alone(502, "upstream_error", "The upstream failed (HTTP 500).")
OVERLOADED = Alone(503, "upstream_overloaded", "The upstream is overloaded (HTTP 503).")
RESET = Alone(502, "upstream_reset", "The upstream closed the connection before answering.")
NO_ANSWER = Alone(
    504, "upstream_timeout", "The upstream did not answer in time (no answer within 0.5 s)."
)
NO_FIRST = Alone(
    504, "upstream_timeout", "The upstream did not answer in time (no first event within 0.5 s)."
)
FAULTS = [
    Fault("429 with Retry-After", {"status": 429, "retry_after": 1}, False),
    Fault("429 without Retry-After", {"status": 429}, False),
    Fault("500", {"status": 500}, False, alone=FAILED),
    Fault("500 stream", {"status": 500}, True, alone=FAILED),
    Fault("503", {"status": 503}, False, alone=OVERLOADED),
    Fault("503 stream", {"status": 503}, True, alone=OVERLOADED),
    Fault("reset before headers", {"reset": True}, False, alone=RESET),
    Fault("reset before headers stream", {"reset": True}, True, alone=RESET),
    # the connection closed without a word (no RST): still a reset, not "could not be reached"
    Fault("disconnect before answering", {"fail_after": 0}, False, alone=RESET),
    Fault(
        "200 that is not JSON",
        {"malformed_body": True},
        False,
        alone=Alone(502, "upstream_malformed", "The upstream's answer was malformed."),
    ),
    Fault("never answers", {"hang": True}, False, alone=NO_ANSWER, timeouts=SHORT),
    Fault("never answers stream", {"hang": True}, True, alone=NO_FIRST, timeouts=SHORT),
    Fault("slow first token", {"first_token_ms": 5000}, True, alone=NO_FIRST, timeouts=SHORT),
    Fault(
        "cut before the finish reason",
        {"fail_after": CUT_AT},
        True,
        "during",
        Alone(502, "upstream_reset", "The upstream closed the connection mid-answer."),
    ),
    Fault(
        "stall past idle",
        {"stall_after": CUT_AT, "stall_ms": 10_000},
        True,
        "during",
        Alone(504, "upstream_idle", "The upstream stopped sending (no event for 0.5 s)."),
        timeouts=SHORT,
    ),
    Fault("malformed event mid-stream", {"malformed_after": CUT_AT}, True, "harmless"),
    Fault("finish reason but no [DONE]", {"no_done": True}, True, "harmless"),
]


def _whole(resp: httpx.Response, stream: bool, tokens: int = TOKENS) -> None:
    if stream:
        assert_whole_stream(resp, tokens)
        return
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    assert choice["message"]["content"] == expected_content(tokens)
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_with_a_fallback_the_client_gets_the_whole_answer(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient, fault: Fault
) -> None:
    await set_faults(failing, **fault.knobs)
    primary = await on_fake(stack, failing, priority=0, timeouts=fault.timeouts)
    # a stream that broke after its commit point can only be continued elsewhere
    secondary = await on_fake(stack, healthy, priority=1, continuation=True)
    model, route = await open_route(
        stack, fresh_key, [primary, secondary], retry=RETRY, continuation=True
    )
    first, second = (d["id"] for d in route["deployments"])

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model, stream=fault.stream)

    _whole(resp, fault.stream)
    # the headers leave with the first byte: a stream that broke later names its first upstream
    answered_first = fault.when in ("during", "harmless")
    assert resp.headers["x-sluice-deployment"] == (first if answered_first else second)
    assert resp.headers["x-sluice-attempts"] == ("1" if answered_first else "2")
    row = await usage_of(stack, resp)
    assert (row["status"], row["error_code"]) == (200, None)
    assert row["completion_tokens"] == TOKENS
    assert str(row["deployment_id"]) == (first if fault.when == "harmless" else second)
    assert row["attempts"] == (1 if fault.when == "harmless" else 2)
    assert (await settled_stats(failing))["chat_requests"] == 1  # no retry at the failing one
    assert (await settled_stats(healthy))["chat_requests"] == (0 if fault.when == "harmless" else 1)


ALONE = [f for f in FAULTS if f.alone is not None]


@pytest.mark.parametrize("fault", ALONE, ids=[f.name for f in ALONE])
async def test_without_a_fallback_the_client_gets_a_clean_bounded_error(
    stack: Stack, failing: str, fresh_key: str, http: httpx.AsyncClient, fault: Fault
) -> None:
    assert fault.alone is not None
    status, code, said = fault.alone
    await set_faults(failing, **fault.knobs)
    only = await on_fake(stack, failing, timeouts=fault.timeouts)
    model, route = await open_route(stack, fresh_key, [only], retry=RETRY, continuation=True)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model, stream=fault.stream)

    request_id = resp.headers["x-request-id"]
    assert resp.headers["x-sluice-deployment"] == route["deployments"][0]["id"]
    assert_no_leak(resp)
    row = await usage_of(stack, resp)
    tried = (await settled_stats(failing))["chat_requests"]
    if fault.when == "during":
        # what was streamed stays the client's; the end says the answer is not whole
        assert_upstream_error(error_event(resp), request_id, code, said)
        pieces = streamed_pieces(stream_payloads(resp))
        assert "".join(pieces) == expected_content(CUT_AT)
        assert row["completion_tokens"] == len(pieces)
        assert tried == 1
    else:
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"] == "application/json"
        assert_upstream_error(resp.json()["error"], request_id, code, said)
        assert row["completion_tokens"] == 0
        assert 1 <= tried <= RETRY["max_attempts"]
        assert int(resp.headers["x-sluice-attempts"]) == tried
    assert (row["status"], row["error_code"], row["disconnected"]) == (status, code, False)


async def test_retry_after_of_a_429_is_waited_out_before_retrying_the_only_deployment(
    stack: Stack, failing: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    # the first request at the fake gets a 429 with Retry-After: 1, the next one an answer
    await set_faults(
        failing, fail_rate=0.5, seed=seed_failing_once(0.5), fail_status=429, retry_after=1
    )
    model, _ = await open_route(stack, fresh_key, [await on_fake(stack, failing)], retry=RETRY)

    started = time.monotonic()
    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)
    elapsed = time.monotonic() - started

    _whole(resp, False)
    assert resp.headers["x-sluice-attempts"] == "2"
    assert elapsed >= 1.0  # the retry waited for the Retry-After
    assert (await settled_stats(failing))["by_status"] == {"429": 1, "200": 1}


async def test_a_429_whose_retry_after_is_past_max_retry_after_reaches_the_client(
    stack: Stack, failing: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, status=429, retry_after=30)
    retry = {**RETRY, "max_retry_after": 1}
    model, _ = await open_route(stack, fresh_key, [await on_fake(stack, failing)], retry=retry)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)

    assert resp.status_code == 429, resp.text
    assert resp.headers["retry-after"] == "30"  # the upstream's, passed on
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_rate_limited")
    # generic: the upstream's own words (its model, its organisation) stay in the log
    assert error["message"].endswith(f"Request id: {resp.headers['x-request-id']}.")
    assert "org-" not in error["message"]
    assert resp.headers["x-sluice-attempts"] == "1"
    assert (await settled_stats(failing))["chat_requests"] == 1  # not waited for, not retried
    row = await usage_of(stack, resp)
    assert (row["status"], row["error_code"]) == (429, "upstream_rate_limited")


async def test_a_persistent_429_without_retry_after_ends_after_max_attempts(
    stack: Stack, failing: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, status=429)
    model, _ = await open_route(stack, fresh_key, [await on_fake(stack, failing)], retry=RETRY)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)

    assert resp.status_code == 429, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_rate_limited")
    tried = (await settled_stats(failing))["chat_requests"]
    assert 1 <= tried <= RETRY["max_attempts"]
    assert resp.headers["x-sluice-attempts"] == str(tried)


async def test_a_500_once_is_retried_on_the_same_deployment(
    stack: Stack, failing: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    # the first request at the fake gets a 500, the next one an answer
    await set_faults(failing, fail_rate=0.5, seed=seed_failing_once(0.5), fail_status=500)
    model, route = await open_route(stack, fresh_key, [await on_fake(stack, failing)], retry=RETRY)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)

    _whole(resp, False)
    only = route["deployments"][0]["id"]
    assert resp.headers["x-sluice-attempts"] == "2"
    assert resp.headers["x-sluice-deployment"] == only
    assert (await settled_stats(failing))["by_status"] == {"500": 1, "200": 1}
    row = await usage_of(stack, resp)
    assert (row["status"], row["attempts"], str(row["deployment_id"])) == (200, 2, only)


async def test_a_prompt_too_long_moves_to_the_context_fallback_once(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    # "hello there" is 2 prompt tokens; with max_tokens 10 that is 12 > 5, < 1000
    await set_faults(failing, context_window=5)
    await set_faults(healthy, context_window=1000)
    large, large_route = await open_route(stack, fresh_key, [await on_fake(stack, healthy)])
    small_ones = [await on_fake(stack, failing), await on_fake(stack, failing)]
    small, _ = await open_route(stack, fresh_key, small_ones, retry=RETRY, context_fallback=large)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, small, max_tokens=10)

    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["choices"][0]["message"]["content"] == expected_content(10)
    answered = large_route["deployments"][0]["id"]
    assert resp.headers["x-sluice-deployment"] == answered
    assert (await settled_stats(failing))["by_status"] == {"400": 1}  # asked once, not retried
    assert (await settled_stats(healthy))["by_status"] == {"200": 1}
    row = await usage_of(stack, resp)
    assert (row["status"], row["model"], str(row["deployment_id"])) == (200, large, answered)


async def test_context_fallbacks_that_lead_back_end_with_the_upstreams_400(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    """A → B → A: each route is tried once, then the client gets the 400 (no loop)."""
    await set_faults(failing, context_window=5)
    await set_faults(healthy, context_window=5)
    b_model, b_route = await open_route(stack, fresh_key, [await on_fake(stack, healthy)])
    a_deployments = [await on_fake(stack, failing)]
    a_model, _ = await open_route(stack, fresh_key, a_deployments, context_fallback=b_model)
    async with stack.admin() as admin:
        changed = await admin.patch(f"/routes/{b_route['id']}", json={"context_fallback": a_model})
        assert changed.status_code == 200, changed.text
    await _until_every_plane_has(stack, await stack.last_position())

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, a_model, max_tokens=10)

    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "context_length_exceeded"
    assert resp.headers["x-sluice-attempts"] == "2"
    assert (await settled_stats(failing))["chat_requests"] == 1
    assert (await settled_stats(healthy))["chat_requests"] == 1


async def _until_every_plane_has(stack: Stack, position: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        for url in stack.data_plane_urls:
            while (await client.get(f"{url}/debug/snapshot")).json()["position"] < position:
                assert time.monotonic() < deadline, f"{url} is behind {position}"
                await asyncio.sleep(0.02)


async def test_a_prompt_too_long_without_a_context_fallback_gets_the_upstreams_400(
    stack: Stack, failing: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, context_window=5)
    deployments = [await on_fake(stack, failing), await on_fake(stack, failing)]
    model, _ = await open_route(stack, fresh_key, deployments, retry=RETRY)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model, max_tokens=10)

    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )
    assert error["message"].startswith("This model's maximum context length is 5 tokens.")
    assert (await settled_stats(failing))["chat_requests"] == 1


async def test_a_filtered_prompt_is_refused_once_with_the_category(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, content_filter="prompt")
    primary = await on_fake(stack, failing, priority=0)
    model, _ = await open_route(
        stack, fresh_key, [primary, await on_fake(stack, healthy, priority=1)], retry=RETRY
    )

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)

    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "content_filter"
    assert "(filtered: hate)" in error["message"]  # the category the filter named
    assert (await settled_stats(failing))["chat_requests"] == 1
    assert (await settled_stats(healthy))["chat_requests"] == 0  # the same prompt, the same verdict
    row = await usage_of(stack, resp)
    assert (row["status"], row["error_code"], row["attempts"]) == (400, "content_filter", 1)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_filtered_completion_is_a_normal_answer(
    stack: Stack, failing: str, fresh_key: str, http: httpx.AsyncClient, stream: bool
) -> None:
    await set_faults(failing, content_filter="completion")
    model, _ = await open_route(stack, fresh_key, [await on_fake(stack, failing)], retry=RETRY)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model, stream=stream)

    assert resp.status_code == 200, resp.text
    if stream:
        payloads = assert_whole_stream(resp, 3)
        reasons = [c["finish_reason"] for p in payloads[:-1] for c in json.loads(p)["choices"]]
        assert [r for r in reasons if r] == ["content_filter"]
    else:
        choice = resp.json()["choices"][0]
        assert (choice["message"]["content"], choice["finish_reason"]) == (
            expected_content(3),
            "content_filter",
        )
    assert (await settled_stats(failing))["chat_requests"] == 1
    row = await usage_of(stack, resp)
    assert (row["status"], row["completion_tokens"]) == (200, 3)


async def test_a_failover_bills_the_deployment_that_answered_and_only_it(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, status=503)
    model = "m-priced-" + secrets.token_hex(5)
    async with stack.admin() as admin:  # before the route: a data plane serving it has the price
        price = {"input_per_million": 3.0, "output_per_million": 15.0}
        assert (await admin.put(f"/prices/{model}", json=price)).status_code == 200
    primary = await on_fake(stack, failing, priority=0)
    secondary = await on_fake(stack, healthy, priority=1)
    _, route = await open_route(stack, fresh_key, [primary, secondary], retry=RETRY, model=model)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)

    _whole(resp, False)
    usage = resp.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (2, TOKENS)
    row = await usage_of(stack, resp)
    assert str(row["deployment_id"]) == route["deployments"][1]["id"]
    assert str(row["provider_id"]) == secondary["provider_id"]
    assert row["upstream_model"] == secondary["upstream_model"]
    assert (row["attempts"], row["status"], row["error_code"]) == (2, 200, None)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2, TOKENS)
    # the answer's tokens at the model's price; the failed attempt costs nothing
    assert row["cost_usd"] == pytest.approx((2 * 3.0 + TOKENS * 15.0) / 1_000_000)


# What a proxy in front of an upstream answers when the upstream behind it is down.
PROXY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
    b"<p>upstream internal-gpu-7.corp.example (10.2.3.4:8000) refused the connection</p>"
    b"<hr><center>nginx</center></body></html>"
)


@pytest.fixture
async def proxy_in_front() -> AsyncIterator[tuple[str, list[str]]]:
    """An upstream whose every chat request gets a proxy's 502 HTML page naming the
    hosts behind it (the fake's own 5xx bodies are JSON): its URL and the paths asked."""
    asked: list[str] = []

    async def page(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(status=502, body=PROXY_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


async def test_an_upstream_5xx_page_naming_internal_hosts_is_never_shown(
    stack: Stack,
    fresh_key: str,
    http: httpx.AsyncClient,
    proxy_in_front: tuple[str, list[str]],
) -> None:
    url, asked = proxy_in_front
    model, _ = await open_route(stack, fresh_key, [await on_fake(stack, url)], retry=RETRY)

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)

    assert resp.status_code == 502, resp.text
    said = "The upstream failed (HTTP 502)."
    assert_upstream_error(
        resp.json()["error"], resp.headers["x-request-id"], "upstream_error", said
    )
    assert_no_leak(resp)
    assert b"10.2.3.4" not in resp.content
    assert 1 <= len(asked) <= RETRY["max_attempts"]
    row = await usage_of(stack, resp)
    assert (row["status"], row["error_code"], row["completion_tokens"]) == (
        502,
        "upstream_error",
        0,
    )


async def test_a_huge_model_name_is_echoed_only_as_a_short_prefix(
    stack: Stack, fresh_key: str, http: httpx.AsyncClient
) -> None:
    model = "m" * 1_000_000

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model)

    assert resp.status_code == 404, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "model_not_found",
        "model",
    )
    assert len(error["message"]) < 200
    assert error["message"].startswith("The model `mmm")
    assert len(resp.content) < 400
