"""A deployment's own quota across two data planes, and the usage record of a request
that failed over. Real processes: the stack's control plane and two data planes
(sharing counters through PostgreSQL at the default interval), fake upstreams."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.support.routing import (
    chat,
    keyed_route,
    on_fake,
    open_route,
    set_faults,
    start_fake,
    stream_payloads,
    usage_of,
)
from tests.support.stack import Stack

RATE, SECONDS = 15, 10  # requests a second, for so long: 150 requests
# docs/limits.md: a fleet-wide limit is exceeded by at most what arrives in two sync
# intervals (SLUICE_FLEET_SYNC_INTERVAL, 0.25 s by default)
OVERSHOOT = math.ceil(RATE * 2 * 0.25)


async def _spread(
    stack: Stack, key: str, model: str, n: int, seconds: float
) -> list[tuple[int, str | None]]:
    """`n` requests evenly over `seconds`, 70 % to the first data plane and 30 % to the
    second; their statuses and error codes, in order."""
    gap, start = seconds / n, time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> httpx.Response:
            await asyncio.sleep(max(start + i * gap - time.monotonic(), 0))
            url = stack.data_plane_urls[0 if i % 10 < 7 else 1]
            return await chat(client, url, key, model)

        answers = await asyncio.gather(*(one(i) for i in range(n)))
    for refused in (a for a in answers if a.status_code == 429):
        assert int(refused.headers["retry-after"]) >= 1
    return [
        (a.status_code, a.json()["error"]["code"] if a.status_code != 200 else None)
        for a in answers
    ]


async def test_a_deployments_rpm_holds_across_two_data_planes_like_a_tenants(
    stack: Stack,
) -> None:
    """Per-deployment `rpm` holds across two data planes within the same bound as tenant
    limits: side by side at the same rate (15 requests/s, 70/30 over the two data
    planes), a deployment's rpm of 30 (the only deployment of its route) and a tenant's
    each admit 30 requests, plus at most what arrives in two sync intervals."""
    upstream = start_fake(stack)
    quota_key, quota_model, _ = await keyed_route(stack, [await on_fake(stack, upstream, rpm=30)])
    tenant = await stack.create_tenant()
    tenant_key = (await stack.create_key(tenant["id"]))["key"]
    async with stack.admin() as admin:
        resp = await admin.put(f"/tenants/{tenant['id']}/policy", json={"rpm": 30})
        assert resp.status_code == 200, resp.text
    # once both data planes serve the route they have the policy, which came before it
    tenant_model, _ = await open_route(stack, tenant_key, [await on_fake(stack, upstream)])
    by_quota, by_tenant = await asyncio.gather(
        _spread(stack, quota_key, quota_model, RATE * SECONDS, SECONDS),
        _spread(stack, tenant_key, tenant_model, RATE * SECONDS, SECONDS),
    )
    quota, limit = Counter(s for s, _ in by_quota), Counter(s for s, _ in by_tenant)
    print(f"rpm 30 across two data planes: deployment {dict(quota)}, tenant {dict(limit)}")
    assert 30 <= quota[200] <= 30 + OVERSHOOT, quota
    assert 30 <= limit[200] <= 30 + OVERSHOOT, limit
    assert {c for _, c in by_quota} == {None, "deployment_quota_exceeded"}
    assert {c for _, c in by_tenant} == {None, "rate_limit_exceeded"}
    admitted_by_plane = Counter(i % 10 < 7 for i, (s, _) in enumerate(by_quota) if s == 200)
    assert len(admitted_by_plane) == 2  # both data planes admitted some: one shared quota


async def test_usage_names_the_deployment_that_answered_after_a_failover(stack: Stack) -> None:
    """Usage records name the deployment and the number of attempts after a failover
    (the first deployment fails with 503, the second answers): the row's deployment_id,
    provider_id and upstream_model are the second's, attempts == 2, cost and tokens
    those of the answer; the failed attempt is not billed (its provider's price is
    ten times the other's and counts for nothing)."""
    failing, answering = start_fake(stack), start_fake(stack)
    await set_faults(failing, status=503)
    first = await on_fake(stack, failing, priority=0)  # tried first
    second = await on_fake(stack, answering, priority=1)
    prices = {first["provider_id"]: (10.0, 20.0), second["provider_id"]: (1.0, 2.0)}
    async with stack.admin() as admin:
        for provider_id, (per_input, per_output) in prices.items():
            price = {"input_per_million": per_input, "output_per_million": per_output}
            resp = await admin.put(f"/providers/{provider_id}/price", json=price)
            assert resp.status_code == 200, resp.text
    key, model, (_, answered) = await keyed_route(stack, [first, second])
    async with httpx.AsyncClient(timeout=30) as client:
        for stream in (False, True):
            extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if stream else {}
            resp = await chat(client, stack.data_plane_urls[0], key, model, stream=stream, **extra)
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-sluice-deployment"] == answered
            assert resp.headers["x-sluice-attempts"] == "2"
            usage = _usage_of_answer(resp, stream)
            row = await usage_of(stack, resp)
            assert str(row["deployment_id"]) == answered
            assert row["attempts"] == 2
            assert (str(row["provider_id"]), row["upstream_model"]) == (
                second["provider_id"],
                second["upstream_model"],
            )
            tokens = (row["prompt_tokens"], row["completion_tokens"])
            assert tokens == (usage["prompt_tokens"], usage["completion_tokens"])
            expected = (tokens[0] * 1.0 + tokens[1] * 2.0) / 1_000_000
            assert row["cost_usd"] == pytest.approx(expected, rel=1e-9)
            assert (row["status"], row["error_code"], row["stream"]) == (200, None, stream)


def _usage_of_answer(resp: httpx.Response, stream: bool) -> dict[str, Any]:
    """The usage the client was told: the answer's, or a stream's usage event."""
    if not stream:
        usage: dict[str, Any] = resp.json()["usage"]
        return usage
    chunks = [json.loads(p) for p in stream_payloads(resp) if p != "[DONE]"]
    (usage,) = [c["usage"] for c in chunks if c.get("usage")]
    return usage
