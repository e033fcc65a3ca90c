"""A soak: 200,000 requests through one data-plane process, its resident memory
sampled after every block of 10,000.

    .venv/bin/python -m bench.soak [--requests 200000] [--block 10000]

Sluice runs with its checks on, as in bench/compare.py (rate limits, a budget,
prices, usage recording, fleet sync). Every fourth block is streamed, the rest
are not, at concurrency 64. The target: memory after the last block within 10 %
of memory after the first, and no failed request. Writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from bench.compare import CLIENT_CORE, Target, start_sluice, start_upstream
from bench.loadgen import run_load
from bench.support import ROOT, Proc, rss_kib


class _Churn:
    """Creates keys through the admin API at a steady rate, in a thread."""

    def __init__(self, target: Target, per_second: float) -> None:
        assert target.admin is not None
        assert target.tenant_id is not None
        base_url, headers = target.admin
        self._client = httpx.Client(base_url=base_url, headers=headers, timeout=10)
        self._path = f"/tenants/{target.tenant_id}/keys"
        self._pause = 1 / per_second
        self._done = threading.Event()
        self.made = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._pause):
            self._client.post(self._path, json={"name": "churn"}).raise_for_status()
            self.made += 1

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self._client.close()


async def _usage_rows(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM usage"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--block", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--events-per-second", type=float, default=0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    procs: list[Proc] = []
    cleanups: list[Callable[[], None]] = []
    blocks: list[dict[str, Any]] = []
    try:
        upstream = start_upstream(procs, "soak-upstream", "--tokens", "20")
        target = start_sluice(upstream, procs, cleanups)
        assert target.proc is not None
        pid = target.proc.proc.pid
        body = {"model": target.model, "messages": [{"role": "user", "content": "Hello there"}]}
        churn = _Churn(target, args.events_per_second) if args.events_per_second else None
        start_rss, started = rss_kib(pid), time.monotonic()
        done = 0
        while done < args.requests:
            stream = len(blocks) % 4 == 3
            size = min(args.block, args.requests - done)
            result = asyncio.run(
                run_load(
                    target.url,
                    body,
                    target.headers,
                    concurrency=args.concurrency,
                    total=size,
                    max_seconds=600,
                    stream=stream,
                )
            )
            done += result.requests
            blocks.append(
                {
                    "after_requests": done,
                    "stream": stream,
                    "rps": result.rps,
                    "errors": result.errors,
                    "statuses": result.statuses,
                    "rss_mib": round(rss_kib(pid) / 1024, 1),
                    "events": churn.made if churn else 0,
                }
            )
            print(json.dumps(blocks[-1]), file=sys.stderr)
        seconds = time.monotonic() - started
        if churn:
            churn.stop()
        target.proc.stop()  # a clean stop writes what is still buffered
        assert target.database_url is not None
        recorded = asyncio.run(_usage_rows(target.database_url))
    finally:
        for proc in procs:
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    first, last = blocks[0]["rss_mib"], blocks[-1]["rss_mib"]
    summary = {
        "requests": done,
        "errors": sum(b["errors"] for b in blocks),
        "usage_records": recorded,
        "events": blocks[-1]["events"],
        "seconds": round(seconds, 1),
        "rss_before_mib": round(start_rss / 1024, 1),
        "rss_after_first_block_mib": first,
        "rss_at_end_mib": last,
        "growth_percent": round((last - first) / first * 100, 1),
        "blocks": blocks,
    }
    out = ROOT / "bench" / "results" / ("soak-events.json" if churn else "soak.json")
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "blocks"}, indent=2))


if __name__ == "__main__":
    main()
