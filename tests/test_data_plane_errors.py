"""Bad requests to the data plane get OpenAI-style error JSON, never a 500 or a hang."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def key(stack: Stack) -> str:
    tenant = await stack.create_tenant()
    provider = await stack.create_provider()
    await stack.create_route("errors-model", provider["id"], "fake-1")
    created = await stack.create_key(tenant["id"])
    secret: str = created["key"]
    return secret


async def _call(
    stack: Stack, method: str, path: str, headers: dict[str, str], content: bytes | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        return await client.request(method, path, headers=headers, content=content)


def _error(resp: httpx.Response) -> dict[str, Any]:
    assert resp.headers["content-type"] == "application/json"
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


CHAT = "/v1/chat/completions"
GOOD = b'{"model": "errors-model", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("Bearer sk-sluice-not-a-real-key", "invalid_api_key"),
        ("Basic c2stc2x1aWNlOng=", "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
    ],
)
async def test_unauthenticated_requests_get_401(
    stack: Stack, authorization: str | None, code: str
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    for method, path, body in (("POST", CHAT, GOOD), ("GET", "/v1/models", None)):
        resp = await _call(stack, method, path, headers, body)
        assert resp.status_code == 401
        assert _error(resp)["code"] == code


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'{"messages": []}', "model"),
        (b'{"model": 7}', "model"),
        (b'{"model": "errors-model", "stream": "yes"}', "stream"),
        (b'{"model": "errors-model", "x": "\xff\xfe"}', None),
        (b"[" * 100_000 + b"]" * 100_000, None),
        (b'{"model": "\\ud800"}', None),
    ],
)
async def test_malformed_bodies_get_400(stack: Stack, key: str, body: bytes, param: str) -> None:
    resp = await _call(stack, "POST", CHAT, {"authorization": f"Bearer {key}"}, body)
    assert resp.status_code == 400
    error = _error(resp)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_unknown_model_gets_404(stack: Stack, key: str) -> None:
    body = b'{"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}'
    resp = await _call(stack, "POST", CHAT, {"authorization": f"Bearer {key}"}, body)
    assert resp.status_code == 404
    assert _error(resp)["code"] == "model_not_found"


async def test_unknown_path_and_wrong_method(stack: Stack, key: str) -> None:
    auth = {"authorization": f"Bearer {key}"}
    missing = await _call(stack, "GET", "/v1/nothing-here", auth)
    assert missing.status_code == 404
    _error(missing)
    wrong = await _call(stack, "GET", CHAT, auth)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    _error(wrong)


async def test_oversized_body_gets_413(stack: Stack, key: str) -> None:
    body = b'{"model": "errors-model", "pad": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    resp = await _call(stack, "POST", CHAT, {"authorization": f"Bearer {key}"}, body)
    assert resp.status_code == 413
    assert _error(resp)["code"] == "request_too_large"


async def test_upstream_unreachable_gets_502(stack: Stack, key: str) -> None:
    async with stack.admin() as admin:
        provider = await admin.post(
            "/providers", json={"name": "gone", "base_url": "http://127.0.0.1:9/v1"}
        )
        await admin.post(
            "/routes", json={"model": "gone-model", "provider_id": provider.json()["id"]}
        )
    body = b'{"model": "gone-model", "messages": [{"role": "user", "content": "hi"}]}'
    for _ in range(100):
        resp = await _call(stack, "POST", CHAT, {"authorization": f"Bearer {key}"}, body)
        if resp.status_code != 404:
            break
        await asyncio.sleep(0.01)
    assert resp.status_code == 502
    assert _error(resp)["type"] == "upstream_error"


async def test_health_and_readiness(stack: Stack) -> None:
    health = await _call(stack, "GET", "/healthz", {})
    ready = await _call(stack, "GET", "/readyz", {})
    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["position"] > 0
