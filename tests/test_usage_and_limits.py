"""One data plane: policies enforced in memory, and one usage record per request."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(90)

CHAT = "/v1/chat/completions"


def _body(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "four words right here"}],
        **extra,
    }


@pytest.fixture(scope="module")
async def priced(stack: Stack) -> dict[str, Any]:
    provider = await stack.create_provider()
    await stack.create_route("metered-model", provider["id"], "fake-metered")
    async with stack.admin() as admin:
        await admin.put(
            "/prices/metered-model", json={"input_per_million": 1000, "output_per_million": 2000}
        )
    return provider


async def _tenant_key(stack: Stack, tenant_policy: dict[str, Any] | None = None) -> tuple[str, str]:
    tenant = await stack.create_tenant()
    if tenant_policy is not None:
        async with stack.admin() as admin:
            resp = await admin.put(f"/tenants/{tenant['id']}/policy", json=tenant_policy)
            assert resp.status_code == 200, resp.text
    key = await stack.create_key(tenant["id"])
    await stack.until_model(key["key"], "metered-model")
    return tenant["id"], key["key"]


async def _records(
    stack: Stack, tenant_id: str, n: int, within: float = 10
) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        deadline = time.monotonic() + within
        while True:
            rows = await conn.fetch(
                "SELECT * FROM usage WHERE tenant_id = $1 ORDER BY created_at", tenant_id
            )
            if len(rows) >= n or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_usage_is_recorded_with_tokens_and_cost(stack: Stack, priced: dict[str, Any]) -> None:
    tenant_id, key = await _tenant_key(stack)
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        plain = await client.post(CHAT, json=_body("metered-model", max_tokens=5), headers=auth)
        assert plain.status_code == 200
        async with client.stream(
            "POST", CHAT, json=_body("metered-model", stream=True, max_tokens=3), headers=auth
        ) as resp:
            events = [line async for line in resp.aiter_lines() if line.startswith("data: ")]
    # the client did not ask for usage: it sees none, though the gateway counted it
    assert all(b'"usage":{' not in e.encode() for e in events)
    assert events[-1] == "data: [DONE]"
    rows = await _records(stack, tenant_id, 2)
    assert len(rows) == 2
    by_kind = {r["stream"]: r for r in rows}
    assert (by_kind[False]["prompt_tokens"], by_kind[False]["completion_tokens"]) == (4, 5)
    assert (by_kind[True]["prompt_tokens"], by_kind[True]["completion_tokens"]) == (4, 3)
    assert by_kind[False]["cost_usd"] == pytest.approx((4 * 1000 + 5 * 2000) / 1e6)
    assert by_kind[True]["ttft_ms"] is not None
    assert {r["status"] for r in rows} == {200}
    assert {r["model"] for r in rows} == {"metered-model"}


async def test_rpm_limit_answers_429_with_retry_after(stack: Stack, priced: dict[str, Any]) -> None:
    _, key = await _tenant_key(stack, {"rpm": 3})
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        answers = [
            await client.post(CHAT, json=_body("metered-model"), headers=auth) for _ in range(5)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "3"
    assert answers[0].headers["x-ratelimit-remaining-requests"] == "2"
    refused = answers[3]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")


async def test_key_policy_cannot_widen_its_tenants(stack: Stack, priced: dict[str, Any]) -> None:
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    await stack.create_route("other-model", priced["id"], "fake-other")
    async with stack.admin() as admin:
        await admin.put(
            f"/tenants/{tenant['id']}/policy", json={"rpm": 2, "models": ["metered-model"]}
        )
        widened = await admin.put(
            f"/keys/{key['id']}/policy",
            json={"rpm": 100, "models": ["metered-model", "other-model"]},
        )
        assert widened.status_code == 200
    await stack.until_model(key["key"], "metered-model")
    auth = {"authorization": f"Bearer {key['key']}"}
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        answers = [
            await client.post(CHAT, json=_body("metered-model"), headers=auth) for _ in range(4)
        ]
        statuses = [a.status_code for a in answers]
        other = await client.post(CHAT, json=_body("other-model"), headers=auth)
        listed = (await client.get("/v1/models", headers=auth)).json()["data"]
    assert statuses == [200, 200, 429, 429]  # the tenant's 2, not the key's 100
    # one set of x-ratelimit-* headers, for the tightest scope
    assert answers[0].headers.get_list("x-ratelimit-limit-requests") == ["2"]
    assert answers[0].headers.get_list("x-ratelimit-remaining-requests") == ["1"]
    assert other.status_code == 403  # the tenant's models, not the key's
    assert [m["id"] for m in listed] == ["metered-model"]


async def test_max_tokens_is_capped_and_checked(stack: Stack, priced: dict[str, Any]) -> None:
    _, key = await _tenant_key(stack, {"max_tokens": 4})
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        too_many = await client.post(CHAT, json=_body("metered-model", max_tokens=50), headers=auth)
        capped = await client.post(CHAT, json=_body("metered-model"), headers=auth)
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "max_tokens_exceeded"
    assert capped.status_code == 200
    assert capped.json()["usage"]["completion_tokens"] == 4  # not the upstream's default 20


async def test_a_max_tokens_refusal_names_the_policy_that_refused(
    stack: Stack, priced: dict[str, Any]
) -> None:
    """Tenant and key both cap; the narrower refuses and the error says whose it is."""
    said = {}
    for tenant_cap, key_cap in ((4, 40), (40, 4)):
        tenant_id, key = await _tenant_key(stack, {"max_tokens": tenant_cap})
        async with stack.admin() as admin:
            key_id = next(k["id"] for k in (await admin.get(f"/tenants/{tenant_id}/keys")).json())
            resp = await admin.put(f"/keys/{key_id}/policy", json={"max_tokens": key_cap})
            assert resp.status_code == 200, resp.text
        auth = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
            deadline = time.monotonic() + 10
            while True:  # until the key's policy has reached the data plane
                refused = await client.post(
                    CHAT, json=_body("metered-model", max_tokens=50), headers=auth
                )
                if "limit of 4." in refused.text or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        assert refused.status_code == 400
        said[(tenant_cap, key_cap)] = refused.json()["error"]["message"]
    assert said[(4, 40)] == "'max_tokens' is 50, above the tenant's limit of 4."
    assert said[(40, 4)] == "'max_tokens' is 50, above this key's limit of 4."


async def test_abandoned_stream_is_recorded_as_disconnected(stack: Stack) -> None:
    fake = await stack.add_upstream("drip-model", ["--delay-ms", "100", "--tokens", "100"])
    tenant_id, key = await _tenant_key(stack)
    await stack.until_model(key, "drip-model")
    async with (
        httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client,
        client.stream(
            "POST",
            CHAT,
            json=_body("drip-model", stream=True),
            headers={"authorization": f"Bearer {key}"},
        ) as resp,
    ):
        seen = 0
        async for line in resp.aiter_lines():
            seen += line.startswith("data: ")
            if seen == 6:
                break
    rows = await _records(stack, tenant_id, 1)
    assert len(rows) == 1
    assert rows[0]["disconnected"] is True
    assert 4 <= rows[0]["completion_tokens"] <= 10  # what was streamed until then
    async with httpx.AsyncClient() as client:  # the fake sees the gateway leave, promptly
        deadline = time.monotonic() + 3
        while not (await client.get(fake + "/_fake/requests")).json()[-1]["disconnected"]:
            assert time.monotonic() < deadline, "the upstream request was not closed"
            await asyncio.sleep(0.05)


async def test_usage_api_groups_and_buckets(stack: Stack, priced: dict[str, Any]) -> None:
    tenant_id, key = await _tenant_key(stack)
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        for tokens in (2, 3, 4):
            resp = await client.post(
                CHAT, json=_body("metered-model", max_tokens=tokens), headers=auth
            )
            assert resp.status_code == 200
        bad = await client.post(CHAT, json=_body("metered-model", max_tokens=0), headers=auth)
        assert bad.status_code >= 400
    await _records(stack, tenant_id, 4)
    async with stack.admin() as admin:
        await asyncio.sleep(0.3)
        by_model = await admin.get(
            "/usage", params={"tenant_id": tenant_id, "group_by": "tenant,model", "bucket": "day"}
        )
        by_key = await admin.get("/usage", params={"tenant_id": tenant_id, "group_by": "key"})
        wrong = await admin.get("/usage", params={"group_by": "color"})
        backwards = await admin.get(
            "/usage", params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
        )
    assert by_model.status_code == 200, by_model.text
    rows = by_model.json()["data"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["tenant_id"], row["model"]) == (tenant_id, "metered-model")
    assert row["requests"] == 4
    assert row["errors"] == 1
    assert row["completion_tokens"] == 2 + 3 + 4
    assert row["prompt_tokens"] == 4 * 3  # the refused request used none
    assert row["cost_usd"] == pytest.approx((12 * 1000 + 9 * 2000) / 1e6)
    assert "key_id" not in row
    assert [r["requests"] for r in by_key.json()["data"]] == [4]
    assert wrong.status_code == 400
    assert backwards.status_code == 422


async def test_usage_lands_in_daily_partitions(stack: Stack, priced: dict[str, Any]) -> None:
    tenant_id, key = await _tenant_key(stack)
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[1], timeout=10) as client:
        resp = await client.post(
            CHAT, json=_body("metered-model"), headers={"authorization": f"Bearer {key}"}
        )
        assert resp.status_code == 200
    await _records(stack, tenant_id, 1)
    conn = await asyncpg.connect(stack.database_url)
    try:
        partitions = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'usage'::regclass"
            )
        }
        where = await conn.fetchval(
            "SELECT tableoid::regclass::text FROM usage WHERE tenant_id = $1", tenant_id
        )
    finally:
        await conn.close()
    today = datetime.now(UTC).date()
    assert {f"usage_{today + timedelta(days=d):%Y%m%d}" for d in range(8)} <= partitions
    assert where == f"usage_{today:%Y%m%d}"
