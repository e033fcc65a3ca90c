"""The fake upstream's errors, overrides, failures, request log and command line."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from tests.fakes.provider import FakeConfig, build_app
from tests.support.fake import (
    API_KEY,
    AUTH,
    CHAT,
    MESSAGES,
    assert_same_shapes,
    chat_body,
    chunk_kind,
    expected_content,
    fake_cli,
    fake_log,
    fixture_events,
    fixture_json,
    parse_sse,
    read_http_chunks,
    shape,
)


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"}, {}])
async def test_wrong_or_missing_api_key_is_401(
    fake_url: str, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=headers) as resp:
        assert resp.status == 401
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert shape(body) == shape(fixture_json("error_invalid_api_key.json"))
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["type"] == "invalid_request_error"
    async with session.get(f"{fake_url}/v1/models", headers=headers) as resp:
        assert resp.status == 401


async def test_wrong_api_key_through_openai_client(fake_url: str) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{fake_url}/v1", api_key="sk-wrong", max_retries=0
    ) as bad_client:
        with pytest.raises(openai.AuthenticationError) as info:
            await bad_client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (b'{"model": "gpt-test", "messages": [', None),
        (b"not json at all", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "gpt-test"}', "messages"),
        (b'{"model": "gpt-test", "messages": []}', "messages"),
        (b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": 0}', "max_tokens"),
    ],
)
async def test_invalid_body_is_400(
    fake_url: str, session: aiohttp.ClientSession, payload: bytes, param: str | None
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    async with session.post(f"{fake_url}{CHAT}", data=payload, headers=headers) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert shape(body) == {
        "error": {"message": "str", "type": "str", "param": shape(param), "code": "NoneType"}
    }
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (429, "requests", "rate_limit_exceeded"),
        (500, "server_error", None),
        (503, "server_error", None),
        (404, "invalid_request_error", "model_not_found"),
    ],
)
async def test_forced_status(
    fake_url: str,
    session: aiohttp.ClientSession,
    status: int,
    error_type: str,
    code: str | None,
) -> None:
    headers = {**AUTH, "x-fake-status": str(status)}
    # The forced status wins even over a body that would otherwise be rejected.
    for body in (chat_body(), {}):
        async with session.post(f"{fake_url}{CHAT}", json=body, headers=headers) as resp:
            assert resp.status == status
            error = await resp.json()
        reference = fixture_json("error_rate_limit.json")
        reference["error"]["code"] = code
        assert shape(error) == shape(reference)
        assert error["error"]["type"] == error_type
        assert error["error"]["code"] == code


async def test_forced_status_through_openai_client(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            extra_headers={"x-fake-status": "429"},
        )
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            extra_headers={"x-fake-status": "500"},
        )


@pytest.mark.parametrize(
    "headers",
    [
        {"x-fake-tokens": "many"},
        {"x-fake-tokens": "-1"},
        {"x-fake-delay-ms": "soon"},
        {"x-fake-status": "200"},
        {"x-fake-fail-after": "1.5"},
    ],
)
async def test_bad_override_header_is_400(
    fake_url: str, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with session.post(
        f"{fake_url}{CHAT}", json=chat_body(), headers={**AUTH, **headers}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_unknown_path_is_404(fake_url: str, session: aiohttp.ClientSession) -> None:
    for method, path in (("GET", "/v1/nothing"), ("POST", "/v2/chat"), ("GET", CHAT)):
        async with session.request(method, f"{fake_url}{path}", headers=AUTH) as resp:
            assert resp.status == 404
            body = await resp.json()
        assert shape(body) == {
            "error": {"message": "str", "type": "str", "param": "NoneType", "code": "str"}
        }


# --- failures mid-stream ---------------------------------------------------------------------


async def test_fail_after_drops_the_stream_without_done(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    headers = {**AUTH, "x-fake-fail-after": "3"}
    body = chat_body(stream=True, stream_options={"include_usage": True})
    received: list[bytes] = []
    async with session.post(f"{fake_url}{CHAT}", json=body, headers=headers) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_http_chunks(resp, received)
    events = parse_sse(b"".join(received))
    assert "[DONE]" not in events
    chunks = [json.loads(e) for e in events]
    assert [chunk_kind(c) for c in chunks] == ["role", "content", "content", "content"]
    reference = [json.loads(e) for e in fixture_events("chat_completion_stream_failed_midway.sse")]
    assert_same_shapes(chunks, reference)


async def test_fail_after_through_openai_client(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-fake-fail-after": "2"},
    )
    pieces: list[str] = []

    async def consume() -> None:
        async for chunk in stream:
            pieces.extend(c.delta.content for c in chunk.choices if c.delta.content)

    with pytest.raises(openai.APIConnectionError):
        await consume()
    assert pieces == ["tok0", " tok1"]


async def test_fail_after_on_non_stream_drops_the_connection(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    headers = {**AUTH, "x-fake-fail-after": "0"}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=headers) as resp:
            await resp.read()


# --- introspection ---------------------------------------------------------------------------


async def test_requests_are_recorded_and_cleared(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    async with session.delete(f"{fake_url}/_fake/requests") as resp:
        assert resp.status in (200, 204)
    assert await fake_log(session, fake_url) == []

    body = chat_body(stream=True)
    async with session.post(f"{fake_url}{CHAT}", json=body, headers=AUTH) as resp:
        await resp.read()
    async with session.post(f"{fake_url}{CHAT}", data=b"{oops", headers=AUTH) as resp:
        assert resp.status == 400
    async with session.get(f"{fake_url}/v1/models") as resp:
        assert resp.status == 401

    log = await fake_log(session, fake_url)
    assert [(e["method"], e["path"]) for e in log] == [
        ("POST", CHAT),
        ("POST", CHAT),
        ("GET", "/v1/models"),
    ]
    assert log[0]["authorization"] == f"Bearer {API_KEY}"
    assert log[0]["body"] == body
    assert log[0]["stream"] is True
    assert log[0]["disconnected"] is False
    assert log[1]["body"] is None
    assert log[2]["authorization"] is None

    async with session.delete(f"{fake_url}/_fake/requests") as resp:
        assert resp.status in (200, 204)
    assert await fake_log(session, fake_url) == []


async def test_request_log_keeps_the_last_200(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    async with session.delete(f"{fake_url}/_fake/requests"):
        pass
    for i in range(205):
        async with session.post(
            f"{fake_url}{CHAT}",
            json=chat_body(model=f"m{i}"),
            headers={**AUTH, "x-fake-tokens": "1"},
        ) as resp:
            assert resp.status == 200
    log = await fake_log(session, fake_url)
    assert len(log) == 200
    assert log[0]["body"]["model"] == "m5"
    assert log[-1]["body"]["model"] == "m204"


async def test_client_disconnect_mid_stream_is_recorded(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    async with session.delete(f"{fake_url}/_fake/requests"):
        pass
    total = 10_000
    headers = {**AUTH, "x-fake-tokens": str(total), "x-fake-delay-ms": "5"}
    resp = await session.post(f"{fake_url}{CHAT}", json=chat_body(stream=True), headers=headers)
    assert resp.status == 200
    first = await resp.content.readuntil(b"\n\n")
    assert first.startswith(b"data: ")
    resp.close()  # drops the connection mid-stream

    deadline = time.monotonic() + 5
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        (entry,) = await fake_log(session, fake_url)
        if entry.get("disconnected"):
            break
        await asyncio.sleep(0.02)
    assert entry["disconnected"] is True
    sent_at_detection = entry["events_sent"]
    assert sent_at_detection < total
    await asyncio.sleep(0.1)
    (entry,) = await fake_log(session, fake_url)
    assert entry["events_sent"] == sent_at_detection  # it stopped writing


async def test_healthz(fake_url: str, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{fake_url}/_fake/healthz") as resp:
        assert resp.status == 200


# --- timing knobs ----------------------------------------------------------------------------


async def test_latency_and_delay_overrides(fake_url: str, session: aiohttp.ClientSession) -> None:
    headers = {**AUTH, "x-fake-latency-ms": "150"}
    start = time.monotonic()
    async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=headers) as resp:
        await resp.read()
    assert time.monotonic() - start >= 0.14

    headers = {**AUTH, "x-fake-tokens": "3", "x-fake-delay-ms": "40"}
    arrivals: list[float] = []
    async with session.post(
        f"{fake_url}{CHAT}", json=chat_body(stream=True), headers=headers
    ) as resp:
        await read_http_chunks(resp, [], arrivals)
    # role, 3 contents, finish, [DONE]: five 40 ms gaps between six events.
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] >= 5 * 0.04 * 0.9


async def test_config_defaults_apply_without_headers() -> None:
    runner = web.AppRunner(build_app(FakeConfig(tokens=2, latency_ms=100)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            start = time.monotonic()
            async with session.post(f"{url}{CHAT}", json=chat_body()) as resp:
                assert resp.status == 200  # no api_key configured: no auth required
                body = await resp.json()
            assert time.monotonic() - start >= 0.09
    finally:
        await runner.cleanup()
    assert body["choices"][0]["message"]["content"] == expected_content(2)


# --- the command line ------------------------------------------------------------------------


async def test_cli_serves_and_stops_on_sigterm() -> None:
    async with fake_cli("--tokens", "4", "--api-key", "cli-key") as (url, proc):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}{CHAT}", json=chat_body(), headers={"Authorization": "Bearer cli-key"}
            ) as resp,
        ):
            assert resp.status == 200
            body = await resp.json()
        assert body["choices"][0]["message"]["content"] == expected_content(4)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert proc.stderr is not None
        rest = await proc.stderr.read()
        assert b"Traceback" not in rest
