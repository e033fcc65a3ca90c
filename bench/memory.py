"""Resident memory per open stream in one data-plane process.

    .venv/bin/python -m bench.memory [--levels 100,1000,5000] [--prompt-chars 6]

For each level, a fresh data plane (Sluice's checks on, as in bench/compare.py)
relays that many slow streams at once (the upstream sends a token every 0.5 s);
once every stream has delivered its first event, the data plane's resident
memory is compared with its memory before the streams opened. Writes
bench/results/memory.json (or memory-<chars>.json for a longer prompt).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable

import aiohttp

from bench.compare import CLIENT_CORE, _start_sluice, start_upstream
from bench.support import ROOT, Proc, rss_kib


async def _hold(
    url: str, headers: dict[str, str], model: str, prompt: str, n: int, pid: int
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
        release.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="100,1000,5000")
    parser.add_argument("--prompt-chars", type=int, default=6, help="size of each request's prompt")
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
            target = _start_sluice(upstream, procs, cleanups)
            assert target.proc is not None
            pid = target.proc.proc.pid
            time.sleep(1)
            before = rss_kib(pid)
            prompt = "x" * args.prompt_chars
            during = asyncio.run(
                _hold(target.url, target.headers, target.model, prompt, level, pid)
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
            print(json.dumps(results[-1]), file=sys.stderr)
        finally:
            for proc in procs:
                proc.stop()
            for cleanup in cleanups:
                cleanup()
    name = "memory.json" if args.prompt_chars == 6 else f"memory-{args.prompt_chars}.json"
    out = ROOT / "bench" / "results" / name
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
