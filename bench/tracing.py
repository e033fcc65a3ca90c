"""Requests per second with tracing off and on, and (optionally) before tracing existed.

    .venv/bin/python -m bench.tracing [--before /tmp/sluice-before] [--rounds 3] [--quick]

One fake upstream; Sluice set up as in bench/compare.py (a key with limits and a
budget, prices, usage recording), once per variant, its data plane pinned to core 0:

- `off`: this tree, SLUICE_OTLP_ENDPOINT unset;
- `on`: this tree, spans exported over OTLP/HTTP to a local sink that discards them;
- `before` (with `--before TREE`): the data plane of another source tree, e.g. a
  `git worktree add /tmp/sluice-before HEAD` of the commit before tracing.

Rounds are interleaved (each round measures every variant, non-stream and stream, at
concurrency 16), each run bounded in requests and seconds; the table gives each
variant's median req/s. Everything listens on 127.0.0.1. Writes
bench/results/tracing.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.compare import (
    CLIENT_CORE,
    WORK,
    Target,
    bench_proc,
    measure,
    start_sluice,
    start_upstream,
)
from bench.support import Proc, free_port, save_results

CONCURRENCY = 16


class _Discard(BaseHTTPRequestHandler):
    """OTLP/HTTP's answer to an export, whatever it held: 200, empty."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def sink(port: int) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), _Discard).serve_forever()


def _variants(before: str | None) -> list[tuple[str, str, dict[str, str]]]:
    """(name, module, data-plane environment) of each variant."""
    found = [("off", "data_plane", {}), ("on", "data_plane", {"SLUICE_OTLP_ENDPOINT": ""})]
    if before is not None:
        found.insert(0, ("before", "bench.from_tree", {"SLUICE_BENCH_TREE": before}))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="a source tree to run the `before` data plane from")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # run the OTLP sink
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    procs: list[Proc] = []
    cleanups: list[Callable[[], None]] = []
    rows: list[dict[str, Any]] = []
    try:
        upstream = start_upstream(procs, "tracing-upstream", "--tokens", "20")
        sink_port = free_port()
        procs.append(
            bench_proc(
                "otlp-sink",
                [sys.executable, "-m", "bench.tracing", "--sink", str(sink_port)],
                {},
                CLIENT_CORE,
            )
        )
        targets: list[tuple[str, Target]] = []
        for name, module, env in _variants(args.before):
            if "SLUICE_OTLP_ENDPOINT" in env:
                env["SLUICE_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
            env["SLUICE_SNAPSHOT_CACHE"] = str(WORK / f"tracing-{name}-cache.msgpack")
            env["SLUICE_USAGE_SPOOL"] = str(WORK / f"tracing-{name}-usage.spool")
            target = start_sluice(upstream, procs, cleanups, module, data_plane_env=env)
            targets.append((name, target))
        total, seconds = (1500, 5.0) if args.quick else (4000, 10.0)
        for round_ in range(args.rounds):
            for stream in (False, True):
                for name, target in targets:
                    row = measure(target, CONCURRENCY, stream, total, seconds)
                    row.update(variant=name, round=round_)
                    rows.append(row)
                    print(f"round {round_} {name:6} stream={stream!s:5} {row['rps']} req/s")
    finally:
        for proc in reversed(procs):
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    save_results("tracing.json", rows)
    print(_table(rows))


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | stream | median req/s | runs (req/s) | median gateway CPU µs/req |"]
    lines.append("|---|---|---|---|---|")
    for name in dict.fromkeys(r["variant"] for r in rows):
        for stream in (False, True):
            mine = [r for r in rows if r["variant"] == name and r["stream"] == stream]
            rps = [r["rps"] for r in mine]
            cpu = [r["gateway_cpu_us_per_request"] for r in mine]
            runs = ", ".join(f"{x:g}" for x in rps)
            lines.append(
                f"| {name} | {stream} | {statistics.median(rps):g} | {runs} "
                f"| {statistics.median(cpu):g} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
