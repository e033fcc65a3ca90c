"""The numbers behind the data plane's HTTP stack (docs/decisions/0001): a bare
forwarding proxy (bench/stack_app.py) measured with each upstream client, server
setting and framework, pinned to one core as in bench/compare.py.

    .venv/bin/python -m bench.stack [--seconds 6] [--memory-streams 1000]

Variants: plain ASGI or Litestar; aiohttp or httpx as the upstream client;
uvicorn with uvloop + httptools or with asyncio + h11. Each is measured at
concurrency 1 and 64, streaming and not, and (plain ASGI under uvloop + httptools)
for memory per open slow stream. Writes bench/results/stack.json and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.compare import (
    CLIENT_CORE,
    GATEWAY_CORE,
    bench_proc,
    measure,
    start_sluice,
    start_upstream,
)
from bench.loadgen import run_load
from bench.memory import hold_streams
from bench.support import ROOT, Proc, free_port, rss_kib

SLUICE = "Sluice (its whole request path)"
VARIANTS = [
    # name, framework, client, loop, http
    ("plain + aiohttp, uvloop + httptools", "plain", "aiohttp", "uvloop", "httptools"),
    ("plain + httpx, uvloop + httptools", "plain", "httpx", "uvloop", "httptools"),
    ("plain + aiohttp, asyncio + h11", "plain", "aiohttp", "asyncio", "h11"),
    ("Litestar + aiohttp, uvloop + httptools", "litestar", "aiohttp", "uvloop", "httptools"),
]


def _start(upstream: str, framework: str, client: str, loop: str, http: str) -> tuple[Proc, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bench.stack_app:app", "--port", str(port)]
    cmd += ["--loop", loop, "--http", http, "--no-access-log", "--log-level", "warning"]
    env = {
        "STACK_UPSTREAM": upstream + "/v1",
        "STACK_CLIENT": client,
        "STACK_FRAMEWORK": framework,
        "PYTHONPATH": str(ROOT),
    }
    proc = bench_proc(f"stack-{framework}-{client}-{http}", cmd, env, GATEWAY_CORE)
    proc.wait_http(f"http://127.0.0.1:{port}/", ready_below=500)
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def _load(url: str, concurrency: int, stream: bool, seconds: float) -> dict[str, Any]:
    body = {"model": "fake-1", "messages": [{"role": "user", "content": "Hello there"}]}
    result = asyncio.run(
        run_load(
            url,
            body,
            {},
            concurrency=concurrency,
            total=10**7,
            max_seconds=seconds,
            stream=stream,
        )
    )
    return {"rps": result.rps, "p50_ms": result.p50_ms, "errors": result.errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--memory-streams", type=int, default=1000)
    parser.add_argument(
        "--sluice-only",
        action="store_true",
        help="only the bare aiohttp proxy and Sluice (the relay's share of a bare proxy)",
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    procs: list[Proc] = []
    cleanups: list[Callable[[], None]] = []
    rows: list[dict[str, Any]] = []
    variants = VARIANTS[:1] if args.sluice_only else VARIANTS
    try:
        fast = start_upstream(procs, "stack-upstream", "--tokens", "20")
        slow = start_upstream(procs, "stack-slow-upstream", "--delay-ms", "500", "--tokens", "240")
        direct = fast + "/v1/chat/completions"
        for concurrency in (1, 64):  # the upstream alone, for the latency a proxy adds
            row = {"variant": "direct", "stream": False, "concurrency": concurrency}
            row |= _load(direct, concurrency, False, args.seconds)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        for name, framework, client, loop, http in variants:
            proc, url = _start(fast, framework, client, loop, http)
            _load(url, 16, False, 1)  # warm up
            for stream in (False, True):
                for concurrency in (1, 64):
                    row = {"variant": name, "stream": stream, "concurrency": concurrency}
                    row |= _load(url, concurrency, stream, args.seconds)
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
            proc.stop()
            if framework == "plain" and loop == "uvloop" and not args.sluice_only:
                proc, url = _start(slow, framework, client, loop, http)
                time.sleep(1)
                pid = proc.proc.pid
                before = rss_kib(pid)
                n = args.memory_streams
                during = asyncio.run(hold_streams(url, {}, "fake-1", "slowly", n, pid))
                row = {"variant": name, "open_streams": n}
                row["bytes_per_stream"] = round((during - before) * 1024 / n)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
                proc.stop()
        rows += _sluice(fast, procs, cleanups, args.seconds)
    finally:
        for proc in procs:
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    name = "stack-sluice.json" if args.sluice_only else "stack.json"
    (ROOT / "bench" / "results" / name).write_text(json.dumps(rows, indent=2) + "\n")
    print(_table(rows))


def _sluice(
    upstream: str, procs: list[Proc], cleanups: list[Callable[[], None]], seconds: float
) -> list[dict[str, Any]]:
    """Sluice itself on the same upstream and loads: what its request path keeps of a
    bare forwarding proxy's req/s."""
    target = start_sluice(upstream, procs, cleanups)
    measure(target, 16, False, 2000, 1)  # warm up
    rows = []
    for stream in (False, True):
        for concurrency in (1, 64):
            row = {"variant": SLUICE, "stream": stream, "concurrency": concurrency}
            result = measure(target, concurrency, stream, 10**7, seconds)
            row |= {k: result[k] for k in ("rps", "p50_ms", "errors")}
            row["cpu_us_per_request"] = result["gateway_cpu_us_per_request"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    if target.proc is not None:
        target.proc.stop()
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    direct = {r["concurrency"]: r for r in rows if r["variant"] == "direct"}
    lines = [
        "| variant | non-stream c=1 | added p50 c=1 | non-stream c=64 | stream c=1 | stream c=64 "
        "| per open stream |",
        "|---|---|---|---|---|---|---|",
    ]
    present = {r["variant"] for r in rows}
    for name in [v[0] for v in VARIANTS] + [SLUICE]:
        if name not in present:
            continue
        cells = {
            (r["stream"], r["concurrency"]): f"{r['rps']:,.0f} req/s"
            + (f" ({r['errors']} errors)" if r["errors"] else "")
            for r in rows
            if r["variant"] == name and "rps" in r
        }
        base = direct[1]["p50_ms"] if 1 in direct else None
        p50 = [
            r["p50_ms"] - base
            for r in rows
            if base is not None
            and r["variant"] == name
            and r.get("concurrency") == 1
            and not r.get("stream")
        ]
        memory = [
            r["bytes_per_stream"] for r in rows if r["variant"] == name and "open_streams" in r
        ]
        lines.append(
            f"| {name} | {cells.get((False, 1), '')} | {f'{p50[0]:.2f} ms' if p50 else ''} "
            f"| {cells.get((False, 64), '')} "
            f"| {cells.get((True, 1), '')} | {cells.get((True, 64), '')} "
            f"| {f'{memory[0] / 1000:.1f} KB' if memory else ''} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
