"""What translation costs: Sluice's CPU per request when the client's dialect is
the upstream's own (bytes relayed, usage read) against when it is not (read into
the canonical model and written in the client's dialect), in one run.

    .venv/bin/python -m bench.dialects [--seconds 10] [--concurrency 64]

One fake upstream (20 tokens a response) serves two routes: `bench-model`
through an OpenAI-kind provider and `bench-anthropic` through an Anthropic-kind
one. Four paths, streamed and not, at the given concurrency: OpenAI chat →
OpenAI (pass-through), Anthropic messages → Anthropic (pass-through), Anthropic
messages → OpenAI and OpenAI chat → Anthropic (translated). The data plane is
pinned to core 0, load and upstream to core 1, as in bench/compare.py. Writes
bench/results/dialects.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from bench.compare import CLIENT_CORE, Target, measure, start_sluice, start_upstream
from bench.support import ROOT, Proc

MESSAGES = [{"role": "user", "content": "Hello there"}]
# name, client dialect, route
PATHS = [
    ("OpenAI → OpenAI (pass-through)", "openai", "bench-model"),
    ("Anthropic → Anthropic (pass-through)", "anthropic", "bench-anthropic"),
    ("Anthropic → OpenAI (translated)", "anthropic", "bench-model"),
    ("OpenAI → Anthropic (translated)", "openai", "bench-anthropic"),
]


def _anthropic_route(target: Target, upstream: str) -> None:
    assert target.admin is not None
    url, headers = target.admin
    with httpx.Client(base_url=url, headers=headers, timeout=10) as admin:
        provider = admin.post(
            "/providers",
            json={
                "name": "fake-anthropic",
                "kind": "anthropic",
                "base_url": upstream,
                "api_key": "x",
            },
        )
        provider.raise_for_status()
        route = {
            "model": "bench-anthropic",
            "deployments": [{"provider_id": provider.json()["id"], "upstream_model": "fake-1"}],
        }
        admin.post("/routes", json=route).raise_for_status()
        price = {"input_per_million": 0.15, "output_per_million": 0.6}
        admin.put("/prices/bench-anthropic", json=price).raise_for_status()


def _path(target: Target, dialect: str, model: str) -> tuple[Target, dict[str, Any]]:
    base = target.url.removesuffix("/chat/completions")
    if dialect == "openai":
        return replace(target, url=base + "/chat/completions", model=model), {
            "model": model,
            "messages": MESSAGES,
        }
    key = target.headers["authorization"].removeprefix("Bearer ")
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    body = {"model": model, "max_tokens": 100, "messages": MESSAGES}
    return replace(target, url=base + "/messages", headers=headers, model=model), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    procs: list[Proc] = []
    cleanups: list[Callable[[], None]] = []
    rows: list[dict[str, Any]] = []
    try:
        upstream = start_upstream(procs, "fake-upstream", "--tokens", "20")
        target = start_sluice(upstream, procs, cleanups)
        _anthropic_route(target, upstream)
        for name, dialect, model in PATHS:
            path, body = _path(target, dialect, model)
            measure(path, 16, False, 1000, 2, body)  # warm up
            for stream in (True, False):
                row = measure(path, args.concurrency, stream, 10**7, args.seconds, body)
                row["path"] = name
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    finally:
        for proc in procs:
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    (ROOT / "bench" / "results" / "dialects.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(_table(rows))


def _table(rows: list[dict[str, Any]]) -> str:
    base = {
        r["stream"]: r["gateway_cpu_us_per_request"] for r in rows if "OpenAI → OpenAI" in r["path"]
    }
    lines = [
        "| path | stream | req/s | errors | CPU per request | vs OpenAI pass-through |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = r["gateway_cpu_us_per_request"]
        ratio = cpu / base[r["stream"]] if base.get(r["stream"]) else float("nan")
        lines.append(
            f"| {r['path']} | {'yes' if r['stream'] else 'no'} | {r['rps']:,.0f} | {r['errors']} "
            f"| {cpu} µs | {ratio:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
