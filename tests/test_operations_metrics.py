"""The operations metrics of the data plane's /metrics, by value: usage records waiting
in the spool (a real `UsageRecorder` with a real spool file, first with no database to
write to, then replaying into PostgreSQL), budgets spent (a tenant's budget runs out
through real requests and the control plane's budget check), and the cost by tenant
and model (equal to the cost of the requests' usage rows)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from data_plane.metrics import UsageCollector
from data_plane.usage import UsageRecorder
from tests.support.database import clone_database, drop_database, with_db
from tests.support.processes import free_port
from tests.support.stack import Stack, start_stack
from tests.support.usage_records import usage_record

pytestmark = pytest.mark.timeout(90)

MODEL = "ops-metrics-model"
CHAT = "/v1/chat/completions"
FAST = {
    "SLUICE_FLEET_SYNC_INTERVAL": "0.05",
    "SLUICE_USAGE_FLUSH_INTERVAL": "0.05",
    "SLUICE_BUDGET_CHECK_INTERVAL": "0.1",
}
OUTPUT_PER_MILLION = 2500.0


async def _until(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "the recorder never got there"
        await asyncio.sleep(0.01)


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


async def test_the_spool_gauge_counts_the_records_waiting_on_disk(
    tmp_path: Path, database_url: str
) -> None:
    spool = tmp_path / "usage.jsonl"
    nowhere = f"postgresql://sluice@127.0.0.1:{free_port()}/none"  # nothing listens there
    recorder = UsageRecorder(nowhere, str(spool), max_buffer=4, interval=0.01)
    registry = CollectorRegistry()
    registry.register(UsageCollector(recorder))

    def waiting() -> float | None:
        return registry.get_sample_value("sluice_usage_spooled_records")

    assert waiting() == 0
    for _ in range(10):
        recorder.record(usage_record(MODEL))  # past the buffer, the oldest go to the spool file
    assert waiting() == _lines(spool) > 0
    # the database stays out of reach: the replay takes the file and fails to write it
    task = asyncio.create_task(recorder.run())
    try:
        await _until(lambda: recorder.failures >= 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await recorder.close(grace=0.1)  # the buffer joins the spool: all ten wait
    assert waiting() == 10
    assert _lines(spool) + _lines(spool.with_name(spool.name + ".replay")) == 10
    # a recorder with a database replays them (a spool left by a process read once taken)
    again = UsageRecorder(database_url, str(spool), interval=0.01)
    registry = CollectorRegistry()
    registry.register(UsageCollector(again))
    task = asyncio.create_task(again.run())
    try:
        await _until(lambda: again.written >= 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await again.close(grace=1)
    assert registry.get_sample_value("sluice_usage_spooled_records") == 0


@pytest.fixture(scope="module")
async def ops(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    name = await clone_database(pg_url, template_db)
    stack = start_stack(with_db(pg_url, name), log_dir, handed_out, data_planes=1, extra_env=FAST)
    yield stack
    stack.stop()
    await drop_database(pg_url, name)


async def _scrape(stack: Stack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(stack.data_plane_urls[0] + "/metrics")
    assert resp.status_code == 200, resp.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def _exhausted(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], scope: str) -> float:
    return metrics[("sluice_budgets_exhausted", frozenset({("scope", scope)}))]


async def _tenant_with_key(stack: Stack, policy: dict[str, Any] | None) -> tuple[str, str]:
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    if policy is not None:
        async with stack.admin() as admin:
            resp = await admin.put(f"/tenants/{tenant['id']}/policy", json=policy)
            assert resp.status_code == 200, resp.text
    await stack.until_model(key["key"], MODEL)
    return tenant["id"], key["key"]


async def _chat(stack: Stack, key: str) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "four words right here"}]}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            stack.data_plane_urls[0] + CHAT, json=body, headers={"authorization": f"Bearer {key}"}
        )


async def _usage(stack: Stack, tenant_id: str, answered: int) -> tuple[float, int]:
    """The tenant's recorded cost and completion tokens, once its `answered` rows are in."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        deadline = time.monotonic() + 10
        while True:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(sum(cost_usd), 0) AS usd,"
                " coalesce(sum(completion_tokens), 0) AS tokens"
                " FROM usage WHERE tenant_id = $1 AND status = 200",
                uuid.UUID(tenant_id),
            )
            assert row is not None
            if row["n"] == answered:
                return float(row["usd"]), int(row["tokens"])
            assert time.monotonic() < deadline, f"{row['n']} of {answered} usage rows"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_spent_budgets_and_cost_by_tenant_and_model(ops: Stack) -> None:
    provider = await ops.create_provider()
    await ops.create_route(MODEL, provider["id"], "fake-ops")
    async with ops.admin() as admin:
        price = {"input_per_million": 0, "output_per_million": OUTPUT_PER_MILLION}
        resp = await admin.put(f"/prices/{MODEL}", json=price)
        assert resp.status_code == 200, resp.text
    capped, capped_key = await _tenant_with_key(ops, {"budget_usd": 0.08, "budget_period": "day"})
    free, free_key = await _tenant_with_key(ops, None)
    before = await _scrape(ops)
    assert _exhausted(before, "tenant") == 0
    assert _exhausted(before, "key") == 0

    answered = {capped: 0, free: 0}
    for _ in range(2):
        resp = await _chat(ops, free_key)
        assert resp.status_code == 200, resp.text
        answered[free] += 1
    refused = False
    for _ in range(6):  # about $0.05 a request: the third at most is refused
        resp = await _chat(ops, capped_key)
        if resp.status_code == 429:
            assert resp.json()["error"]["code"] == "budget_exceeded"
            refused = True
            break
        assert resp.status_code == 200, resp.text
        answered[capped] += 1
        await _usage(ops, capped, answered[capped])  # spend is read from the database
    assert refused

    # the control plane's budget check appends budget.exhausted; the snapshot follows
    deadline = time.monotonic() + 10
    while _exhausted(metrics := await _scrape(ops), "tenant") != 1:
        assert time.monotonic() < deadline, "the tenant's budget never showed as spent"
        await asyncio.sleep(0.1)
    assert _exhausted(metrics, "key") == 0

    for tenant in (capped, free):
        usd, tokens = await _usage(ops, tenant, answered[tenant])
        assert usd > 0
        assert usd == pytest.approx(tokens * OUTPUT_PER_MILLION / 1e6)
        series = ("sluice_cost_usd_total", frozenset({("tenant", tenant), ("model", MODEL)}))
        assert metrics[series] == pytest.approx(usd)
