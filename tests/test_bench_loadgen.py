"""The benchmarks' load generator counts what it claims to: requests, statuses,
latencies and, for streams, time to first byte (against the real fake provider)."""

from __future__ import annotations

from bench.loadgen import run_load
from bench.support import pct
from tests.support.fake import AUTH, chat_body


async def test_counts_every_request_and_measures_streams(fake_url: str) -> None:
    url = fake_url + "/v1/chat/completions"
    result = await run_load(
        url, chat_body(), AUTH, concurrency=4, total=40, max_seconds=30, stream=True
    )
    assert (result.requests, result.errors, result.statuses) == (40, 0, {"200": 40})
    assert result.ttfb_p50_ms is not None
    assert 0 < result.ttfb_p50_ms <= result.p50_ms
    assert result.rps > 0
    assert 0 < result.p50_ms <= result.p99_ms


async def test_refusals_are_errors_not_latencies(fake_url: str) -> None:
    url = fake_url + "/v1/chat/completions"
    headers = {**AUTH, "x-fake-status": "429"}
    result = await run_load(
        url, chat_body(), headers, concurrency=2, total=10, max_seconds=30, stream=False
    )
    assert (result.requests, result.errors, result.statuses) == (10, 10, {"429": 10})
    assert result.rps == 0


async def test_stops_at_its_time_bound(fake_url: str) -> None:
    url = fake_url + "/v1/chat/completions"
    headers = {**AUTH, "x-fake-latency-ms": "100"}
    result = await run_load(
        url, chat_body(), headers, concurrency=2, total=10_000, max_seconds=0.5, stream=False
    )
    assert 2 <= result.requests <= 20  # ~0.1 s each, two at a time, for ~0.5 s
    assert result.seconds < 5


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (pct(values, 50), pct(values, 99), pct(values, 100)) == (51.0, 99.0, 100.0)
    assert pct([], 50) != pct([], 50)  # nan when there is nothing to measure
