"""How a route of several deployments shares its traffic: by weight, around random
failures, by requests in flight and by latency. Real processes throughout: the
stack's data plane and control plane, PostgreSQL, and fake upstreams of their own."""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from typing import Any

import pytest

from tests.support.routing import (
    Answer,
    fake_stats,
    keyed_route,
    on_fake,
    requests_seen,
    send_for,
    send_many,
    served_by,
    set_faults,
    start_fake,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.slow  # run beside the others by `make test`

CONCURRENCY = 32
# ms before answering: one deployment 10x slower than the other (long enough that the
# gateway's own time per request, on a busy machine, does not blur the ratio)
FAST_MS, SLOW_MS = "100", "1000"


async def test_weights_three_to_one_split_two_thousand_requests(stack: Stack) -> None:
    """Weights 3:1 over two deployments (two fakes): over 2,000 requests the split is
    within 5 points of 75/25 (counted at each fake, and by `x-sluice-deployment`)."""
    heavy, light = start_fake(stack), start_fake(stack)
    key, model, ids = await keyed_route(
        stack, [await on_fake(stack, heavy, weight=3), await on_fake(stack, light, weight=1)]
    )
    answers = await send_many(stack.data_plane_urls[0], key, model, 2000, concurrency=CONCURRENCY)
    served = served_by(answers)
    seen = await requests_seen(heavy, light)
    assert seen == [served[ids[0]], served[ids[1]]], (seen, served)
    assert sum(seen) == 2000
    share = seen[0] / 2000
    print(f"weighted 3:1: {share:.1%} / {1 - share:.1%} of 2,000")
    assert 0.70 <= share <= 0.80, seen


def _clean_error(answer: Answer) -> None:
    """An OpenAI-format error body: JSON with error.message, type and code."""
    error = json.loads(answer.body)["error"]
    for field in ("message", "type", "code"):
        assert isinstance(error[field], str), error
        assert error[field], error


async def test_random_failures_on_three_deployments_rarely_reach_the_client(
    stack: Stack,
) -> None:
    """Three deployments, each failing 20 % of requests at random before the first byte
    (500, reset, 503; distinct seeds): >= 99.9 % of 3,000 requests succeed; every failure
    that reaches a client is a clean OpenAI-format error, none is a hang.

    Retry settings: `max_attempts` 6, the rest default. A user who wants 99.9 % from
    upstreams failing 20 % each needs at least 5 attempts (0.2^5 = 0.03 % lost); with 5,
    more than 3 of 3,000 requests fail in about one run in 60, so the test takes 6
    (0.2^6: about 0.2 lost requests expected) to be a test that fails only for a bug."""
    fakes = [start_fake(stack) for _ in range(3)]
    modes: list[dict[str, Any]] = [
        {"fail_mode": "status", "fail_status": 500},
        {"fail_mode": "reset"},
        {"fail_mode": "status", "fail_status": 503},
    ]
    for seed, (fake, mode) in enumerate(zip(fakes, modes, strict=True)):
        await set_faults(fake, fail_rate=0.2, seed=seed, **mode)
    deployments = [await on_fake(stack, fake) for fake in fakes]
    key, model, _ = await keyed_route(stack, deployments, retry={"max_attempts": 6})
    plane = stack.data_plane_urls[0]
    answers = await send_many(plane, key, model, 3000, concurrency=CONCURRENCY, wait=15)
    statuses = Counter(a.status for a in answers)
    attempts = Counter(a.attempts for a in answers)
    injected = sum([(await fake_stats(f))["faults_injected"] for f in fakes])
    print(f"random failures: {statuses}, attempts {attempts.most_common()}, {injected} faults")
    assert statuses[0] == 0, "a request hung"
    assert statuses[200] >= 2997, statuses
    assert injected >= 400  # the fakes did fail about a fifth of the attempts
    for answer in answers:
        if answer.status != 200:
            _clean_error(answer)
    # the same upstreams without retries: the failures themselves reach clients, all clean
    once = [await on_fake(stack, fake) for fake in fakes]
    key, model, _ = await keyed_route(stack, once, retry={"max_attempts": 1})
    answers = await send_many(plane, key, model, 200, concurrency=CONCURRENCY, wait=15)
    failed = [a for a in answers if a.status != 200]
    print(f"without retries: {Counter(a.status for a in answers)}")
    assert not [a for a in answers if a.status == 0], "a request hung"
    assert failed
    for answer in failed:
        _clean_error(answer)


async def _fast_and_slow(stack: Stack, strategy: str) -> tuple[str, str, list[str], str]:
    """A route of a fast and a 10x slower deployment; 1,000 requests at concurrency 32
    are sent, and >= 80 % must have gone to the fast one. (key, model, ids, slow fake)"""
    fast = start_fake(stack, "--latency-ms", FAST_MS)
    slow = start_fake(stack, "--latency-ms", SLOW_MS)
    deployments = [await on_fake(stack, fast), await on_fake(stack, slow)]
    key, model, ids = await keyed_route(stack, deployments, strategy=strategy)
    answers = await send_many(stack.data_plane_urls[0], key, model, 1000, concurrency=CONCURRENCY)
    served = served_by(answers)
    assert await requests_seen(fast, slow) == [served[ids[0]], served[ids[1]]]
    print(f"{strategy}: {served[ids[0]] / 1000:.1%} to the fast one")
    assert served[ids[0]] >= 800, served
    return key, model, ids, slow


async def test_least_in_flight_sends_most_to_the_faster_deployment(stack: Stack) -> None:
    """Least in-flight with one deployment 10x slower than the other (100 ms and 1 s),
    at concurrency 32: >= 80 % of requests go to the fast one."""
    await _fast_and_slow(stack, "least_in_flight")


async def test_lowest_latency_prefers_the_faster_and_notices_a_recovery(stack: Stack) -> None:
    """Lowest latency with one deployment 10x slower (100 ms and 1 s), at concurrency
    32: >= 80 % go to the fast one; once the slow one's latency recovers (to 100 ms)
    it gets traffic back within a minute: >= 20 % of the requests of some 10 s window."""
    key, model, ids, slow = await _fast_and_slow(stack, "lowest_latency")
    url = stack.data_plane_urls[0]
    await set_faults(slow, latency_ms=float(FAST_MS))
    recovered = time.monotonic()
    seconds: deque[Counter[str | None]] = deque(maxlen=10)  # the last 10 s, second by second
    while True:
        assert time.monotonic() - recovered < 60, f"no 10 s window with >= 20 %: {seconds}"
        seconds.append(served_by(await send_for(url, key, model, 1.0, concurrency=CONCURRENCY)))
        window = sum(seconds, Counter())
        share = window[ids[1]] / window.total()
        if len(seconds) == seconds.maxlen and share >= 0.2:
            break
    print(
        f"recovered deployment: {share:.1%} of the 10 s window that ended "
        f"{time.monotonic() - recovered:.1f} s after its recovery"
    )
