"""Requests per second of one data plane with `--workers 1` and `--workers 2`.

    .venv/bin/python -m bench.workers [--rounds R] [--seconds S] [--concurrency C]

Two Sluice stacks (bench/compare.py's `start_sluice`: checks on, a key with limits
and a budget, usage recorded), one data plane started with each worker count, both
unpinned; the fake upstream (20 tokens) on core 1, the load generator unpinned.
The machine is shared, so the two are measured in interleaved rounds, each run
bounded in requests and seconds, all traffic on 127.0.0.1. Writes
bench/results/workers.json and prints a markdown table (every round, then the
medians).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

from bench.compare import measure, start_sluice, start_upstream
from bench.support import Proc, load_average, save_results

WORKERS = (1, 2)
MAX_REQUESTS = 30_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="at most, per run")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    procs: list[Proc] = []
    cleanups: list[Callable[[], None]] = []
    rows: list[dict[str, Any]] = []
    try:
        upstream = start_upstream(procs, "fake-upstream", "--tokens", "20")
        targets = {
            n: start_sluice(upstream, procs, cleanups, args=["--workers", str(n)], core=None)
            for n in WORKERS
        }
        for round_ in range(args.rounds):
            for stream in (False, True):
                for n, target in targets.items():
                    row = measure(target, args.concurrency, stream, MAX_REQUESTS, args.seconds)
                    row.update(workers=n, round=round_, load=load_average()[0])
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
    finally:
        for proc in procs:
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    save_results("workers.json", rows)
    print(_table(rows))


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workers | stream | round | req/s | p50 ms | p99 ms | errors | gateway CPU | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['stream']} | {r['round']} | {r['rps']:.0f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} "
            f"| {r['gateway_cpu_share']} | {r['load']:.1f} |"
        )
    lines += ["", "| workers | stream | median req/s |", "|---|---|---|"]
    for n in WORKERS:
        for stream in (False, True):
            rps = [r["rps"] for r in rows if r["workers"] == n and r["stream"] == stream]
            lines.append(f"| {n} | {stream} | {statistics.median(rps):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
