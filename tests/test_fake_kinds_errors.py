"""Every kind's refusals, error bodies and faults, and Bedrock's SigV4 check, over real HTTP."""

from __future__ import annotations

import datetime
import json
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.clients import KINDS, Conversation, events_of, request_of, sign
from tests.fakes.clients import summary_of as summarize
from tests.fakes.testing import AWS, KEY, REGION, TOKENS, fresh_session, post, serve_kinds
from tests.support.fake import fake_cli


@pytest.fixture(scope="module")
async def url() -> AsyncIterator[str]:
    async with serve_kinds() as fake_url:
        yield fake_url


@pytest.fixture
async def session(url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with fresh_session(url) as client_session:
        yield client_session


def expected(n: int) -> str:
    return " ".join(f"tok{i}" for i in range(n))


def knobs(**values: Any) -> dict[str, str]:
    return {f"x-fake-{k.replace('_', '-')}": str(v) for k, v in values.items()}


async def error_of(
    session: aiohttp.ClientSession, url: str, kind: str, stream: bool = False, **values: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    status, raw, resp = await post(session, url, kind, Conversation(), stream, knobs(**values))
    return status, json.loads(raw), resp


# --- each kind's error bodies ----------------------------------------------------------------

ANTHROPIC = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
GEMINI = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
BEDROCK = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


@pytest.mark.parametrize(("status", "type_"), ANTHROPIC.items())
async def test_anthropic_errors(
    session: aiohttp.ClientSession, url: str, status: int, type_: str
) -> None:
    got, body, resp = await error_of(session, url, "anthropic", status=status, retry_after=3)
    assert got == status
    assert body["type"] == "error"
    assert body["error"]["type"] == type_
    assert isinstance(body["error"]["message"], str)
    assert resp.headers["retry-after"] == "3"
    assert resp.headers["request-id"]


@pytest.mark.parametrize(("status", "state"), GEMINI.items())
async def test_gemini_errors(
    session: aiohttp.ClientSession, url: str, status: int, state: str
) -> None:
    got, body, _ = await error_of(session, url, "gemini", status=status)
    assert got == status
    assert (body["error"]["code"], body["error"]["status"]) == (status, state)
    assert isinstance(body["error"]["message"], str)


async def test_gemini_retry_info(session: aiohttp.ClientSession, url: str) -> None:
    _, body, _ = await error_of(session, url, "gemini", status=429, retry_after=7)
    assert body["error"]["details"][0]["retryDelay"] == "7s"


@pytest.mark.parametrize(("status", "type_"), BEDROCK.items())
async def test_bedrock_errors(
    session: aiohttp.ClientSession, url: str, status: int, type_: str
) -> None:
    got, body, resp = await error_of(session, url, "bedrock", status=status)
    assert got == status
    assert list(body) == ["message"]
    assert resp.headers["x-amzn-ErrorType"] == type_


@pytest.mark.parametrize(
    ("status", "code"), [(401, "401"), (404, "DeploymentNotFound"), (429, "429"), (500, None)]
)
async def test_azure_errors(
    session: aiohttp.ClientSession, url: str, status: int, code: str | None
) -> None:
    got, body, _ = await error_of(session, url, "azure_openai", status=status)
    assert got == status
    assert body["error"]["code"] == code
    if status == 500:
        assert body["error"]["type"] == "server_error"


@pytest.mark.parametrize("kind", KINDS)
async def test_context_window_in_the_kinds_words(
    session: aiohttp.ClientSession, url: str, kind: str
) -> None:
    status, body, _ = await error_of(session, url, kind, context_window=3)
    assert status == 400
    text = json.dumps(body)
    assert any(w in text for w in ("context length", "too long", "exceeds the maximum"))


# --- credentials -----------------------------------------------------------------------------


async def raw_post(
    session: aiohttp.ClientSession, url: str, path: str, headers: dict[str, str], body: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with session.post(url + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp


async def test_anthropic_key_and_version(session: aiohttp.ClientSession, url: str) -> None:
    path, headers, body = request_of("anthropic", Conversation(), False, KEY)
    status, answer, _ = await raw_post(session, url, path, {**headers, "x-api-key": "no"}, body)
    assert (status, answer["error"]["type"]) == (401, "authentication_error")
    del headers["anthropic-version"]
    status, answer, _ = await raw_post(session, url, path, headers, body)
    assert (status, answer["error"]["type"]) == (400, "invalid_request_error")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "bogus"}]}]}, "messages.0.content.0"),
    ],
)
async def test_anthropic_validation(
    session: aiohttp.ClientSession, url: str, change: dict[str, Any], param: str
) -> None:
    path, headers, body = request_of("anthropic", Conversation(), False, KEY)
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    status, answer, _ = await raw_post(session, url, path, headers, body)
    assert (status, answer["error"]["type"]) == (400, "invalid_request_error")
    assert answer["error"]["message"].startswith(param)


