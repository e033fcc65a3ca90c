"""Routes of several deployments: what a second deployment and a failover cost.

    .venv/bin/python -m bench.routing [--rounds 8] [--quick] [--quiet-below 0.6]

One data plane, pinned to core 0 with its checks on as in bench/compare.py (a key
and tenant with limits, prices, usage recording), serves three routes and a
diagnostic fourth; the fake upstreams, the control plane and the load generator
share core 1:

- `single`: one deployment (the legacy shape), on the healthy fake;
- `two`: two deployments on two healthy fakes, weighted 1:1, default breakers;
- `failover`: priority 0 a fake that answers every request with an immediate 503,
  priority 1 the healthy fake; a breaker that never opens and a 100 µs backoff
  (FAILOVER_RETRY: 0 does not fail over), so a request's first attempt gets the 503
  and its second answers.

A diagnostic route, `two-one-fake`, has two deployments on the same healthy fake:
`two`'s request path with `single`'s upstream side, to tell the gateway's share of
a difference from that of a second upstream process.

`direct` (the healthy fake without a gateway) is the baseline for "added". Each
round measures every target back to back for each kind of cell (non-stream at
concurrency 64, non-stream and stream at concurrency 1), the order of the
targets rotated from round to round so that drift hits all alike. Before the
first process starts, the script waits (up to --quiet-wait seconds) for the
1-minute load average to fall below --quiet-below, and records the load average
at the start of the run and of each round. Writes bench/results/routing.json
and prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench.compare import CLIENT_CORE, Target, measure, start_sluice, start_upstream
from bench.support import ROOT, Proc, load_average, wait_quiet

# `two-one-fake` (a diagnostic): two deployments, 1:1, both on the healthy fake; the
# request path of `two` with the upstream side of `single`
ROUTES = ("single", "two", "failover", "two-one-fake")
TARGETS = ("direct", *ROUTES)
# (name, concurrency, stream)
KINDS = (("c64", 64, False), ("c1", 1, False), ("c1-stream", 1, True))
BODY_TEXT = "Hello there"
# The failover route's retry policy. `backoff: 0` is accepted but does not fail
# over: the untried deployment is preferred only within a priority tier, and the
# failing one, its backoff over at once, stays available, so all three attempts go
# to it (three 503s, then a 502). Only a backoff that outlasts the few microseconds
# between a failure and the next choice moves the retry to the next tier: 1 and
# 10 µs did not, here; 100 µs did. Capped by max_backoff so that it does not double
# with each failure. At concurrency 64 requests that start within 100 µs of a
# failure skip the failing deployment, and a retry delayed past 100 µs (the process
# preempted) goes to the failing one again: each cell records the failing fake's
# answers per request (1.0: one each), the usage table the attempts of each; five
# attempts, so that a retry delayed that way still ends on the healthy deployment.
FAILOVER_RETRY = {"backoff": 1e-4, "max_backoff": 1e-4, "max_attempts": 5}


def _add_routes(target: Target, healthy: str, healthy_2: str, failing: str) -> dict[str, Any]:
    """The `two` and `failover` routes (the `single` one is start_sluice's); the
    created routes as the admin API returned them."""
    assert target.admin is not None
    base_url, headers = target.admin
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as admin:

        def provider(name: str, url: str) -> str:
            resp = admin.post("/providers", json={"name": name, "base_url": url + "/v1"})
            resp.raise_for_status()
            provider_id: str = resp.json()["id"]
            return provider_id

        p_healthy = provider("healthy", healthy)
        p_healthy_2 = provider("healthy-2", healthy_2)
        p_failing = provider("failing", failing)
        bodies: dict[str, dict[str, Any]] = {
            "two": {
                "model": "bench-two",
                "strategy": "weighted",
                "deployments": [
                    {"provider_id": p_healthy, "upstream_model": "fake-1", "weight": 1},
                    {"provider_id": p_healthy_2, "upstream_model": "fake-1", "weight": 1},
                ],
            },
            "two-one-fake": {
                "model": "bench-two-one-fake",
                "strategy": "weighted",
                "deployments": [
                    {"provider_id": p_healthy, "upstream_model": "fake-1", "weight": 1},
                    {"provider_id": p_healthy, "upstream_model": "fake-1", "weight": 1},
                ],
            },
            "failover": {
                "model": "bench-failover",
                "deployments": [
                    {"provider_id": p_failing, "upstream_model": "fake-1", "priority": 0},
                    {"provider_id": p_healthy, "upstream_model": "fake-1", "priority": 1},
                ],
                "breaker": {"failures": 1_000_000, "min_requests": 1_000_000},
                "retry": FAILOVER_RETRY,
            },
        }
        routes: dict[str, Any] = {}
        for name, body in bodies.items():
            resp = admin.post("/routes", json=body)
            if resp.status_code != 201:
                raise RuntimeError(f"route {name}: {resp.status_code} {resp.text}")
            routes[name] = resp.json()
            price = {"input_per_million": 0.15, "output_per_million": 0.6}
            admin.put(f"/prices/{body['model']}", json=price).raise_for_status()
    return routes


def _until_served(target: Target, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    body = {"model": target.model, "messages": [{"role": "user", "content": BODY_TEXT}]}
    while True:
        resp = httpx.post(target.url, json=body, headers=target.headers, timeout=10)
        if resp.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target.model}: {resp.status_code} {resp.text}")
        time.sleep(0.05)


def _check(targets: dict[str, Target], routes: dict[str, Any]) -> dict[str, Any]:
    """What the routes do, from the response headers: how many attempts a request
    took and which deployment answered."""
    checks: dict[str, Any] = {}
    with httpx.Client(timeout=10) as client:
        for name, n in (("two", 200), ("failover", 50)):
            target = targets[name]
            ids = [d["id"] for d in routes[name]["deployments"]]
            attempts: Counter[str] = Counter()
            answered: Counter[str] = Counter()
            for i in range(n):
                body = {
                    "model": target.model,
                    "messages": [{"role": "user", "content": BODY_TEXT}],
                    "stream": i % 2 == 1,
                }
                resp = client.post(target.url, json=body, headers=target.headers)
                assert resp.status_code == 200, resp.text
                attempts[resp.headers["x-sluice-attempts"]] += 1
                answered[f"deployment {ids.index(resp.headers['x-sluice-deployment'])}"] += 1
            checks[name] = {
                "requests": n,
                "attempts": dict(attempts),
                "answered_by": dict(answered),
            }
    failover = checks["failover"]
    if failover["answered_by"] != {"deployment 1": 50} or failover["attempts"].get("1"):
        raise RuntimeError(f"failover does not fail over as intended: {failover}")
    return checks


def _chat_requests(fake: str) -> int:
    return int(httpx.get(fake + "/_fake/stats").json()["chat_requests"])


async def _usage(database_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT model, attempts, status, stream, count(*) AS requests FROM usage"
            " GROUP BY model, attempts, status, stream ORDER BY model, stream, attempts, status"
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter runs")
    parser.add_argument("--quiet-below", type=float, default=0.6)
    parser.add_argument("--quiet-wait", type=float, default=1200, help="seconds; 0: no wait")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    quiet = wait_quiet(args.quiet_below, args.quiet_wait)
    print(f"start: {quiet}", file=sys.stderr)
    tree_at_start = _tree()
    # short cells, many rounds: a burst of others' work on the machine then spoils
    # one cell of each target's, not all of one target's
    seconds = 5.0 if args.quick else 15.0
    totals = {1: 300 if args.quick else 2000, 64: 1000 if args.quick else 5000}
    procs: list[Proc] = []
    cleanups: list[Callable[[], None]] = []
    rows: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    try:
        healthy = start_upstream(procs, "routing-healthy", "--tokens", "20")
        healthy_2 = start_upstream(procs, "routing-healthy-2", "--tokens", "20")
        failing = start_upstream(procs, "routing-failing", "--tokens", "20")
        httpx.put(failing + "/_fake/faults", json={"status": 503}).raise_for_status()
        single = start_sluice(healthy, procs, cleanups)
        assert single.proc is not None
        assert single.database_url is not None
        routes = _add_routes(single, healthy, healthy_2, failing)
        targets = {
            "direct": Target("direct", healthy + "/v1/chat/completions", {}, "fake-1", None),
            "single": dataclasses.replace(single, name="single"),
            "two": dataclasses.replace(single, name="two", model="bench-two"),
            "failover": dataclasses.replace(single, name="failover", model="bench-failover"),
            "two-one-fake": dataclasses.replace(
                single, name="two-one-fake", model="bench-two-one-fake"
            ),
        }
        for name in ROUTES:
            _until_served(targets[name])
        checks = _check(targets, routes)
        print(f"checks: {checks}", file=sys.stderr)
        for name in TARGETS:  # warm up
            measure(targets[name], 16, False, totals[64] // 20, seconds)
            measure(targets[name], 4, True, totals[1] // 10, seconds)
        for fake in (healthy, healthy_2, failing):
            httpx.delete(fake + "/_fake/stats").raise_for_status()
        for r in range(args.rounds):
            order = [TARGETS[(i + r) % len(TARGETS)] for i in range(len(TARGETS))]
            rounds.append({"round": r, "order": order, "load_average": load_average()})
            for kind, concurrency, stream in KINDS:
                for name in order:
                    row: dict[str, Any] = {"round": r, "target": name, "kind": kind}
                    row["load_1m"] = load_average()[0]
                    failed_before = _chat_requests(failing) if name == "failover" else 0
                    row |= measure(targets[name], concurrency, stream, totals[concurrency], seconds)
                    if name == "failover":  # the 503s per request (1.0: one each)
                        failed = _chat_requests(failing) - failed_before
                        row["failing_attempts_per_request"] = round(
                            failed / max(row["requests"], 1), 4
                        )
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
        fakes = {
            name: httpx.get(url + "/_fake/stats").json()
            for name, url in (("healthy", healthy), ("healthy-2", healthy_2), ("failing", failing))
        }
        single.proc.stop()  # writes what it still buffers
        usage = asyncio.run(_usage(single.database_url))
    finally:
        for proc in procs:
            proc.stop()
        for cleanup in cleanups:
            cleanup()
    summary = _summary(rows)
    out = {
        "date": datetime.now(UTC).date().isoformat(),
        "tree": {"start": tree_at_start, "end": _tree()},
        "settings": {
            "rounds": args.rounds,
            "quick": args.quick,
            "totals": totals,
            "failover_retry": FAILOVER_RETRY,
        },
        "quiet": quiet,
        "rounds": rounds,
        "checks": checks,
        "summary": summary,
        "rows": rows,
        "fake_stats": fakes,
        "usage": usage,
    }
    path = ROOT / "bench" / "results" / "routing.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(_tables(out))


def _tree() -> dict[str, Any]:
    """The commit measured, and the files of the gateway changed since (a shared
    working tree may hold others' work in progress)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = git("status", "--short", "--", "shared", "control_plane", "data_plane")
    return {"commit": git("rev-parse", "HEAD"), "changed": changed.splitlines()}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds. "added" is against the direct run of the same round
    and kind; a route's difference to `single` is taken round by round too."""
    cell = {(r["round"], r["target"], r["kind"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})

    def per_round(f: Callable[[int], float]) -> dict[str, Any]:
        values = [f(n) for n in rounds]
        return {"median": round(statistics.median(values), 3), "rounds": values}

    def value(target: str, kind: str, field: str) -> Callable[[int], float]:
        return lambda n: float(cell[n, target, kind][field])

    def diff(a: str, b: str, kind: str, field: str) -> Callable[[int], float]:
        return lambda n: round(cell[n, a, kind][field] - cell[n, b, kind][field], 3)

    def quotient(a: str, b: str, kind: str, field: str) -> Callable[[int], float]:
        return lambda n: round(cell[n, a, kind][field] / cell[n, b, kind][field], 3)

    targets: dict[str, Any] = {}
    for target in TARGETS:
        out: dict[str, Any] = {"rps_c64": per_round(value(target, "c64", "rps"))}
        for kind in ("c1", "c1-stream"):
            out[kind] = {
                "p50_ms": per_round(value(target, kind, "p50_ms")),
                "p99_ms": per_round(value(target, kind, "p99_ms")),
            }
            if target != "direct":
                out[kind]["added_p50_ms"] = per_round(diff(target, "direct", kind, "p50_ms"))
                out[kind]["added_p99_ms"] = per_round(diff(target, "direct", kind, "p99_ms"))
                out[kind]["cpu_us_per_request"] = per_round(
                    value(target, kind, "gateway_cpu_us_per_request")
                )
        if target != "direct":
            out["rps_c64_vs_single"] = per_round(quotient(target, "single", "c64", "rps"))
            # the gateway's CPU per request at c=64: unlike req/s, it does not fall when
            # others' processes take part of core 0; single's over this one is the
            # share of single's req/s this target would keep on a core of its own
            cpu = value(target, "c64", "gateway_cpu_us_per_request")
            out["c64_cpu_us_per_request"] = per_round(cpu)
            out["c64_capacity_vs_single"] = per_round(
                quotient("single", target, "c64", "gateway_cpu_us_per_request")
            )
        out["errors"] = sum(r["errors"] for r in rows if r["target"] == target)
        targets[target] = out
    acceptance = {
        "two_rps_c64_ratio": targets["two"]["rps_c64_vs_single"],
        "two_c64_capacity_ratio": targets["two"]["c64_capacity_vs_single"],
        "two_added_p50_growth_ms": {
            kind: per_round(diff("two", "single", kind, "p50_ms")) for kind in ("c1", "c1-stream")
        },
        "failover_cost_ms": {
            kind: {
                "p50": per_round(diff("failover", "single", kind, "p50_ms")),
                "p99": per_round(diff("failover", "single", kind, "p99_ms")),
            }
            for kind in ("c1", "c1-stream")
        },
    }
    acceptance["diagnostic"] = {
        "two_one_fake_rps_c64_ratio": targets["two-one-fake"]["rps_c64_vs_single"],
        "two_one_fake_added_p50_growth_ms": {
            kind: per_round(diff("two-one-fake", "single", kind, "p50_ms"))
            for kind in ("c1", "c1-stream")
        },
        "failover_failing_attempts_per_request": {
            kind: per_round(value("failover", kind, "failing_attempts_per_request"))
            for kind, _, _ in KINDS
        },
    }
    ratio = acceptance["two_rps_c64_ratio"]["median"]
    capacity = acceptance["two_c64_capacity_ratio"]["median"]
    growth = acceptance["two_added_p50_growth_ms"]
    acceptance["met"] = {
        "two_keeps_90pct_rps": ratio >= 0.9,
        "two_keeps_90pct_capacity": capacity >= 0.9,
        "two_added_p50_growth_le_0.1ms_non_stream": growth["c1"]["median"] <= 0.1,
        "two_added_p50_growth_le_0.1ms_stream": growth["c1-stream"]["median"] <= 0.1,
    }
    return {"targets": targets, "acceptance": acceptance}


def _tables(out: dict[str, Any]) -> str:
    targets, acceptance = out["summary"]["targets"], out["summary"]["acceptance"]

    def med(d: dict[str, Any]) -> str:
        return f"{d['median']:,.2f}"

    lines = [
        f"Medians of {len(out['rounds'])} rounds; load average at the start "
        f"{out['quiet']['load_average']} (quiet: {out['quiet']['quiet']}).",
        "",
        "| target | req/s c=64 | vs single | CPU µs/req c=64 | capacity vs single "
        "| p50 c=1 | p99 c=1 | added p50 | added p99 | stream p50 | stream p99 "
        "| stream added p50 | stream added p99 | CPU µs/req c=1 | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in TARGETS:
        t = targets[name]
        c1, st = t["c1"], t["c1-stream"]
        routed = name != "direct"

        def routed_only(
            d: dict[str, Any], key: str, fmt: str = ",.2f", routed: bool = routed
        ) -> str:
            return format(d[key]["median"], fmt) if routed else ""

        cpu = f"{c1['cpu_us_per_request']['median']:.0f}" if routed else ""
        lines.append(
            f"| {name} | {t['rps_c64']['median']:,.0f} | {routed_only(t, 'rps_c64_vs_single')} "
            f"| {routed_only(t, 'c64_cpu_us_per_request', '.0f')} "
            f"| {routed_only(t, 'c64_capacity_vs_single')} "
            f"| {med(c1['p50_ms'])} | {med(c1['p99_ms'])} "
            f"| {routed_only(c1, 'added_p50_ms')} | {routed_only(c1, 'added_p99_ms')} "
            f"| {med(st['p50_ms'])} | {med(st['p99_ms'])} "
            f"| {routed_only(st, 'added_p50_ms')} | {routed_only(st, 'added_p99_ms')} "
            f"| {cpu} | {t['errors']} |"
        )
    names = " / ".join(ROUTES)
    lines += [
        "",
        f"| round | load 1m at start | order | req/s c=64: {names} "
        f"| CPU µs/req c=64: {names} | added p50 c=1: {names} "
        f"| stream added p50 c=1: {names} |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in out["rounds"]:
        n = r["round"]

        def each(fmt: str, *keys: str, n: int = n) -> str:
            values = []
            for name in ROUTES:
                found = targets[name]
                for key in keys:
                    found = found[key]
                values.append(format(found["rounds"][n], fmt))
            return " / ".join(values)

        lines.append(
            f"| {n + 1} | {r['load_average'][0]} | {', '.join(r['order'])} "
            f"| {each(',.0f', 'rps_c64')} | {each('.0f', 'c64_cpu_us_per_request')} "
            f"| {each('.2f', 'c1', 'added_p50_ms')} "
            f"| {each('.2f', 'c1-stream', 'added_p50_ms')} |"
        )
    growth = acceptance["two_added_p50_growth_ms"]
    cost = acceptance["failover_cost_ms"]
    met, diagnostic = acceptance["met"], acceptance["diagnostic"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines += [
        "",
        f"- `two` keeps ≥ 90 % of `single`'s req/s at c=64: "
        f"{acceptance['two_rps_c64_ratio']['median']:.1%} (rounds: "
        f"{', '.join(f'{v:.1%}' for v in acceptance['two_rps_c64_ratio']['rounds'])}): "
        f"{verdict(met['two_keeps_90pct_rps'])}; by the gateway's CPU per request at c=64 "
        f"(capacity on a core of its own): "
        f"{acceptance['two_c64_capacity_ratio']['median']:.1%} (rounds: "
        f"{', '.join(f'{v:.1%}' for v in acceptance['two_c64_capacity_ratio']['rounds'])}): "
        f"{verdict(met['two_keeps_90pct_capacity'])}",
        f"- added p50 at c=1 grows ≤ 0.1 ms from `single` to `two`: non-stream "
        f"{growth['c1']['median']:+.3f} ms (rounds: {growth['c1']['rounds']}): "
        f"{verdict(met['two_added_p50_growth_le_0.1ms_non_stream'])}; stream "
        f"{growth['c1-stream']['median']:+.3f} ms (rounds: {growth['c1-stream']['rounds']}): "
        f"{verdict(met['two_added_p50_growth_le_0.1ms_stream'])}",
        f"- failover cost over `single` at c=1: non-stream p50 {cost['c1']['p50']['median']:+.3f}"
        f" ms, p99 {cost['c1']['p99']['median']:+.3f} ms; stream p50 "
        f"{cost['c1-stream']['p50']['median']:+.3f} ms, p99 "
        f"{cost['c1-stream']['p99']['median']:+.3f} ms",
        f"- (diagnostic) `two-one-fake` against `single`: req/s c=64 "
        f"{diagnostic['two_one_fake_rps_c64_ratio']['median']:.1%}, added p50 c=1 "
        f"{diagnostic['two_one_fake_added_p50_growth_ms']['c1']['median']:+.3f} ms, stream "
        f"{diagnostic['two_one_fake_added_p50_growth_ms']['c1-stream']['median']:+.3f} ms",
        "- (check) failover: the failing fake's 503s per request (1.00: one each): "
        + ", ".join(
            f"{kind} {v['median']:.3f}"
            for kind, v in diagnostic["failover_failing_attempts_per_request"].items()
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
