"""A primary upstream down for a minute, then healthy again, end to end: every request
meanwhile is answered by the secondary, the breaker keeps the primary from being
asked again and again, and once it mends both data planes go back to it within the
breaker's cooldown and a few seconds."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support.fake import expected_content
from tests.support.routing import (
    assert_whole_stream,
    chat,
    clear_faults,
    on_fake,
    open_route,
    set_faults,
    settled_stats,
)
from tests.support.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


OUTAGE = 60.0  # seconds the primary is down
PACE = 0.2  # seconds between two requests (they alternate between the two data planes)
BREAKER = {"failures": 3, "cooldown": 5.0}
RETRY = {"max_attempts": 3, "backoff": 0.05, "max_backoff": 0.2}
TOKENS = 20


async def test_a_primary_down_for_a_minute_is_served_around_and_returned_to(
    stack: Stack, failing: str, healthy: str, fresh_key: str, http: httpx.AsyncClient
) -> None:
    await set_faults(failing, status=503)
    primary = await on_fake(stack, failing, priority=0)
    secondary = await on_fake(stack, healthy, priority=1)
    model, route = await open_route(
        stack, fresh_key, [primary, secondary], retry=RETRY, breaker=BREAKER
    )
    first, second = (d["id"] for d in route["deployments"])
    sent = 0

    async def ask(replica: int) -> str:
        """One request (every other one a stream), which must succeed; who answered."""
        nonlocal sent
        stream = sent % 2 == 0
        sent += 1
        url = stack.data_plane_urls[replica]
        resp = await chat(http, url, fresh_key, model, stream=stream)
        if stream:
            assert_whole_stream(resp, TOKENS)
        else:
            assert resp.status_code == 200, resp.text
            assert resp.json()["choices"][0]["message"]["content"] == expected_content(TOKENS)
        answered: str = resp.headers["x-sluice-deployment"]
        return answered

    down = time.monotonic()
    while time.monotonic() - down < OUTAGE:
        assert await ask(sent % 2) == second
        await asyncio.sleep(PACE)
    asked_while_down = (await settled_stats(failing))["chat_requests"]

    await clear_faults(failing)
    healed = time.monotonic()
    back: dict[int, float] = {}  # replica -> seconds from the mend to its first answer from it
    while len(back) < 2 and time.monotonic() - healed < BREAKER["cooldown"] + 3:
        replica = sent % 2
        if await ask(replica) == first:
            back.setdefault(replica, time.monotonic() - healed)
        await asyncio.sleep(PACE)
    assert set(back) == {0, 1}, back
    for replica in (0, 0, 1, 1):  # and it stays there
        assert await ask(replica) == first

    # per replica: the failures that open the breaker, then one probe a cooldown (or so)
    probes = OUTAGE / BREAKER["cooldown"] + 2
    assert asked_while_down <= 2 * (BREAKER["failures"] + probes)
    assert sent > 2 * asked_while_down  # most requests never went near the primary
