"""Sluice against the direct upstream, LiteLLM's proxy and Portkey's gateway.

    .venv/bin/python bench/compare.py [--targets direct,sluice,litellm,portkey] [--quick]

The same local fake upstream (20 tokens a response) serves every target. The
gateway under test is pinned to core 0, the load generator and the upstream to
core 1. For each target: concurrency 1, 16, 64 and 256, streaming and not, each
run bounded in requests and seconds. Sluice runs with its checks on: a key with
rate limits and a budget, prices, usage recording. LiteLLM and Portkey run from
.bench/ (install them with bench/install_peers.sh); a target that is not
installed is skipped with a message. Writes bench/results/compare.json and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.loadgen import Result, run_load
from bench.support import ROOT, Proc, free_port, save_results, scratch_database

WORK = ROOT / ".bench" / "compare"
GATEWAY_CORE, CLIENT_CORE = "0", "1"


def bench_proc(name: str, cmd: list[str], env: dict[str, str], core: str | None) -> Proc:
    return Proc(name, cmd, env, WORK / f"{name}.log", core)


def start_upstream(procs: list[Proc], name: str, *args: str) -> str:
    """A local fake provider on the client's core; its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "tests.fakes.provider", "--port", str(port), *args]
    proc = bench_proc(name, cmd, {}, CLIENT_CORE)
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(url + "/_fake/healthz")
    return url


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    model: str
    proc: Proc | None
    database_url: str | None = None  # Sluice's, to read what it recorded
    admin: tuple[str, dict[str, str]] | None = None  # Sluice's admin API and its auth
    tenant_id: str | None = None  # the tenant of the benchmark's key


def start_sluice(
    upstream: str,
    procs: list[Proc],
    cleanups: list[Callable[[], None]],
    module: str = "data_plane",
    args: Sequence[str] = (),
    core: str | None = GATEWAY_CORE,
    data_plane_env: dict[str, str] | None = None,
) -> Target:
    """Sluice with a scratch database, a key and a route; its data plane started with
    `args` (and `data_plane_env` added to its environment) and pinned to `core` (None:
    not pinned)."""
    url, drop_database = scratch_database("sluice_compare")
    cleanups.append(drop_database)
    env = {
        "SLUICE_DATABASE_URL": url,
        "SLUICE_ADMIN_TOKEN": "bench-" + secrets.token_urlsafe(16),
        "SLUICE_SECRET_KEY": secrets.token_urlsafe(32),
        "SLUICE_LOG_LEVEL": "warning",
        "SLUICE_SNAPSHOT_CACHE": str(WORK / "sluice-cache.msgpack"),
        "SLUICE_USAGE_SPOOL": str(WORK / "sluice-usage.spool"),
    }
    cp_port, dp_port = free_port(), free_port()
    cp = bench_proc(
        "sluice-control-plane",
        [sys.executable, "-m", "control_plane", "--port", str(cp_port)],
        env,
        CLIENT_CORE,
    )
    procs.append(cp)
    cp.wait_http(f"http://127.0.0.1:{cp_port}/readyz")
    admin = httpx.Client(
        base_url=f"http://127.0.0.1:{cp_port}/admin/v1",
        headers={"authorization": f"Bearer {env['SLUICE_ADMIN_TOKEN']}"},
        timeout=10,
    )
    provider = admin.post("/providers", json={"name": "fake", "base_url": upstream + "/v1"}).json()
    admin.post(
        "/routes",
        json={"model": "bench-model", "provider_id": provider["id"], "upstream_model": "fake-1"},
    )
    admin.put("/prices/bench-model", json={"input_per_million": 0.15, "output_per_million": 0.6})
    tenant = admin.post("/tenants", json={"name": "bench"}).json()
    # limits far above what the benchmark sends: checked on every request, never hit
    policy = {
        "rpm": 100_000_000,
        "tpm": 1_000_000_000,
        "budget_usd": 1_000_000,
        "budget_period": "month",
    }
    admin.put(f"/tenants/{tenant['id']}/policy", json=policy).raise_for_status()
    key = admin.post(f"/tenants/{tenant['id']}/keys", json={"name": "bench"}).json()
    admin.put(f"/keys/{key['id']}/policy", json={"rpm": 100_000_000}).raise_for_status()
    admin.close()
    dp = bench_proc(
        "sluice-data-plane",
        [sys.executable, "-m", module, "--port", str(dp_port), *args],
        {**env, **(data_plane_env or {})},
        core,
    )
    procs.append(dp)
    dp.wait_http(f"http://127.0.0.1:{dp_port}/readyz")
    time.sleep(0.5)
    return Target(
        "sluice",
        f"http://127.0.0.1:{dp_port}/v1/chat/completions",
        {"authorization": f"Bearer {key['key']}"},
        "bench-model",
        dp,
        database_url=url,
        admin=(f"http://127.0.0.1:{cp_port}/admin/v1", dict(admin.headers)),
        tenant_id=tenant["id"],
    )


