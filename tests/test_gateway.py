"""End to end: the official `openai` client → data plane → fake OpenAI upstream,
with every change made through the admin API and folded by two running data planes."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import openai
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def world(stack: Stack) -> dict[str, Any]:
    tenant = await stack.create_tenant("acme")
    provider = await stack.create_provider()
    await stack.create_route("demo-model", provider["id"], "fake-1")
    key = await stack.create_key(tenant["id"])
    await _until_status(stack.data_plane_urls, key["key"], 200)
    return {"tenant": tenant, "provider": provider, "key": key}


async def _models_status(client: httpx.AsyncClient, url: str, key: str) -> int:
    resp = await client.get(f"{url}/v1/models", headers={"authorization": f"Bearer {key}"})
    return resp.status_code


async def _until_status(urls: list[str], key: str, status: int, within: float = 5.0) -> float:
    """Poll every data plane until each answers `status` for `key`; seconds until the last did."""
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:

        async def one(url: str) -> float:
            while time.monotonic() - start < within:
                if await _models_status(client, url, key) == status:
                    return time.monotonic() - start
                await asyncio.sleep(0.005)
            raise AssertionError(f"{url} did not answer {status} within {within} s")

        return max(await asyncio.gather(*(one(u) for u in urls)))


def _client(stack: Stack, key: str, plane: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=stack.data_plane_urls[plane] + "/v1", api_key=key)


async def _last_upstream_request(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        seen: list[dict[str, Any]] = (await client.get(stack.fake_url + "/_fake/requests")).json()
    return seen[-1]


async def test_non_streaming_completion_matches_upstream(
    stack: Stack, world: dict[str, Any]
) -> None:
    async with _client(stack, world["key"]["key"]) as client:
        reply = await client.chat.completions.create(
            model="demo-model", messages=[{"role": "user", "content": "say three words"}]
        )
    assert reply.choices[0].message.content == " ".join(f"tok{i}" for i in range(20))
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (3, 20)
    assert reply.usage.total_tokens == 23
    upstream = await _last_upstream_request(stack)
    assert upstream["body"]["model"] == "fake-1"  # the route's upstream model name
    assert upstream["authorization"] == f"Bearer {stack.upstream_key}"


async def test_streaming_completion_matches_upstream(stack: Stack, world: dict[str, Any]) -> None:
    async with _client(stack, world["key"]["key"], plane=1) as client:
        stream = await client.chat.completions.create(
            model="demo-model",
            messages=[{"role": "user", "content": "count for me please"}],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=7,
        )
        pieces, usage, finish = [], None, None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
    assert "".join(pieces) == " ".join(f"tok{i}" for i in range(7))
    assert finish == "length"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4, 7, 11)


async def test_stream_is_relayed_chunk_by_chunk(stack: Stack, world: dict[str, Any]) -> None:
    """With 100 ms between upstream chunks, the client sees each as it is sent, not at the end."""
    await stack.add_upstream("slow-model", ["--delay-ms", "100"])
    await stack.until_model(world["key"]["key"], "slow-model")
    body = {
        "model": "slow-model",
        "stream": True,
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "x"}],
    }
    headers = {"authorization": f"Bearer {world['key']['key']}"}
    arrivals: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        start = time.monotonic()
        url = stack.data_plane_urls[0] + "/v1/chat/completions"
        async with client.stream("POST", url, json=body, headers=headers) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 7  # role, 4 tokens, finish, [DONE]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert sum(gap > 0.05 for gap in gaps) >= 4, f"chunks arrived together: {arrivals}"


async def test_lists_models_the_key_may_use(stack: Stack, world: dict[str, Any]) -> None:
    other = await stack.create_tenant()
    await stack.create_route("private-model", world["provider"]["id"], "fake-2", [other["id"]])
    other_key = await stack.create_key(other["id"])
    await _until_status(stack.data_plane_urls, other_key["key"], 200)
    async with _client(stack, world["key"]["key"]) as client:
        mine = sorted(m.id for m in (await client.models.list()).data)
    async with _client(stack, other_key["key"], plane=1) as client:
        theirs = sorted(m.id for m in (await client.models.list()).data)
    assert "demo-model" in mine
    assert "private-model" not in mine  # routed to another tenant only
    assert {"demo-model", "private-model"} <= set(theirs)
    # another tenant's model is answered exactly as one that does not exist
    refusals = []
    async with _client(stack, world["key"]["key"]) as client:
        for model in ("private-model", "no-such-model"):
            with pytest.raises(openai.NotFoundError) as refused:
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}]
                )
            body = refused.value.body
            assert isinstance(body, dict)
            refusals.append({**body, "message": body["message"].replace(model, "M")})
    assert refusals[0] == refusals[1]
    assert refusals[0]["code"] == "model_not_found"


async def test_revoked_key_is_refused_by_both_data_planes_within_a_second(
    stack: Stack, world: dict[str, Any]
) -> None:
    key = await stack.create_key(world["tenant"]["id"])
    accepted = await _until_status(stack.data_plane_urls, key["key"], 200, within=1.0)
    assert accepted < 1.0  # created after the data planes started, usable within a second
    async with stack.admin() as admin:
        resp = await admin.delete(f"/keys/{key['id']}")
    assert resp.status_code == 204
    refused = await _until_status(stack.data_plane_urls, key["key"], 401, within=1.0)
    assert refused < 1.0
    async with _client(stack, key["key"], plane=1) as client:
        with pytest.raises(openai.AuthenticationError) as exc:
            await client.chat.completions.create(
                model="demo-model", messages=[{"role": "user", "content": "hi"}]
            )
    assert exc.value.code == "invalid_api_key"


async def test_route_added_after_start_is_usable(stack: Stack, world: dict[str, Any]) -> None:
    key = world["key"]["key"]
    async with _client(stack, key) as client:
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="late-model", messages=[{"role": "user", "content": "hi"}]
            )
    await stack.create_route("late-model", world["provider"]["id"], "fake-late")
    deadline = time.monotonic() + 1.0
    for plane in range(len(stack.data_plane_urls)):
        async with _client(stack, key, plane) as client:
            while True:
                try:
                    reply = await client.chat.completions.create(
                        model="late-model", messages=[{"role": "user", "content": "hi"}]
                    )
                    break
                except openai.NotFoundError:
                    assert time.monotonic() < deadline, "route not usable within a second"
                    await asyncio.sleep(0.01)
        assert reply.model == "fake-late"


async def test_deleted_tenant_keys_are_refused(stack: Stack, world: dict[str, Any]) -> None:
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    await _until_status(stack.data_plane_urls, key["key"], 200)
    async with stack.admin() as admin:
        assert (await admin.delete(f"/tenants/{tenant['id']}")).status_code == 204
    await _until_status(stack.data_plane_urls, key["key"], 401, within=1.0)
