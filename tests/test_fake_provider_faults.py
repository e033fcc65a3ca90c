"""The fake upstream's fault knobs, each by header and by ``PUT /_fake/faults``, over real HTTP."""

from __future__ import annotations

import itertools
import json
import random
import time

import aiohttp
import openai
import pytest

from tests.fakes.openai_wire import FILTERED_AFTER
from tests.support.fake import (
    AUTH,
    CHAT,
    MESSAGES,
    PROMPT_WORDS,
    STREAM,
    TOKENS,
    Knobs,
    assert_same_shapes,
    chat_body,
    chunk_kind,
    chunks_of,
    expected_content,
    fake_log,
    fake_stats,
    fault_headers,
    fixture_events,
    fixture_json,
    is_json,
    kinds_pattern,
    parse_sse,
    post_chat,
    put_faults,
    read_stream,
    shape,
    streamed_text,
    until_idle,
)

pytestmark = pytest.mark.usefixtures("clean_fake")


async def assert_let_go(session: aiohttp.ClientSession, url: str, outcome: str) -> None:
    """The fake noticed that the one request's client left, and let go of the request."""
    assert (await until_idle(session, url))["by_status"] == {outcome: 1}
    (entry,) = await fake_log(session, url)
    assert entry["disconnected"] is True


# --- the new fixtures ------------------------------------------------------------------------


def test_new_fixtures_are_well_formed() -> None:
    filtered = fixture_events("chat_completion_stream_content_filter.sse")
    assert filtered[-1] == "[DONE]"
    chunks = chunks_of(filtered)
    assert kinds_pattern(chunks) == ["role", "content", "finish", "usage"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    no_done = fixture_events("chat_completion_stream_no_done.sse")
    assert "[DONE]" not in no_done
    assert kinds_pattern(chunks_of(no_done)) == ["role", "content", "finish", "usage"]
    malformed = fixture_events("chat_completion_stream_malformed_event.sse")
    assert malformed[-1] == "[DONE]"
    (bad,) = [e for e in malformed if e != "[DONE]" and not is_json(e)]
    assert bad.startswith('{"id":"chatcmpl-')
    good = chunks_of([e for e in malformed if e != bad])
    assert kinds_pattern(good) == ["role", "content", "finish", "usage"]
    assert fixture_json("error_server_error.json")["error"]["type"] == "server_error"
    context = fixture_json("error_context_length_exceeded.json")["error"]
    assert (context["param"], context["code"]) == ("messages", "context_length_exceeded")
    azure = fixture_json("error_azure_content_filter.json")["error"]
    assert (azure["code"], azure["status"]) == ("content_filter", 400)
    assert azure["innererror"]["code"] == "ResponsibleAIPolicyViolation"


# --- error statuses --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_openais_body(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs, status: int
) -> None:
    headers = await knobs(status=status)
    async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=headers) as resp:
        assert resp.status == status
        assert "Retry-After" not in resp.headers
        assert await resp.json() == fixture_json("error_server_error.json")


async def test_rate_limit_is_openais_body_with_retry_after(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(status=429, retry_after=7)
    async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=headers) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "7"
        body = await resp.json()
    assert shape(body) == shape(fixture_json("error_rate_limit.json"))
    assert (body["error"]["type"], body["error"]["code"]) == ("requests", "rate_limit_exceeded")
    assert body["error"]["message"].startswith("Rate limit reached for gpt-test in organization")
    assert "Please try again in 7s." in body["error"]["message"]


async def test_retry_after_through_openai_client(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            extra_headers=fault_headers(status=429, retry_after=3),
        )
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.code == "rate_limit_exceeded"


async def test_retry_after_alone_changes_nothing(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    headers = {**AUTH, **fault_headers(retry_after=3)}
    async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=headers) as resp:
        assert resp.status == 200
        assert "Retry-After" not in resp.headers