async def test_azure_needs_api_version_and_key(session: aiohttp.ClientSession, url: str) -> None:
    path, headers, body = request_of("azure_openai", Conversation(), False, KEY)
    bare = path.split("?")[0]
    status, answer, _ = await raw_post(session, url, bare, headers, body)
    assert (status, answer) == (404, {"error": {"code": "404", "message": "Resource not found"}})
    status, answer, _ = await raw_post(session, url, path, {"api-key": "wrong"}, body)
    assert (status, answer["error"]["code"]) == (401, "401")


async def test_gemini_keys_and_sse_only(session: aiohttp.ClientSession, url: str) -> None:
    path, headers, body = request_of("gemini", Conversation(), False, KEY)
    status, answer, _ = await raw_post(session, url, path, {}, body)
    assert (status, answer["error"]["status"]) == (403, "PERMISSION_DENIED")
    status, answer, _ = await raw_post(session, url, path, {"x-goog-api-key": "bad"}, body)
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert answer["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    status, _, _ = await raw_post(session, url, f"{path}?key={KEY}", {}, body)
    assert status == 200
    stream = "/v1beta/models/gemini-test:streamGenerateContent"
    status, answer, _ = await raw_post(session, url, stream, headers, body)
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")


def _signed(url: str, path: str, raw: bytes, keys: tuple[str, str]) -> dict[str, str]:
    return sign(url + path, raw, {"Content-Type": "application/json"}, keys, REGION)


@pytest.mark.parametrize(
    ("keys", "error_type"),
    [
        (AWS, None),
        ((AWS[0], "wrong-secret"), "InvalidSignatureException"),
        (("AKIDSOMEONEELSE", AWS[1]), "UnrecognizedClientException"),
    ],
)
async def test_bedrock_sigv4(
    session: aiohttp.ClientSession, url: str, keys: tuple[str, str], error_type: str | None
) -> None:
    path, _, body = request_of("bedrock", Conversation(), False, KEY)
    raw = json.dumps(body).encode()
    target = aiohttp.client.URL(url + path, encoded=True)
    async with session.post(target, data=raw, headers=_signed(url, path, raw, keys)) as resp:
        answer = await resp.json()
        if error_type is None:
            assert resp.status == 200
            assert answer["output"]["message"]["content"] == [{"text": expected(TOKENS)}]
            return
        assert resp.status == 403
        assert resp.headers["x-amzn-ErrorType"] == error_type
    assert list(answer) == ["message"]


async def test_bedrock_refuses_tampering_and_no_signature(
    session: aiohttp.ClientSession, url: str
) -> None:
    path, _, body = request_of("bedrock", Conversation(), False, KEY)
    raw = json.dumps(body).encode()
    headers = _signed(url, path, raw, AWS)
    target = aiohttp.client.URL(url + path, encoded=True)
    async with session.post(target, data=raw + b" ", headers=headers) as resp:
        assert resp.status == 403
        assert resp.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
        assert (await resp.json())["message"].startswith("The request signature we calculated")
    async with session.post(target, data=raw, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 403
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    stale = {**headers, "X-Amz-Date": old.strftime("%Y%m%dT%H%M%SZ")}
    async with session.post(target, data=raw, headers=stale) as resp:
        assert resp.status == 403


# --- faults ----------------------------------------------------------------------------------

ERROR_EVENTS = {
    "openai": "data",
    "azure_openai": "data",
    "anthropic": "error",
    "gemini": "data",
    "bedrock": "throttlingException",
}


@pytest.mark.parametrize("kind", KINDS)
async def test_error_after_ends_with_the_kinds_error_event(
    session: aiohttp.ClientSession, url: str, kind: str
) -> None:
    status, raw, _ = await post(session, url, kind, Conversation(), True, knobs(error_after=2))
    assert status == 200
    events = events_of(kind, raw)
    name, data = events[-1]
    assert name == ERROR_EVENTS[kind]
    if kind == "anthropic":
        assert data["error"]["type"] == "overloaded_error"
    elif kind != "bedrock":
        assert "error" in data
    assert summarize(kind, raw, True).text == expected(2)


@pytest.mark.parametrize("kind", KINDS)
async def test_fail_after_cuts_the_stream(
    session: aiohttp.ClientSession, url: str, kind: str
) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(session, url, kind, Conversation(), True, knobs(fail_after=2))


@pytest.mark.parametrize("kind", KINDS)
async def test_reset_and_status_via_the_process_knobs(
    session: aiohttp.ClientSession, url: str, kind: str
) -> None:
    async with session.put(f"{url}/_fake/faults", json={"reset": True}) as resp:
        assert resp.status == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(session, url, kind, Conversation(), False)
    async with session.put(f"{url}/_fake/faults", json={"status": 503}) as resp:
        assert resp.status == 200
    status, _, _ = await post(session, url, kind, Conversation(), True)
    assert status == 503
    stats = await (await session.get(f"{url}/_fake/stats")).json()
    assert stats["by_status"] == {"reset": 1, "503": 1}
    assert (stats["faults_injected"], stats["by_kind"]) == (2, {kind: 2})


def _frames(raw: bytes) -> list[bytes]:
    frames = []
    while raw:
        (total,) = struct.unpack("!I", raw[:4])
        frames.append(raw[:total])
        raw = raw[total:]
    return frames


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_after_in_the_kinds_framing(
    session: aiohttp.ClientSession, url: str, kind: str
) -> None:
    status, raw, _ = await post(session, url, kind, Conversation(), True, knobs(malformed_after=1))
    assert status == 200
    if kind == "bedrock":
        frames = _frames(raw)
        bad = [f for f in frames if zlib.crc32(f[:-4]) != struct.unpack("!I", f[-4:])[0]]
        assert len(bad) == 1
        good = b"".join(f for f in frames if f not in bad)
        assert summarize(kind, good, True).text == expected(TOKENS)
        return
    events = events_of(kind, raw)
    assert [name for name, _ in events].count("malformed") == 1
    assert summarize(kind, raw, True).text == expected(TOKENS)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("openai", "content_filter"),
        ("anthropic", "refusal"),
        ("gemini", "SAFETY"),
        ("bedrock", "content_filtered"),
    ],
)
async def test_content_filter_completion(
    session: aiohttp.ClientSession, url: str, kind: str, reason: str
) -> None:
    for stream in (False, True):
        headers = knobs(content_filter="completion")
        status, raw, _ = await post(session, url, kind, Conversation(), stream, headers)
        s = summarize(kind, raw, stream)
        assert (status, s.text, s.finish, s.completion_tokens) == (200, expected(3), reason, 3)