def _start_litellm(upstream: str, procs: list[Proc]) -> Target | None:
    binary = ROOT / ".bench" / "litellm" / "bin" / "litellm"
    if not binary.exists():
        print("litellm: not installed (bench/install_peers.sh); skipped", file=sys.stderr)
        return None
    config = WORK / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench-model\n"
        "    litellm_params:\n"
        "      model: openai/fake-1\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-fake\n"
    )
    port = free_port()
    master_key = "sk-" + secrets.token_hex(24)
    proc = bench_proc(
        "litellm",
        [str(binary), "--config", str(config), "--port", str(port), "--num_workers", "1"],
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_MASTER_KEY": master_key,  # authenticated, as Sluice is
        },
        GATEWAY_CORE,
    )
    procs.append(proc)
    proc.wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180, ready_below=500)
    headers = {"authorization": f"Bearer {master_key}"}
    return Target(
        "litellm", f"http://127.0.0.1:{port}/v1/chat/completions", headers, "bench-model", proc
    )


def _start_portkey(upstream: str, procs: list[Proc]) -> Target | None:
    server = (
        ROOT
        / ".bench"
        / "portkey"
        / "node_modules"
        / "@portkey-ai"
        / "gateway"
        / "build"
        / "start-server.js"
    )
    if not server.exists():
        print("portkey: not installed (bench/install_peers.sh); skipped", file=sys.stderr)
        return None
    port = free_port()
    proc = bench_proc(
        "portkey", ["node", str(server), f"--port={port}", "--headless"], {}, GATEWAY_CORE
    )
    procs.append(proc)
    proc.wait_http(f"http://127.0.0.1:{port}/", timeout=60, ready_below=500)
    headers = {
        "authorization": "Bearer sk-fake",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{upstream}/v1",
    }
    return Target(
        "portkey", f"http://127.0.0.1:{port}/v1/chat/completions", headers, "fake-1", proc
    )


def measure(
    target: Target,
    concurrency: int,
    stream: bool,
    total: int,
    seconds: float,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One bounded load on `target` (each request `body`, by default a one-message
    chat), with the gateway's CPU share and CPU per request."""
    if body is None:
        body = {"model": target.model, "messages": [{"role": "user", "content": "Hello there"}]}
    cpu_before = target.proc.cpu_seconds() if target.proc else 0.0
    result: Result = asyncio.run(
        run_load(
            target.url,
            body,
            target.headers,
            concurrency=concurrency,
            total=total,
            max_seconds=seconds,
            stream=stream,
        )
    )
    cpu = (target.proc.cpu_seconds() - cpu_before) if target.proc else 0.0
    return {
        "target": target.name,
        "stream": stream,
        "concurrency": concurrency,
        **asdict(result),
        "gateway_cpu_share": round(cpu / result.seconds, 2) if target.proc else None,
        "gateway_cpu_us_per_request": round(cpu / max(result.requests, 1) * 1e6)
        if target.proc
        else None,
    }


def _measure(target: Target, concurrency: int, stream: bool, quick: bool) -> dict[str, Any]:
    total = (300 if quick else 3000) if concurrency == 1 else (1000 if quick else 20000)
    return measure(target, concurrency, stream, total, 8 if quick else 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="direct,sluice,litellm,portkey")
    parser.add_argument("--concurrency", default="1,16,64,256")
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter runs")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    procs: list[Proc] = []
    cleanups: list[Callable[[], None]] = []
    rows: list[dict[str, Any]] = []
    try:
        upstream = start_upstream(procs, "fake-upstream", "--tokens", "20")
        starters: dict[str, Callable[[], Target | None]] = {
            "direct": lambda: Target(
                "direct", upstream + "/v1/chat/completions", {}, "fake-1", None
            ),
            "sluice": lambda: start_sluice(upstream, procs, cleanups),
            "litellm": lambda: _start_litellm(upstream, procs),
            "portkey": lambda: _start_portkey(upstream, procs),
        }
        for name in args.targets.split(","):
            target = starters[name]()
            if target is None:
                continue
            for stream in (False, True):
                for concurrency in (int(c) for c in args.concurrency.split(",")):
                    row = _measure(target, concurrency, stream, args.quick)
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
            if target.proc is not None:
                target.proc.stop()
    finally:
        for proc in procs:
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    save_results("compare.json", rows)
    print(_table(rows))


def _table(rows: list[dict[str, Any]]) -> str:
    """Markdown; "added" columns are against the direct run at the same concurrency."""
    direct = {(r["stream"], r["concurrency"]): r for r in rows if r["target"] == "direct"}

    def added(r: dict[str, Any], field: str) -> str:
        base = direct.get((r["stream"], r["concurrency"]))
        if base is None or r["target"] == "direct" or r[field] is None or base[field] is None:
            return ""
        return f"{r[field] - base[field]:.2f}"

    lines = [
        "| target | stream | c | req/s | p50 ms | p99 ms | added p50 | added p99 | TTFB p50 "
        "| added TTFB | errors | gateway CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = r["gateway_cpu_share"]
        lines.append(
            f"| {r['target']} | {'yes' if r['stream'] else 'no'} | {r['concurrency']} "
            f"| {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {added(r, 'p50_ms')} "
            f"| {added(r, 'p99_ms')} | {r['ttfb_p50_ms'] or ''} | {added(r, 'ttfb_p50_ms')} "
            f"| {r['errors']} | {cpu if cpu is not None else ''} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
