"""Resident memory per open stream in one data-plane process.

    .venv/bin/python -m bench.memory [--levels 100,1000,5000] [--prompt-chars 6] [--trace]

For each level, a fresh data plane (Sluice's checks on, as in bench/compare.py)
relays that many slow streams at once (the upstream sends a token every 0.5 s);
once every stream has delivered its first event, the data plane's resident
memory is compared with its memory before the streams opened. Writes
bench/results/memory.json (or memory-<chars>.json for a longer prompt). With
--trace the data plane runs under tracemalloc and the result also says whose code
allocated the memory each stream holds (uvicorn, aiohttp, uvloop, Sluice, …).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import signal
import sys
import time
import tracemalloc
from collections.abc import Callable

import aiohttp

from bench.compare import CLIENT_CORE, start_sluice, start_upstream
from bench.support import ROOT, Proc, rss_kib
from bench.traced_data_plane import TRACE_DIR


async def hold_streams(
    url: str,
    headers: dict[str, str],
    model: str,
    prompt: str,
    n: int,
    pid: int,
    at_peak: Callable[[], None] | None = None,
) -> int:
    """Open `n` streams, wait for each one's first event, measure, then let go."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    opened = asyncio.Semaphore(0)
    release = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=n + 10)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.post(url, json=body, headers=headers) as resp:
                assert resp.status == 200, resp.status
                await resp.content.readline()
                opened.release()
                await release.wait()

        tasks = [asyncio.create_task(one()) for _ in range(n)]
        deadline = time.monotonic() + 120
        for _ in range(n):
            await asyncio.wait_for(opened.acquire(), max(deadline - time.monotonic(), 0.1))
        await asyncio.sleep(1.0)
        rss = rss_kib(pid)
        if at_peak is not None:
            await asyncio.to_thread(at_peak)
        release.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return rss


def _snapshot(pid: int, n: int) -> None:
    """Have the traced data plane write snapshot `n`, and wait for it."""
    done = TRACE_DIR / f"snapshot-{n}.done"
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the traced data plane wrote no snapshot")
        time.sleep(0.1)


_PARTS = (  # where an allocation was made -> whose memory it is
    ("uvicorn/", "uvicorn (server side)"),
    ("aiohttp/", "aiohttp (upstream side)"),
    ("asyncio/runners.py", "uvloop (transports, sockets)"),
    ("asyncio/", "asyncio (tasks, events)"),
    ("/data_plane/", "Sluice"),
    ("/shared/", "Sluice"),
)


def _traced(streams: int) -> dict[str, int]:
    """Traced bytes per open stream, by whose code allocated them."""
    first = tracemalloc.Snapshot.load(str(TRACE_DIR / "snapshot-1.bin"))
    second = tracemalloc.Snapshot.load(str(TRACE_DIR / "snapshot-2.bin"))
    parts: dict[str, float] = {}
    for stat in second.compare_to(first, "filename"):
        filename = stat.traceback[0].filename
        part = next((name for key, name in _PARTS if key in filename), "other")
        parts[part] = parts.get(part, 0) + stat.size_diff / streams
    parts["total"] = sum(parts.values())
    return {name: round(size) for name, size in sorted(parts.items(), key=lambda p: -p[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="100,1000,5000")
    parser.add_argument("--prompt-chars", type=int, default=6, help="size of each request's prompt")
    parser.add_argument(
        "--trace", action="store_true", help="also break the memory down with tracemalloc"
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    results = []
    for level in (int(x) for x in args.levels.split(",")):
        procs: list[Proc] = []
        cleanups: list[Callable[[], None]] = []
        try:
            upstream = start_upstream(
                procs, "memory-upstream", "--delay-ms", "500", "--tokens", "240"
            )
            module = "bench.traced_data_plane" if args.trace else "data_plane"
            target = start_sluice(upstream, procs, cleanups, module)
            assert target.proc is not None
            pid = target.proc.proc.pid
            time.sleep(1)
            before = rss_kib(pid)
            if args.trace:
                _snapshot(pid, 1)
            prompt = "x" * args.prompt_chars
            peak = functools.partial(_snapshot, pid, 2) if args.trace else None
            during = asyncio.run(
                hold_streams(target.url, target.headers, target.model, prompt, level, pid, peak)
            )
            per_stream = (during - before) * 1024 / level
            results.append(
                {
                    "streams": level,
                    "prompt_chars": args.prompt_chars,
                    "rss_before_mib": round(before / 1024, 1),
                    "rss_open_mib": round(during / 1024, 1),
                    "bytes_per_stream": round(per_stream),
                }
            )
            if args.trace:  # tracing's own bookkeeping inflates RSS: report traced bytes
                results[-1]["traced_bytes_per_stream"] = _traced(level)
            print(json.dumps(results[-1]), file=sys.stderr)
        finally:
            for proc in procs:
                proc.stop()
            for cleanup in cleanups:
                cleanup()
    name = "memory.json" if args.prompt_chars == 6 else f"memory-{args.prompt_chars}.json"
    name = name.replace(".json", "-traced.json") if args.trace else name
    out = ROOT / "bench" / "results" / name
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