async def test_content_filter_prompt(session: aiohttp.ClientSession, url: str) -> None:
    headers = knobs(content_filter="prompt")
    status, raw, _ = await post(session, url, "gemini", Conversation(), False, headers)
    assert json.loads(raw)["promptFeedback"]["blockReason"] == "SAFETY"
    status, raw, _ = await post(session, url, "bedrock", Conversation(), True, headers)
    assert summarize("bedrock", raw, True).finish == "guardrail_intervened"
    status, raw, _ = await post(session, url, "azure_openai", Conversation(), False, headers)
    assert (status, json.loads(raw)["error"]["code"]) == (400, "content_filter")


async def test_cli_aws_flags_turn_the_signature_check_on() -> None:
    args = ("--aws-access-key-id", "AKIDCLI", "--aws-secret-access-key", "cli-secret")
    async with fake_cli(*args, "--aws-region", "ap-south-1") as (cli_url, _):
        path, _, body = request_of("bedrock", Conversation(), False, KEY)
        raw = json.dumps(body).encode()
        target = aiohttp.client.URL(cli_url + path, encoded=True)
        good = sign(cli_url + path, raw, {}, ("AKIDCLI", "cli-secret"), "ap-south-1")
        wrong_region = sign(cli_url + path, raw, {}, ("AKIDCLI", "cli-secret"), REGION)
        async with aiohttp.ClientSession() as client:
            async with client.post(target, data=raw, headers=good) as resp:
                assert resp.status == 200
            async with client.post(target, data=raw, headers=wrong_region) as resp:
                assert resp.status == 403
