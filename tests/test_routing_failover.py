"""Failing deployments: the breaker takes one out and a probe brings it back, priority
tiers, an upstream that never answers, and a 429's Retry-After. Real processes: the
stack's data plane and control plane, PostgreSQL, and fake upstreams of their own."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.routing import (
    Answer,
    ask,
    breaker_state,
    clear_faults,
    client_for,
    deployment_metric,
    eventually,
    keyed_route,
    on_fake,
    replica_states,
    requests_seen,
    seed_failing_once,
    send_for,
    send_many,
    served_by,
    set_faults,
    settled_stats,
    start_fake,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.slow  # run beside the others by `make test`

CONCURRENCY = 16
OPEN, CLOSED = 2.0, 0.0  # sluice_deployment_breaker_state


async def _request_ends(fake: str, enough: Callable[[int], bool]) -> dict[int, tuple[float, float]]:
    """Watch the fake's request count (a request counts when it ends) every 20 ms
    until `enough(count)`. For each count seen, the times (time.monotonic()) between
    which it was reached: when the look before began, and when the look that saw it
    ended."""
    ends: dict[int, tuple[float, float]] = {}
    seen, previous = 0, time.monotonic()
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            asked = time.monotonic()
            count = (await client.get(f"{fake}/_fake/stats")).json()["chat_requests"]
            if count != seen:
                seen, ends[count] = count, (previous, time.monotonic())
            if enough(count):
                return ends
            previous = asked
            await asyncio.sleep(0.02)


async def _seen_open(stack: Stack, plane: str, deployment_id: str) -> None:
    """Until the replica's /metrics and the admin API's health have both said `open`."""
    metric = health = False
    while not (metric and health):
        metric = metric or await breaker_state(plane, deployment_id) == OPEN
        health = health or await replica_states(stack, deployment_id) == ["open"]
        await asyncio.sleep(0.05)


BREAKER = {"failures": 3, "cooldown": 6.0}
FAULTS: dict[str, dict[str, Any]] = {
    "status_500": {"status": 500},
    "status_429_retry_after_1": {"status": 429, "retry_after": 1},
    "reset": {"reset": True},
    "stall_past_first_token": {"first_token_ms": 3000},  # the deployment waits 0.5 s
}


@pytest.mark.parametrize("fault", FAULTS)
async def test_breaker_takes_a_failing_deployment_out_and_one_probe_brings_it_back(
    stack: Stack, fault: str
) -> None:
    """A deployment that answers every request with 500 (then 429 + Retry-After, a
    reset, a stall past its first-token timeout): 100 % of 500 client requests succeed
    through the other deployment; the breaker opens within the configured failures
    (plus what was in flight) and shows `open` in the deployment's health and metrics;
    the failing deployment then gets no traffic until the cooldown ends; once the fake
    recovers, one probe closes the breaker again and traffic returns."""
    failing, healthy = start_fake(stack), start_fake(stack)
    deployments = [
        await on_fake(stack, failing, timeouts={"first_token": 0.5}),
        await on_fake(stack, healthy),
    ]
    key, model, (bad, good) = await keyed_route(stack, deployments, breaker=BREAKER)
    plane, stream = stack.data_plane_urls[0], fault.startswith("stall")
    await set_faults(failing, **FAULTS[fault])
    stop = asyncio.Event()
    watch = asyncio.create_task(_request_ends(failing, lambda _: stop.is_set()))
    seen_open = asyncio.create_task(_seen_open(stack, plane, bad))
    started = time.monotonic()
    answers = await send_many(plane, key, model, 500, concurrency=CONCURRENCY, stream=stream)
    burst = time.monotonic() - started
    (failed_at,) = await requests_seen(failing)
    stop.set()
    ends = await watch
    failed_after, failed_before = ends[max(ends)]  # the last failure came between these
    assert served_by(answers) == {good: 500}
    cooldown = BREAKER["cooldown"]
    probes = int(burst // cooldown)  # a burst longer than the cooldown lets probes through
    print(f"{fault}: 500/500 answered in {burst:.1f} s; the failing fake saw {failed_at}")
    assert BREAKER["failures"] <= failed_at <= BREAKER["failures"] + CONCURRENCY + probes
    # open, as the replica's metrics and (reported every ~2 s) the admin API say
    await asyncio.wait_for(seen_open, timeout=failed_after + cooldown - time.monotonic())
    assert await breaker_state(plane, good) == CLOSED

    # the fake mends; the breaker keeps it out until the cooldown ends, then one probe
    await clear_faults(failing)
    answers = await send_for(  # one at a time: the first to reach the fake is the probe
        plane,
        key,
        model,
        cooldown + 5,
        concurrency=1,
        stream=stream,
        stop=lambda a: a.deployment == bad,
    )
    probe = answers[-1]
    assert probe.deployment == bad, "no probe within the cooldown and 5 s"
    print(
        f"{fault}: the probe reached it {probe.started - failed_before:.2f}-"
        f"{probe.ended - failed_after:.2f} s after the last failure (cooldown {cooldown:g} s)"
    )
    assert (probe.status, probe.attempts) == (200, 1)
    assert probe.ended > failed_after + cooldown  # nothing reached it before the cooldown ended
    assert probe.started < failed_before + cooldown + 2  # and the probe came soon after
    assert await requests_seen(failing) == [failed_at + 1]
    assert await breaker_state(plane, bad) == CLOSED
    served = served_by(
        await send_many(plane, key, model, 200, concurrency=CONCURRENCY, stream=stream)
    )
    assert served[bad] >= 50, served  # equal weights: about half again

    async def health_closed() -> bool:
        return await replica_states(stack, bad) == ["closed"]

    await eventually(health_closed, within=5, what="health says closed")


async def test_second_tier_serves_only_while_the_first_tier_is_open(stack: Stack) -> None:
    """Priority tiers: the second tier gets traffic only while every first-tier
    deployment is open-circuited; after recovery and cooldown the first tier serves
    again."""
    first_a, first_b, second = start_fake(stack), start_fake(stack), start_fake(stack)
    deployments = [
        await on_fake(stack, first_a, priority=0),
        await on_fake(stack, first_b, priority=0),
        await on_fake(stack, second, priority=1),
    ]
    breaker = {"failures": 3, "cooldown": 2.0}
    key, model, (a, b, c) = await keyed_route(stack, deployments, breaker=breaker)
    plane = stack.data_plane_urls[0]

    async def send(n: int) -> Counter[str | None]:
        return served_by(await send_many(plane, key, model, n, concurrency=CONCURRENCY))

    served = await send(100)
    assert served[c] == 0, served
    assert served[a] > 0, served
    assert served[b] > 0, served
    await set_faults(first_a, status=500)
    served = await send(100)  # one of the first tier open: the other serves
    assert served == {b: 100}, served
    assert await breaker_state(plane, a) == OPEN
    await set_faults(first_b, status=500)
    served = await send(100)  # both open: the second tier serves
    assert served == {c: 100}, served
    assert await breaker_state(plane, b) == OPEN
    assert await breaker_state(plane, a) != CLOSED

    await clear_faults(first_a)
    await clear_faults(first_b)
    await asyncio.sleep(breaker["cooldown"])  # both cooled down: each lets a probe through
    probed: set[str | None] = set()

    def both_probed(answer: Answer) -> bool:
        probed.add(answer.deployment)
        return {a, b} <= probed

    await send_for(plane, key, model, 5, concurrency=1, stop=both_probed)
    assert probed == {a, b}, probed
    assert await breaker_state(plane, a) == CLOSED
    assert await breaker_state(plane, b) == CLOSED
    served = await send(100)
    assert served[c] == 0, served
    assert served[a] > 0, served
    assert served[b] > 0, served


async def test_second_tier_serves_once_the_first_is_over_its_quota(stack: Stack) -> None:
    """Priority tiers: the second tier gets traffic only while the first tier is over
    its quota (`rpm` 20: the first 20 requests of the minute go to the first tier)."""
    first, second = start_fake(stack), start_fake(stack)
    deployments = [
        await on_fake(stack, first, priority=0, rpm=20),
        await on_fake(stack, second, priority=1),
    ]
    key, model, (a, c) = await keyed_route(stack, deployments)
    answers = await send_many(stack.data_plane_urls[0], key, model, 40, concurrency=1)
    assert [x.deployment for x in answers] == [a] * 20 + [c] * 20
    assert served_by(answers) == {a: 20, c: 20}
    assert await requests_seen(first, second) == [20, 20]


async def test_an_upstream_that_never_answers_is_left_for_the_next_within_12_s(
    stack: Stack,
) -> None:
    """An upstream that accepts the connection and never answers (`hang`): with default
    settings the client gets the answer from the next deployment within 12 s.

    A stream: the default first-token timeout (10 s) ends the attempt. A non-stream
    cannot: its attempt may wait for the default `response` timeout, 120 s, more than
    a long answer's time; the default retry `deadline`, 120 s, gives it that time, so
    the hung attempt uses the request's whole deadline and the client gets a 504
    `upstream_timeout` after 120 s, never the next deployment's answer (the next test
    shows that end with a shorter deadline; a route that wants non-streams failed over
    sooner sets a shorter `response` timeout)."""
    hanging, healthy = start_fake(stack), start_fake(stack)
    await set_faults(hanging, hang=True)
    deployments = [
        await on_fake(stack, hanging, priority=0),  # tried first
        await on_fake(stack, healthy, priority=1),
    ]
    key, model, (_, good) = await keyed_route(stack, deployments)
    async with client_for(1, timeout=30) as client:
        answer = await ask(client, stack.data_plane_urls[0], key, model, stream=True)
    print(f"hang: answered by the next deployment after {answer.seconds:.2f} s")
    assert answer.status == 200, answer.body
    assert b"data: [DONE]" in answer.body
    assert (answer.deployment, answer.attempts) == (good, 2)
    assert 10 <= answer.seconds < 12
    assert (await settled_stats(hanging))["by_status"] == {"hang": 1}


async def test_a_hung_attempt_that_used_the_deadline_does_not_blame_the_next_deployment(
    stack: Stack,
) -> None:
    """The non-stream side of the hang above: the attempt that waits for the hung
    upstream is cut by the request's retry deadline (default timeouts; a 2 s deadline
    instead of the default 120 s keeps the test short). The client gets a 504
    `upstream_timeout` saying how long the attempt had, and the next deployment, which
    no time was left to try, is not counted as failing: it stays closed and serves the
    next request."""
    hanging, healthy = start_fake(stack), start_fake(stack)
    await set_faults(hanging, hang=True)
    deployments = [
        await on_fake(stack, hanging, priority=0),  # tried first
        await on_fake(stack, healthy, priority=1),
    ]
    key, model, (_, good) = await keyed_route(stack, deployments, retry={"deadline": 2})
    plane = stack.data_plane_urls[0]
    answers = await send_many(plane, key, model, 6, concurrency=6)  # > breaker failures
    for answer in answers:
        assert answer.status == 504, answer.body
        error = json.loads(answer.body)["error"]
        assert error["code"] == "upstream_timeout", error
        assert "within 2 s" in error["message"], error
        assert 2 <= answer.seconds < 4
    assert (await settled_stats(healthy))["chat_requests"] == 0
    failures = await deployment_metric(plane, "sluice_deployment_failures_total", good)
    assert not failures, failures
    async with client_for(1) as client:
        answer = await ask(client, plane, key, model, stream=True)
    assert (answer.status, answer.deployment, answer.attempts) == (200, good, 1)


async def test_a_429_retry_after_is_waited_for_on_the_only_deployment(stack: Stack) -> None:
    """A 429 with `Retry-After: 2` on the only deployment: the second attempt comes no
    sooner than 2 s later.

    The fake fails its first request only (a seeded `fail_rate`). Its request log has
    no times, so the wait is measured at the client (the answer took >= 2 s, with
    `x-sluice-attempts` 2) and by watching the fake's request count every 20 ms (each
    request counts when it ends; the 429 and the answer are sent at once): the two
    attempts ended between `low` and `high` s apart, and `high` must reach 2 s (a
    shorter wait shows as `high` < 2 s unless it is shorter by less than the 20 ms
    looks themselves take)."""
    only = start_fake(stack)
    seed = seed_failing_once(0.5)
    await set_faults(only, fail_rate=0.5, fail_status=429, retry_after=2, seed=seed)
    key, model, (deployment,) = await keyed_route(stack, [await on_fake(stack, only)])
    async with client_for(1) as client:
        answer, ends = await asyncio.gather(
            ask(client, stack.data_plane_urls[0], key, model),
            asyncio.wait_for(_request_ends(only, lambda n: n >= 2), timeout=10),
        )
    low, high = ends[2][0] - ends[1][1], ends[2][1] - ends[1][0]
    print(f"429: answered after {answer.seconds:.2f} s; attempts {low:.2f}-{high:.2f} s apart")
    assert answer.status == 200, answer.body
    assert (answer.deployment, answer.attempts) == (deployment, 2)
    assert (await settled_stats(only))["by_status"] == {"429": 1, "200": 1}
    assert answer.seconds >= 2.0
    assert high >= 2.0
