"""Limits and budgets that hold across three data-plane processes.

The replicas share counters and spend through PostgreSQL every
SLUICE_FLEET_SYNC_INTERVAL; a limit is exceeded fleet-wide by at most what the
other replicas admit within about two intervals (see docs/limits.md). These
tests run the replicas at 50 ms intervals and send at rates the bound covers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.database import clone_database, drop_database, with_db
from tests.support.stack import Stack, start_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CHAT = "/v1/chat/completions"
FAST = {
    "SLUICE_FLEET_SYNC_INTERVAL": "0.05",
    "SLUICE_USAGE_FLUSH_INTERVAL": "0.05",
    "SLUICE_BUDGET_CHECK_INTERVAL": "0.1",
}


@pytest.fixture(scope="module")
async def fleet(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    name = await clone_database(pg_url, template_db)
    stack = start_stack(with_db(pg_url, name), log_dir, handed_out, data_planes=3, extra_env=FAST)
    yield stack
    stack.stop()
    await drop_database(pg_url, name)


async def _key_with(stack: Stack, model: str, policy: dict[str, Any]) -> dict[str, Any]:
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    async with stack.admin() as admin:
        resp = await admin.put(f"/keys/{key['id']}/policy", json=policy)
        assert resp.status_code == 200, resp.text
    await stack.until_model(key["key"], model)
    await asyncio.sleep(0.2)
    return key


def _plane_for(i: int) -> int:
    """70% / 20% / 10% of the requests to planes 0 / 1 / 2."""
    slot = i % 10
    return 0 if slot < 7 else 1 if slot < 9 else 2


async def _spread(
    stack: Stack, key: str, model: str, n: int, seconds: float, **body: Any
) -> list[httpx.Response]:
    auth = {"authorization": f"Bearer {key}"}
    payload = {"model": model, "messages": [{"role": "user", "content": "four words right here"}]}
    payload |= body
    gap = seconds / n
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> httpx.Response:
            await asyncio.sleep(max(start + i * gap - time.monotonic(), 0))
            url = stack.data_plane_urls[_plane_for(i)] + CHAT
            return await client.post(url, json=payload, headers=auth)

        return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.fixture(scope="module")
async def provider(fleet: Stack) -> dict[str, Any]:
    provider = await fleet.create_provider()
    await fleet.create_route("fleet-model", provider["id"], "fake-fleet")
    return provider


async def test_requests_per_minute_hold_across_three_replicas(
    fleet: Stack, provider: dict[str, Any]
) -> None:
    key = await _key_with(fleet, "fleet-model", {"rpm": 60})
    answers = await _spread(fleet, key["key"], "fleet-model", 300, 20)
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {200, 429}, statuses
    assert 60 <= statuses[200] <= 66, statuses
    for refused in (a for a in answers if a.status_code == 429):
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    admitted_by_plane = Counter(
        _plane_for(i) for i, a in enumerate(answers) if a.status_code == 200
    )
    assert len(admitted_by_plane) >= 2  # the limit was shared, not per replica


async def test_tokens_per_minute_hold_across_three_replicas(
    fleet: Stack, provider: dict[str, Any]
) -> None:
    key = await _key_with(fleet, "fleet-model", {"tpm": 600})
    answers = await _spread(fleet, key["key"], "fleet-model", 120, 12)
    admitted = [a for a in answers if a.status_code == 200]
    used = sum(a.json()["usage"]["total_tokens"] for a in admitted)
    per_request = admitted[0].json()["usage"]["total_tokens"]
    assert 600 - per_request < used <= 660, (used, len(admitted))
    refused = [a for a in answers if a.status_code == 429]
    assert refused
    assert all(a.json()["error"]["code"] == "tokens_limit_exceeded" for a in refused)


async def test_concurrency_holds_across_three_replicas(fleet: Stack) -> None:
    await fleet.add_upstream("slow-fleet-model", ["--delay-ms", "200", "--tokens", "30"])
    key = await _key_with(fleet, "slow-fleet-model", {"max_concurrent": 5})
    auth = {"authorization": f"Bearer {key['key']}"}
    body = {
        "model": "slow-fleet-model",
        "stream": True,
        "messages": [{"role": "user", "content": "take your time"}],
    }
    peak = 0
    open_streams = 0

    async def one(i: int, client: httpx.AsyncClient) -> int:
        nonlocal peak, open_streams
        await asyncio.sleep(i * 0.25)
        url = fleet.data_plane_urls[i % 3] + CHAT
        async with client.stream("POST", url, json=body, headers=auth) as resp:
            if resp.status_code != 200:
                await resp.aread()
                return resp.status_code
            open_streams += 1
            peak = max(peak, open_streams)
            async for _ in resp.aiter_lines():
                pass
            open_streams -= 1
            return 200

    async with httpx.AsyncClient(timeout=30) as client:
        statuses = Counter(await asyncio.gather(*(one(i, client) for i in range(20))))
    # 20 arrivals in 5 s, every stream lasting 6 s: all overlap
    assert statuses[200] == 5, statuses
    assert peak == 5
    assert statuses[429] == 15


async def test_budget_cut_off_across_three_replicas(fleet: Stack, provider: dict[str, Any]) -> None:
    async with fleet.admin() as admin:
        # 20 completion tokens at $2,500 per million: $0.05 a request
        await admin.put(
            "/prices/fleet-model", json={"input_per_million": 0, "output_per_million": 2500}
        )
    key = await _key_with(fleet, "fleet-model", {"budget_usd": 1.0, "budget_period": "day"})
    answers = await _spread(fleet, key["key"], "fleet-model", 40, 6)
    statuses = [a.status_code for a in answers]
    first_refusal = statuses.index(429)
    assert all(s == 429 for s in statuses[first_refusal:]), statuses
    assert all(a.json()["error"]["code"] == "budget_exceeded" for a in answers[first_refusal:])
    conn = await asyncpg.connect(fleet.database_url)
    try:
        deadline = time.monotonic() + 10
        while True:
            spent = await conn.fetchval(
                "SELECT coalesce(sum(cost_usd), 0) FROM usage WHERE key_id = $1 AND status = 200",
                key["id"],
            )
            recorded = await conn.fetchval(
                "SELECT count(*) FROM usage WHERE key_id = $1 AND status = 200", key["id"]
            )
            if recorded == statuses.count(200) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert recorded == statuses.count(200)
    assert 1.0 <= spent <= 1.10, spent
    # cut off fleet-wide: every replica refuses it now
    async with httpx.AsyncClient(timeout=10) as client:
        for url in fleet.data_plane_urls:
            late = await client.post(
                url + CHAT,
                json={"model": "fleet-model", "messages": [{"role": "user", "content": "more"}]},
                headers={"authorization": f"Bearer {key['key']}"},
            )
            assert late.status_code == 429
            assert late.json()["error"]["code"] == "budget_exceeded"
        async with fleet.admin() as admin:
            events = await admin.get("/events", params={"type": "budget.exhausted"})
        assert [e["data"]["scope"] for e in events.json()["data"]] == [f"key:{key['id']}"]