async def test_a_header_overrides_the_process_setting(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    await put_faults(session, fake_url, status=500, tokens=3, fail_after=1)
    status, _ = await post_chat(session, fake_url, AUTH)
    assert status == 500
    headers = {**AUTH, **fault_headers(status=0, fail_after=None)}
    status, raw = await post_chat(session, fake_url, headers)
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == expected_content(3)
    status, raw = await post_chat(
        session, fake_url, {**headers, **fault_headers(tokens=2)}, **STREAM
    )
    assert streamed_text(chunks_of(parse_sse(raw))) == expected_content(2)


# --- connection faults -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_reset_closes_without_a_response(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs, stream: bool
) -> None:
    headers = await knobs(reset=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await post_chat(session, fake_url, headers, stream=stream)
    stats = await until_idle(session, fake_url)
    assert stats["by_status"] == {"reset": 1}
    assert (stats["faults_injected"], stats["streams"]) == (1, 0)


async def test_reset_through_openai_client(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers=fault_headers(reset=True)
        )


async def test_hang_sends_nothing_until_the_client_leaves(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(hang=True)
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as impatient:
        with pytest.raises(TimeoutError):
            await post_chat(impatient, fake_url, headers, stream=True)
    await assert_let_go(session, fake_url, "hang")


# --- timing ----------------------------------------------------------------------------------


async def test_first_token_ms_on_a_stream_sends_headers_first(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(first_token_ms=200)
    start = time.monotonic()
    async with session.post(
        f"{fake_url}{CHAT}", json=chat_body(stream=True), headers=headers
    ) as resp:
        headers_at = time.monotonic() - start
        assert resp.status == 200
        first = await resp.content.readuntil(b"\n\n")
        first_at = time.monotonic() - start
        rest = await resp.read()
    assert first_at - headers_at >= 0.15  # the headers came first, then the wait
    assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
    assert rest.endswith(b"data: [DONE]\n\n")


async def test_first_token_ms_without_stream_is_latency(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(first_token_ms=150)
    start = time.monotonic()
    status, raw = await post_chat(session, fake_url, headers)
    assert time.monotonic() - start >= 0.14
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == expected_content(TOKENS)


async def test_stall_pauses_then_goes_on(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(stall_after=2, stall_ms=150)
    arrivals: list[float] = []
    received: list[bytes] = []
    await read_stream(session, fake_url, headers, received, arrivals)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # role, content 0, content 1, (stall), content 2, ...
    assert gaps[2] >= 0.14
    assert max(gaps[:2] + gaps[3:]) < gaps[2] / 2
    events = parse_sse(b"".join(received))
    assert events[-1] == "[DONE]"
    assert streamed_text(chunks_of(events)) == expected_content(TOKENS)


async def test_a_long_stall_is_a_client_timeout_and_ends_with_it(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(stall_after=2, stall_ms=60_000)
    received: list[bytes] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_read=0.2)) as impatient:
        with pytest.raises(TimeoutError):
            await read_stream(impatient, fake_url, headers, received)
    assert [chunk_kind(c) for c in chunks_of(parse_sse(b"".join(received)))] == [
        "role",
        "content",
        "content",
    ]
    await assert_let_go(session, fake_url, "200")


# --- broken streams and bodies ---------------------------------------------------------------


async def test_fail_after_by_either_form(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(fail_after=2)
    received: list[bytes] = []
    with pytest.raises(aiohttp.ClientPayloadError):
        await read_stream(session, fake_url, headers, received, **STREAM)
    chunks = chunks_of(parse_sse(b"".join(received)))
    reference = chunks_of(fixture_events("chat_completion_stream_failed_midway.sse"))
    assert_same_shapes(chunks, reference)
    assert streamed_text(chunks) == expected_content(2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_chat(session, fake_url, headers)
    stats = await until_idle(session, fake_url)
    assert stats["by_status"] == {"200": 1, "reset": 1}
    assert (stats["streams"], stats["faults_injected"]) == (1, 2)


async def test_malformed_event_mid_stream(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(malformed_after=2)
    received: list[bytes] = []
    await read_stream(session, fake_url, headers, received, **STREAM)
    framed = [chunk for chunk in received if chunk]  # the body's last, empty chunk aside
    assert all(chunk.endswith(b"\n\n") and chunk.count(b"\n\n") == 1 for chunk in framed)
    events = parse_sse(b"".join(received))
    assert events[-1] == "[DONE]"
    bad = [i for i, e in enumerate(events[:-1]) if not is_json(e)]
    assert bad == [3]  # after role and two contents
    assert events[3].startswith('{"id":"chatcmpl-')
    chunks = chunks_of(events[:3] + events[4:])
    reference = fixture_events("chat_completion_stream_malformed_event.sse")
    assert_same_shapes(chunks, chunks_of([e for e in reference if is_json(e)]))
    assert streamed_text(chunks) == expected_content(TOKENS)


async def test_malformed_body_is_not_json(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(malformed_body=True)
    async with session.post(f"{fake_url}{CHAT}", json=chat_body(), headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        raw = await resp.read()
    assert raw.startswith(b"<html>")
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    _, raw = await post_chat(session, fake_url, headers, stream=True)  # streams keep to SSE
    assert raw.endswith(b"data: [DONE]\n\n")


async def test_no_done_ends_the_stream_cleanly_without_it(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(no_done=True)
    status, raw = await post_chat(session, fake_url, headers, **STREAM)  # no payload error
    assert status == 200
    events = parse_sse(raw)
    assert "[DONE]" not in events
    chunks = chunks_of(events)
    assert_same_shapes(chunks, chunks_of(fixture_events("chat_completion_stream_no_done.sse")))
    assert chunks[-1]["usage"]["completion_tokens"] == TOKENS
    assert streamed_text(chunks) == expected_content(TOKENS)


# --- refusals --------------------------------------------------------------------------------


async def test_prompt_content_filter_is_azures_400(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(content_filter="prompt")
    status, raw = await post_chat(session, fake_url, headers, stream=True)
    assert status == 400
    body = json.loads(raw)
    assert shape(body) == shape(fixture_json("error_azure_content_filter.json"))
    assert (body["error"]["code"], body["error"]["param"]) == ("content_filter", "prompt")
    assert body["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"


async def test_prompt_content_filter_through_openai_client(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            extra_headers=fault_headers(content_filter="prompt"),
        )
    assert refused.value.code == "content_filter"


async def test_completion_content_filter_on_a_stream(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(content_filter="completion")
    status, raw = await post_chat(session, fake_url, headers, **STREAM)
    assert status == 200
    events = parse_sse(raw)
    assert events[-1] == "[DONE]"
    chunks = chunks_of(events)
    reference = fixture_events("chat_completion_stream_content_filter.sse")
    assert_same_shapes(chunks, chunks_of(reference))
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert streamed_text(chunks) == expected_content(FILTERED_AFTER)
    assert chunks[-1]["usage"]["completion_tokens"] == FILTERED_AFTER


async def test_completion_content_filter_without_stream(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(content_filter="completion")
    status, raw = await post_chat(session, fake_url, headers)
    assert status == 200
    body = json.loads(raw)
    assert shape(body) == shape(fixture_json("chat_completion.json"))
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["choices"][0]["message"]["content"] == expected_content(FILTERED_AFTER)
    assert body["usage"]["completion_tokens"] == FILTERED_AFTER


async def test_context_window_counts_the_prompt_and_max_tokens(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs
) -> None:
    headers = await knobs(context_window=PROMPT_WORDS)
    assert (await post_chat(session, fake_url, headers))[0] == 200
    status, raw = await post_chat(session, fake_url, headers, max_tokens=2)
    assert status == 400
    body = json.loads(raw)
    assert shape(body) == shape(fixture_json("error_context_length_exceeded.json"))
    assert body["error"] == {
        "message": "This model's maximum context length is 7 tokens. However, you requested 9"
        " tokens (7 in the messages, 2 in the completion). Please reduce the length of the"
        " messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    headers = await knobs(context_window=PROMPT_WORDS - 1)
    status, raw = await post_chat(session, fake_url, headers, stream=True)
    assert status == 400
    assert json.loads(raw)["error"]["message"] == (
        "This model's maximum context length is 6 tokens. However, your messages resulted in 7"
        " tokens. Please reduce the length of the messages."
    )


async def test_refuse_prefill(fake_url: str, session: aiohttp.ClientSession, knobs: Knobs) -> None:
    headers = await knobs(refuse_prefill=True)
    prefilled = [*MESSAGES, {"role": "assistant", "content": "tok0 tok1"}]
    status, raw = await post_chat(session, fake_url, headers, messages=prefilled)
    assert status == 400
    error = json.loads(raw)["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "messages",
        None,
    )
    assert "does not support assistant message prefill" in error["message"]
    assert (await post_chat(session, fake_url, headers))[0] == 200  # the user spoke last


# --- random failures -------------------------------------------------------------------------


def draws(seed: int, rate: float, n: int) -> list[bool]:
    """Which of ``n`` requests fail at ``rate`` under ``seed``: one draw a request."""
    rng = random.Random(seed)
    return [rng.random() < rate for _ in range(n)]


async def failures(
    session: aiohttp.ClientSession, url: str, n: int, headers: dict[str, str] = AUTH
) -> list[bool]:
    return [(await post_chat(session, url, headers))[0] != 200 for _ in range(n)]


async def test_random_failures_follow_the_seed(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    await put_faults(session, fake_url, fail_rate=0.3, seed=42, tokens=1)
    failed = await failures(session, fake_url, 1000)
    assert failed == draws(42, 0.3, 1000)
    assert 250 <= sum(failed) <= 350
    stats = await fake_stats(session, fake_url)
    assert stats["by_status"] == {"200": 1000 - sum(failed), "500": sum(failed)}
    assert stats["faults_injected"] == sum(failed)
    await put_faults(session, fake_url, fail_rate=0.3, seed=42, tokens=1)  # reseeds
    assert await failures(session, fake_url, 100) == failed[:100]
    await put_faults(session, fake_url, fail_rate=0.3, seed=43, tokens=1)
    assert await failures(session, fake_url, 100) == draws(43, 0.3, 100) != failed[:100]


async def test_a_header_fail_rate_draws_from_the_process_seed(
    fake_url: str, session: aiohttp.ClientSession
) -> None:
    await put_faults(session, fake_url, seed=7)
    headers = {**AUTH, **fault_headers(fail_rate=0.5, fail_status=503)}
    assert await failures(session, fake_url, 50, headers) == draws(7, 0.5, 50)
    assert set((await fake_stats(session, fake_url))["by_status"]) == {"200", "503"}


@pytest.mark.parametrize("mode", ["status", "reset", "hang"])
async def test_random_failure_modes(
    fake_url: str, session: aiohttp.ClientSession, knobs: Knobs, mode: str
) -> None:
    headers = await knobs(fail_rate=1, fail_mode=mode, fail_status=502)
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as impatient:
        if mode == "status":
            status, raw = await post_chat(impatient, fake_url, headers)
            assert status == 502
            assert json.loads(raw) == fixture_json("error_server_error.json")
        else:
            with pytest.raises(TimeoutError if mode == "hang" else aiohttp.ClientConnectionError):
                await post_chat(impatient, fake_url, headers)
    stats = await until_idle(session, fake_url)
    assert stats["by_status"] == {"502" if mode == "status" else mode: 1}
    assert stats["faults_injected"] == 1
