"""The fake upstream's control surface: ``/_fake/faults``, ``/_fake/stats`` and the CLI flags."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aiohttp
import pytest

from tests.support.fake import (
    AUTH,
    TOKENS,
    expected_content,
    fake_cli,
    fake_stats,
    fault_headers,
    post_chat,
    put_faults,
    until_idle,
)

pytestmark = pytest.mark.usefixtures("clean_fake")
STARTUP = {
    "tokens": TOKENS,
    "latency_ms": 0.0,
    "delay_ms": 0.0,
    "first_token_ms": 0.0,
    "reset": False,
    "hang": False,
    "status": 0,
    "retry_after": None,
    "fail_rate": 0.0,
    "fail_mode": "status",
    "fail_status": 500,
    "seed": None,
    "refuse_prefill": False,
    "context_window": None,
    "content_filter": None,
    "fail_after": None,
    "stall_after": None,
    "stall_ms": 0.0,
    "malformed_after": None,
    "malformed_body": False,
    "no_done": False,
    "error_after": None,
    "split_bytes": None,
    "tool_call": True,
    "spaced_json": False,
}


async def get_faults(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/_fake/faults") as resp:
        assert resp.status == 200
        faults: dict[str, Any] = await resp.json()
        return faults


async def answer(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] = AUTH, **body: Any
) -> str:
    status, raw = await post_chat(session, url, headers, **body)
    assert status == 200
    content: str = json.loads(raw)["choices"][0]["message"]["content"]
    return content


# --- /_fake/faults ---------------------------------------------------------------------------


async def test_faults_are_read_set_and_cleared(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    assert await get_faults(session, fake_url) == STARTUP
    assert await put_faults(session, fake_url, tokens=3, latency_ms=10) == {
        **STARTUP,
        "tokens": 3,
        "latency_ms": 10.0,
    }
    assert (await get_faults(session, fake_url))["tokens"] == 3
    assert await answer(session, fake_url) == expected_content(3)
    # A PUT names every knob that differs from startup: tokens goes back to TOKENS.
    await put_faults(session, fake_url, delay_ms=1)
    assert await answer(session, fake_url) == expected_content(TOKENS)
    await put_faults(session, fake_url, tokens=2, status=503)
    async with session.delete(f"{fake_url}/_fake/faults") as resp:
        assert resp.status == 204
    assert await get_faults(session, fake_url) == STARTUP
    assert await answer(session, fake_url) == expected_content(TOKENS)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"tokens": -1}',
        b'{"fail_rate": 1.5}',
        b'{"fail_mode": "explode"}',
        b'{"status": 200}',
        b'{"fail_status": 600}',
        b'{"content_filter": "both"}',
        b'{"context_window": 0}',
        b'{"stall_ms": -5}',
        b'{"hang": "maybe"}',
        b'{"bogus": 1}',
        b"[1, 2]",
        b"not json",
    ],
)
async def test_bad_knob_values_are_400(
    fake_url: str, session: aiohttp.ClientSession, payload: bytes
) -> None:
    await put_faults(session, fake_url, tokens=3)
    async with session.put(f"{fake_url}/_fake/faults", data=payload) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert (await get_faults(session, fake_url))["tokens"] == 3  # left as it was


@pytest.mark.parametrize(
    "headers",
    [
        {"x-fake-reset": "maybe"},
        {"x-fake-hang": "2"},
        {"x-fake-fail-rate": "1.5"},
        {"x-fake-fail-mode": "explode"},
        {"x-fake-fail-status": "200"},
        {"x-fake-content-filter": "both"},
        {"x-fake-context-window": "0"},
        {"x-fake-stall-ms": "-5"},
        {"x-fake-retry-after": "1.5"},
        {"x-fake-malformed-after": "soon"},
        {"x-fake-seed": "1"},  # the seed is the process's
        {"x-fake-unknown": "1"},
    ],
)
async def test_bad_knob_headers_are_400(
    fake_url: str, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, raw = await post_chat(session, fake_url, {**AUTH, **headers})
    assert status == 400
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert next(iter(headers)) in error["message"]


# --- /_fake/stats ----------------------------------------------------------------------------


async def test_stats_count_every_chat_request(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        await post_chat(session, fake_url, AUTH)
    for _ in range(2):
        await post_chat(session, fake_url, AUTH, stream=True)
    await post_chat(session, fake_url, {**AUTH, **fault_headers(status=429)}, stream=True)
    await post_chat(session, fake_url, {**AUTH, **fault_headers(no_done=True)}, stream=True)
    await post_chat(session, fake_url, {**AUTH, "x-fake-tokens": "many"})
    await post_chat(session, fake_url, {})  # no API key
    with pytest.raises(aiohttp.ClientConnectionError):
        await post_chat(session, fake_url, {**AUTH, **fault_headers(reset=True)})
    async with session.get(f"{fake_url}/v1/models", headers=AUTH) as resp:
        assert resp.status == 200  # not a chat request
    assert await until_idle(session, fake_url) == {
        "chat_requests": 10,
        "embedding_requests": 0,
        "streams": 3,
        "by_status": {"200": 6, "429": 1, "400": 1, "401": 1, "reset": 1},
        "by_kind": {"openai": 10},
        "faults_injected": 3,
        "in_flight": 0,
    }
    async with session.delete(f"{fake_url}/_fake/stats") as resp:
        assert resp.status == 204
    assert await fake_stats(session, fake_url) == {
        "chat_requests": 0,
        "embedding_requests": 0,
        "streams": 0,
        "by_status": {},
        "by_kind": {},
        "faults_injected": 0,
        "in_flight": 0,
    }


async def test_a_hung_request_is_in_flight_until_its_client_leaves(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    headers = {**AUTH, **fault_headers(hang=True)}
    async with aiohttp.ClientSession() as other:
        pending = asyncio.create_task(post_chat(other, fake_url, headers))
        for _ in range(250):
            if (await fake_stats(session, fake_url))["in_flight"] == 1:
                break
            await asyncio.sleep(0.02)
        stats = await fake_stats(session, fake_url)
        assert (stats["in_flight"], stats["chat_requests"]) == (1, 0)  # counted when it ends
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
    stats = await until_idle(session, fake_url)
    assert (stats["by_status"], stats["chat_requests"]) == ({"hang": 1}, 1)


# --- the command line ------------------------------------------------------------------------


async def test_cli_context_window_and_seed() -> None:
    args = ("--tokens", "2", "--context-window", "6", "--seed", "11")
    async with fake_cli(*args) as (url, _), aiohttp.ClientSession() as session:
        faults = await get_faults(session, url)
        assert (faults["context_window"], faults["seed"]) == (6, 11)
        status, raw = await post_chat(session, url, {})  # 7 words of prompt
        assert status == 400
        assert json.loads(raw)["error"]["code"] == "context_length_exceeded"
        short = [{"role": "user", "content": "hi"}]
        assert await answer(session, url, {}, messages=short) == expected_content(2)
        headers = fault_headers(fail_rate=0.5)
        statuses = [(await post_chat(session, url, headers, messages=short))[0] for _ in range(30)]
        rng = random.Random(11)  # the draws of a process started with --seed 11
        assert statuses == [500 if rng.random() < 0.5 else 200 for _ in range(30)]
