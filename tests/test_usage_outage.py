"""No usage record is lost or doubled: 1,000 requests through two data planes while
PostgreSQL is stopped for 15 s and one data plane restarts (SIGTERM) meanwhile."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.own_postgres import OwnPostgres
from tests.support.stack import start_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TOTAL = 1000


async def test_every_request_is_recorded_once_through_an_outage_and_a_restart(
    own_pg: OwnPostgres, log_dir: Path, handed_out: list[str]
) -> None:
    stack = start_stack(
        own_pg.url(),
        log_dir,
        handed_out,
        data_planes=2,
        extra_env={"SLUICE_SNAPSHOT_CACHE_INTERVAL": "0", "SLUICE_USAGE_FLUSH_INTERVAL": "0.1"},
    )
    try:
        provider = await stack.create_provider()
        await stack.create_route("outage-usage-model", provider["id"], "fake-usage")
        async with stack.admin() as admin:  # (2 + 20 tokens) x $1,000 per million: $0.022
            await admin.put(
                "/prices/outage-usage-model",
                json={"input_per_million": 1000, "output_per_million": 1000},
            )
        tenant = await stack.create_tenant()
        key = await stack.create_key(tenant["id"])
        await stack.until_model(key["key"], "outage-usage-model")
        await asyncio.sleep(0.5)  # both data planes write their snapshot cache
        auth = {"authorization": f"Bearer {key['key']}"}
        body = {"model": "outage-usage-model", "messages": [{"role": "user", "content": "one two"}]}
        ok: list[str] = []
        second_is_up = True
        start = time.monotonic()

        async def worker(w: int, client: httpx.AsyncClient) -> None:
            i = w
            while len(ok) < TOTAL:
                plane = 1 if i % 2 and second_is_up else 0
                i += 1
                try:
                    resp = await client.post(
                        stack.data_plane_urls[plane] + "/v1/chat/completions",
                        json=body,
                        headers=auth,
                    )
                except httpx.TransportError:
                    continue  # the restarting data plane: never reached, never recorded
                if resp.status_code == 200:
                    ok.append(resp.json()["id"])
                await asyncio.sleep(0.04)

        async def chaos() -> None:
            nonlocal second_is_up
            await asyncio.sleep(2)
            own_pg.stop()
            down = time.monotonic()
            await asyncio.sleep(3)
            second_is_up = False
            port = int(stack.data_plane_urls[1].rsplit(":", 1)[1])
            restarting = stack.servers.pop(3)  # fake, control plane, plane 0, plane 1
            # graceful, during the outage (uvicorn exits by re-raising the SIGTERM it handled)
            assert await asyncio.to_thread(restarting.stop) in (0, -15)
            assert "Application shutdown complete" in restarting.log()
            again = stack.start_data_plane(port)
            await asyncio.to_thread(again.wait_http, stack.data_plane_urls[1] + "/readyz")
            second_is_up = True  # serving from its disk cache
            await asyncio.sleep(max(15 - (time.monotonic() - down), 0))
            own_pg.start()

        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(chaos(), *(worker(w, client) for w in range(4)))
        assert len(ok) >= TOTAL  # the workers' last requests may land after the 1,000th
        assert time.monotonic() - start > 15

        conn = await asyncpg.connect(own_pg.url())
        try:
            deadline = time.monotonic() + 60
            while (n := await conn.fetchval("SELECT count(*) FROM usage")) < len(ok):
                assert time.monotonic() < deadline, f"only {n} of {len(ok)} records arrived"
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)  # and no more come
            rows = await conn.fetch(
                "SELECT request_id, prompt_tokens, completion_tokens, status FROM usage"
            )
            spent = await conn.fetchval(
                "SELECT sum(usd) FROM spend WHERE scope = $1", f"key:{key['id']}"
            )
            rolled = await conn.fetchrow(
                "SELECT sum(requests) AS n, sum(completion_tokens) AS c FROM usage_hourly"
            )
        finally:
            await conn.close()
        assert len(rows) == len(ok)
        assert len({r["request_id"] for r in rows}) == len(ok)
        assert {(r["prompt_tokens"], r["completion_tokens"], r["status"]) for r in rows} == {
            (2, 20, 200)
        }
        # spend and roll-ups count each record once, replays included
        assert spent == pytest.approx(len(ok) * 0.022)
        assert (rolled["n"], rolled["c"]) == (len(ok), 20 * len(ok))
        assert "spooled" in (log_dir / f"data-plane-{port_of(stack, 1)}.log").read_text()
    finally:
        stack.stop()


def port_of(stack: object, index: int) -> int:
    urls: list[str] = stack.data_plane_urls  # type: ignore[attr-defined]
    return int(urls[index].rsplit(":", 1)[1])
