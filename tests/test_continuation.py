"""Mid-stream continuation, end to end: a stream that breaks after its commit point is
continued by another deployment (sent the answer so far as a final assistant message),
and the client gets one stream that is byte for byte the uncut answer. Without
continuation, or when no deployment continues, the client keeps what was streamed and
gets the original failure as the final event."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.fake import expected_content
from tests.support.routing import (
    assert_no_leak,
    assert_upstream_error,
    assert_whole_stream,
    chat,
    error_event,
    eventually,
    on_fake,
    open_route,
    set_faults,
    settled_stats,
    stream_payloads,
    streamed_pieces,
    usage_of,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)


TOKENS, CUT_AT = 60, 40  # the answer's pieces; the primary's stream breaks after CUT_AT
CUT = "The upstream closed the connection mid-answer."


async def _continued_route(
    stack: Stack, key: str, primary_url: str, secondary_url: str, **primary: Any
) -> tuple[str, list[str], str]:
    """A route whose secondary continues the primary's answers, and a route to the secondary
    alone (for the uncut answer): the first's model, its deployment ids, the second's model.
    Both deployments ask for the same upstream model, so their streams name the same one."""
    upstream_model = "up-" + secrets.token_hex(4)
    deployments = [
        await on_fake(stack, primary_url, upstream_model=upstream_model, priority=0, **primary),
        await on_fake(
            stack, secondary_url, upstream_model=upstream_model, priority=1, continuation=True
        ),
    ]
    model, route = await open_route(stack, key, deployments, continuation=True)
    alone = [await on_fake(stack, secondary_url, upstream_model=upstream_model)]
    uncut, _ = await open_route(stack, key, alone)
    return model, [d["id"] for d in route["deployments"]], uncut


def _comparable(body: bytes) -> bytes:
    """A stream's raw SSE body with its id and creation time blanked: those two differ
    between any two requests, and nothing else may."""
    body = re.sub(rb'"id":"[^"]*"', b'"id":""', body)
    return re.sub(rb'"created":\d+', b'"created":0', body)


def _usage_block(resp: httpx.Response) -> dict[str, Any]:
    blocks = [json.loads(p).get("usage") for p in stream_payloads(resp)[:-1]]
    found = [b for b in blocks if b]
    assert len(found) == 1, found
    usage: dict[str, Any] = found[0]
    return usage


async def test_without_continuation_the_client_keeps_the_pieces_and_gets_the_error(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, tokens=TOKENS, fail_after=CUT_AT)
    await set_faults(healthy, tokens=TOKENS)
    deployments = [
        await on_fake(stack, failing, priority=0),
        await on_fake(stack, healthy, priority=1, continuation=True),
    ]
    model, _ = await open_route(stack, fresh_key, deployments)  # continuation off

    resp = await chat(http, stack.data_plane_urls[0], fresh_key, model, stream=True)

    assert_upstream_error(error_event(resp), resp.headers["x-request-id"], "upstream_reset", CUT)
    pieces = streamed_pieces(stream_payloads(resp))
    assert "".join(pieces) == expected_content(CUT_AT)
    assert_no_leak(resp)
    row = await usage_of(stack, resp)
    assert (row["status"], row["error_code"], row["disconnected"]) == (502, "upstream_reset", False)
    assert row["completion_tokens"] == len(pieces) == CUT_AT
    assert (await settled_stats(healthy))["chat_requests"] == 0


@pytest.mark.parametrize("include_usage", [False, True], ids=["no usage", "usage"])
async def test_a_cut_stream_is_continued_into_the_uncut_answer_byte_for_byte(
    stack: Stack,
    failing: str,
    healthy: str,
    fresh_key: str,
    http: httpx.AsyncClient,
    include_usage: bool,
) -> None:
    await set_faults(failing, tokens=TOKENS, fail_after=CUT_AT)
    await set_faults(healthy, tokens=TOKENS)
    model, (_, secondary), uncut_model = await _continued_route(stack, fresh_key, failing, healthy)
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    url = stack.data_plane_urls[0]

    continued = await chat(http, url, fresh_key, model, stream=True, **extra)
    uncut = await chat(http, url, fresh_key, uncut_model, stream=True, **extra)

    assert_whole_stream(continued, TOKENS)
    assert_whole_stream(uncut, TOKENS)
    assert _comparable(continued.content) == _comparable(uncut.content)
    if include_usage:
        usage = _usage_block(continued)
        assert usage == _usage_block(uncut)
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (2, TOKENS)
        assert usage["total_tokens"] == 2 + TOKENS
    else:
        assert all(json.loads(p).get("usage") is None for p in stream_payloads(continued)[:-1])
    row = await usage_of(stack, continued)
    assert (row["status"], row["error_code"], row["disconnected"]) == (200, None, False)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2, TOKENS)
    assert (row["attempts"], str(row["deployment_id"])) == (2, secondary)
    primary_stats = await settled_stats(failing)
    assert primary_stats["chat_requests"] == 1


async def test_a_fallback_refusing_the_prefill_ends_with_the_original_cut(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, tokens=TOKENS, fail_after=CUT_AT)
    await set_faults(healthy, tokens=TOKENS, refuse_prefill=True)
    model, _, _ = await _continued_route(stack, fresh_key, failing, healthy)
    # the same cut on a route that does not continue: what the client gets then
    plain, _ = await open_route(stack, fresh_key, [await on_fake(stack, failing)])
    url = stack.data_plane_urls[0]

    resp = await chat(http, url, fresh_key, model, stream=True)
    without = await chat(http, url, fresh_key, plain, stream=True)

    request_id = resp.headers["x-request-id"]
    assert_upstream_error(error_event(resp), request_id, "upstream_reset", CUT)
    assert_upstream_error(
        error_event(without), without.headers["x-request-id"], "upstream_reset", CUT
    )
    assert "".join(streamed_pieces(stream_payloads(resp))) == expected_content(CUT_AT)
    # the secondary was asked once and said no (400): that is not what the client hears
    assert (await settled_stats(healthy))["by_status"] == {"400": 1}
    assert "prefill" not in resp.text
    row = await usage_of(stack, resp)
    assert (row["status"], row["error_code"], row["disconnected"]) == (502, "upstream_reset", False)
    assert row["completion_tokens"] == CUT_AT


async def test_a_stall_past_the_idle_timeout_is_continued(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, tokens=TOKENS, stall_after=CUT_AT, stall_ms=10_000)
    await set_faults(healthy, tokens=TOKENS)
    idle = {"timeouts": {"idle": 0.5}}
    model, (_, secondary), uncut_model = await _continued_route(
        stack, fresh_key, failing, healthy, **idle
    )
    url = stack.data_plane_urls[0]

    continued = await chat(http, url, fresh_key, model, stream=True)
    uncut = await chat(http, url, fresh_key, uncut_model, stream=True)

    assert_whole_stream(continued, TOKENS)
    assert _comparable(continued.content) == _comparable(uncut.content)
    row = await usage_of(stack, continued)
    assert (row["status"], row["completion_tokens"], row["attempts"]) == (200, TOKENS, 2)
    assert str(row["deployment_id"]) == secondary


async def test_a_malformed_event_mid_stream_is_dropped_and_counted_not_continued(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, tokens=TOKENS, malformed_after=CUT_AT)
    await set_faults(healthy, tokens=TOKENS)
    model, (primary, _), uncut_model = await _continued_route(stack, fresh_key, failing, healthy)
    url = stack.data_plane_urls[0]

    resp = await chat(http, url, fresh_key, model, stream=True)
    uncut = await chat(http, url, fresh_key, uncut_model, stream=True)

    assert_whole_stream(resp, TOKENS)  # every event relayed parses: the malformed one is not
    assert _comparable(resp.content) == _comparable(uncut.content)
    assert (await settled_stats(healthy))["chat_requests"] == 1  # the uncut request only
    row = await usage_of(stack, resp)
    assert (row["status"], row["completion_tokens"], row["attempts"]) == (200, TOKENS, 1)
    assert str(row["deployment_id"]) == primary
    line = f"request {resp.headers['x-request-id']}: dropped 1 malformed event(s)"
    port = urlsplit(url).port
    log = next(s for s in stack.servers if s.name == f"data-plane-{port}").log_path

    async def counted() -> bool:
        return line in log.read_text(errors="replace")

    await eventually(counted, 5, "the dropped event in the data plane's log")
