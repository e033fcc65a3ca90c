"""How fast a revocation reaches every data plane, and how fast a data plane starts.

    .venv/bin/python -m bench.propagation [--keys 100000] [--tenants 10000] [--trials 200]

Sets up a database of its own on the local PostgreSQL (scripts/pg.sh), fills it
with TENANTS tenants and KEYS keys, stores a snapshot, then:

1. starts 4 data-plane processes and measures each one's time from process
   start to a 200 from /readyz (it loads the snapshot), and its resident memory,
   against a data plane started on an empty database;
2. runs TRIALS revocations through the admin API: for each, the time from the
   DELETE's 204 to the moment each data plane answers 401 for that key.

Each data plane runs as deployed: disk cache on (its own file, empty at start),
safety poll every 5 s.

The bulk tenants and keys are written as events with COPY (the admin API would
take minutes for 100,000 keys); every key that is revoked is created through
the admin API. Writes JSON to bench/results/propagation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from bench.support import ROOT, Proc, free_port, pct, rss_kib, scratch_database
from shared.events import KeyCreated, TenantCreated, encode_payload, event_type
from shared.secrets import hash_client_key
from shared.snapshots import write_snapshot

RESULTS = ROOT / "bench" / "results"


class Server(Proc):
    """`python -m MODULE --port P`; each keeps its disk cache (as deployed), starting
    without one."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cache = log.with_suffix(".cache")
        cache.unlink(missing_ok=True)
        env = {**env, "SLUICE_SNAPSHOT_CACHE": str(cache)}
        super().__init__(log.stem, [sys.executable, "-m", module, "--port", str(port)], env, log)

    def wait(self, path: str) -> float:
        """Seconds from process start until `path` answered 200."""
        return self.wait_http(self.url + path, timeout=60)


async def _fill(url: str, tenants: int, keys: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        tenant_ids = [str(uuid.uuid4()) for _ in range(tenants)]
        rows = []
        for tid in tenant_ids:
            tenant = TenantCreated(id=tid, name=f"bench-{tid[:8]}")
            rows.append(
                (f"tenant:{tid}", 1, event_type(tenant), encode_payload(tenant).decode(), "bench")
            )
        for i in range(keys):
            kid = str(uuid.uuid4())
            secret = "sk-sluice-bench-" + secrets.token_hex(8)
            payload = KeyCreated(
                id=kid,
                tenant_id=tenant_ids[i % tenants],
                name="",
                prefix=secret[:16],
                hash=hash_client_key(secret),
            )
            rows.append(
                (
                    f"key:{kid}",
                    1,
                    event_type(payload),
                    encode_payload(payload).decode(),
                    "system:bench",
                )
            )
        await conn.copy_records_to_table(
            "events", records=rows, columns=["stream", "stream_version", "type", "data", "actor"]
        )
        await write_snapshot(conn)
    finally:
        await conn.close()


async def _trial(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, planes: list[str], tenant_id: str
) -> list[float]:
    key = (await admin.post(f"/tenants/{tenant_id}/keys", json={})).json()
    auth = {"authorization": f"Bearer {key['key']}"}
    for url in planes:  # every plane accepts it first, or the trial means nothing
        for _ in range(2000):
            if (await client.get(url + "/v1/models", headers=auth)).status_code == 200:
                break
            await asyncio.sleep(0.001)
        else:
            raise RuntimeError(f"{url} never accepted the new key")
    resp = await admin.delete(f"/keys/{key['id']}")
    t0 = time.perf_counter()
    assert resp.status_code == 204, resp.text

    async def refused(url: str) -> float:
        while True:
            if (await client.get(url + "/v1/models", headers=auth)).status_code == 401:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > 10:
                raise TimeoutError(url)

    return list(await asyncio.gather(*(refused(u) for u in planes)))


async def _trials(
    cp: str, token: str, planes: list[str], tenant_id: str, n: int
) -> list[list[float]]:
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=len(planes) + 2)
    async with (
        httpx.AsyncClient(base_url=cp + "/admin/v1", headers=headers, timeout=10) as admin,
        httpx.AsyncClient(timeout=5, limits=limits) as client,
    ):
        return [await _trial(admin, client, planes, tenant_id) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--planes", type=int, default=4)
    args = parser.parse_args()

    url, drop_database = scratch_database("sluice_bench")
    work = ROOT / ".bench" / "propagation"
    work.mkdir(parents=True, exist_ok=True)
    env = {
        "SLUICE_DATABASE_URL": url,
        "SLUICE_ADMIN_TOKEN": "bench-" + secrets.token_urlsafe(16),
        "SLUICE_SECRET_KEY": secrets.token_urlsafe(32),
        "SLUICE_LOG_LEVEL": "warning",
    }
    procs: list[Proc] = []
    try:
        # a data plane on the empty database, for the memory baseline
        empty = Server("data_plane", env, work / "empty.log")
        procs.append(empty)
        empty.wait("/readyz")
        time.sleep(0.5)
        baseline_kib = rss_kib(empty.proc.pid)
        empty.stop()

        started = time.monotonic()
        asyncio.run(_fill(url, args.tenants, args.keys))
        fill_s = time.monotonic() - started

        cp = Server("control_plane", env, work / "control-plane.log")
        procs.append(cp)
        planes = [Server("data_plane", env, work / f"dp{i}.log") for i in range(args.planes)]
        procs += planes
        ready_s = [p.wait("/readyz") for p in planes]
        cp.wait("/readyz")
        time.sleep(0.5)
        loaded_kib = [rss_kib(p.proc.pid) for p in planes]

        single = Server("data_plane", env, work / "single.log")  # alone: no contention
        procs.append(single)
        single_ready_s = single.wait("/readyz")
        single.stop()

        tenant = httpx.post(
            cp.url + "/admin/v1/tenants",
            json={"name": "bench-trials"},
            headers={"authorization": f"Bearer {env['SLUICE_ADMIN_TOKEN']}"},
        ).json()
        gc.disable()  # the poller's own collections would show up as propagation delay
        trials = asyncio.run(
            _trials(
                cp.url,
                env["SLUICE_ADMIN_TOKEN"],
                [p.url for p in planes],
                tenant["id"],
                args.trials,
            )
        )
    finally:
        gc.enable()
        for proc in procs:
            proc.stop()
        drop_database()

    every = [t * 1000 for trial in trials for t in trial]
    worst = [max(trial) * 1000 for trial in trials]
    per_key_bytes = (statistics.mean(loaded_kib) - baseline_kib) * 1024 / args.keys
    result = {
        "keys": args.keys,
        "tenants": args.tenants,
        "data_planes": args.planes,
        "trials": args.trials,
        "fill_seconds": round(fill_s, 2),
        "revocation_ms_all_planes": {
            "p50": round(pct(every, 50), 2),
            "p99": round(pct(every, 99), 2),
            "max": round(max(every), 2),
        },
        "revocation_ms_slowest_plane_per_trial": {
            "p50": round(pct(worst, 50), 2),
            "p99": round(pct(worst, 99), 2),
            "max": round(max(worst), 2),
        },
        "start_to_ready_seconds": {
            "four_at_once": [round(s, 2) for s in ready_s],
            "alone": round(single_ready_s, 2),
        },
        "rss_mib": {
            "empty": round(baseline_kib / 1024, 1),
            "loaded": [round(r / 1024, 1) for r in loaded_kib],
        },
        "bytes_per_key": round(per_key_bytes),
        "slowest_trials_ms": [
            [round(t * 1000, 1) for t in trial]
            for trial in sorted(trials, key=max, reverse=True)[:5]
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "propagation.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
