"""A bounded load generator: `total` requests at `concurrency`, for at most
`max_seconds`, measuring latency and, for streams, time to first byte.

Used by bench/compare.py; also runnable alone:

    .venv/bin/python bench/loadgen.py URL --concurrency 64 --total 5000 [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from bench.support import pct

__all__ = ["Result", "run_load"]


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    ttfb_p50_ms: float | None
    ttfb_p99_ms: float | None
    statuses: dict[str, int]


async def run_load(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    concurrency: int,
    total: int,
    max_seconds: float,
    stream: bool,
) -> Result:
    payload = json.dumps({**body, "stream": stream}).encode()
    headers = {**headers, "content-type": "application/json"}
    latencies: list[float] = []
    ttfbs: list[float] = []
    statuses: dict[str, int] = {}
    issued = 0
    deadline = time.monotonic() + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal issued
            while issued < total and time.monotonic() < deadline:
                issued += 1
                start = time.perf_counter()
                first = None
                try:
                    async with session.post(url, data=payload, headers=headers) as resp:
                        async for _ in resp.content.iter_any():
                            if first is None:
                                first = time.perf_counter()
                        key = str(resp.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    key = type(exc).__name__
                end = time.perf_counter()
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    latencies.append((end - start) * 1000)
                    if stream and first is not None:
                        ttfbs.append((first - start) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    ok = len(latencies)
    return Result(
        requests=sum(statuses.values()),
        errors=sum(statuses.values()) - ok,
        seconds=round(seconds, 3),
        rps=round(ok / seconds, 1) if seconds else 0.0,
        p50_ms=round(pct(latencies, 50), 3),
        p99_ms=round(pct(latencies, 99), 3),
        ttfb_p50_ms=round(pct(ttfbs, 50), 3) if ttfbs else None,
        ttfb_p99_ms=round(pct(ttfbs, 99), 3) if ttfbs else None,
        statuses=statuses,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--total", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--key", default="")
    parser.add_argument("--model", default="demo-model")
    args = parser.parse_args()
    body = {"model": args.model, "messages": [{"role": "user", "content": "Hello there"}]}
    headers = {"authorization": f"Bearer {args.key}"} if args.key else {}
    result = asyncio.run(
        run_load(
            args.url,
            body,
            headers,
            concurrency=args.concurrency,
            total=args.total,
            max_seconds=args.seconds,
            stream=args.stream,
        )
    )
    print(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    main()
