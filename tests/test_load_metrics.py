"""The autoscaler's signals: requests in flight and open streams per data plane replica.

A real data plane relays 100 streams that the fake upstream keeps open; `/metrics`, read
with prometheus_client's own text parser, counts them, and counts nothing once the
clients have left, the streams have ended or the upstream has failed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from data_plane.metrics import OPEN_STREAMS, REQUESTS_IN_FLIGHT
from tests.support.k8s import OVERLAYS, adapter_names, of_kind, rendered
from tests.support.stack import Stack

pytestmark = pytest.mark.slow  # run beside the others by `make test`

STREAMS = 100
MODEL = "load-model"


async def load_gauges(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The load gauges of one data plane, as Prometheus reads them."""
    resp = await client.get(url + "/metrics")
    assert resp.status_code == 200
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        if family.name in (REQUESTS_IN_FLIGHT, OPEN_STREAMS):
            assert family.type == "gauge"
            (sample,) = family.samples
            found[family.name] = sample.value
    assert found.keys() == {REQUESTS_IN_FLIGHT, OPEN_STREAMS}
    return found


async def _until(
    client: httpx.AsyncClient, url: str, expected: dict[str, float], within: float = 30
) -> None:
    deadline = time.monotonic() + within
    seen = await load_gauges(client, url)
    while seen != expected:
        assert time.monotonic() < deadline, f"{url}/metrics: {seen}, expected {expected}"
        await asyncio.sleep(0.05)
        seen = await load_gauges(client, url)


@pytest.fixture(scope="module")
async def key(stack: Stack) -> AsyncIterator[str]:
    provider = await stack.create_provider()
    await stack.create_route(MODEL, provider["id"], "fake-1")
    tenant = await stack.create_tenant()
    key: str = (await stack.create_key(tenant["id"]))["key"]
    await stack.until_model(key, MODEL)
    yield key
    async with httpx.AsyncClient() as client:
        await client.delete(stack.fake_url + "/_fake/faults")


async def _set_faults(stack: Stack, **faults: Any) -> None:
    async with httpx.AsyncClient() as client:
        resp = await client.put(stack.fake_url + "/_fake/faults", json=faults)
        assert resp.status_code == 200, resp.text


def _chat(stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


async def _open_stream(
    client: httpx.AsyncClient, exits: AsyncExitStack, url: str
) -> AsyncIterator[bytes]:
    """Start a stream and read its first piece; `exits` closes it. The caller keeps the
    reader: a reader collected as garbage closes its stream."""
    resp = await exits.enter_async_context(
        client.stream("POST", url + "/v1/chat/completions", json=_chat(True))
    )
    assert resp.status_code == 200
    reader = resp.aiter_raw()
    first = await anext(reader)
    assert first.startswith(b"data: ")
    return reader


async def test_open_streams_are_counted_until_their_clients_leave(stack: Stack, key: str) -> None:
    url = stack.data_plane_urls[0]
    await _set_faults(stack, delay_ms=600_000)  # after the first event, the upstream waits
    limits = httpx.Limits(max_connections=STREAMS + 10)
    headers = {"authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client,
        httpx.AsyncClient(timeout=10) as scraper,
    ):
        await _until(scraper, url, {REQUESTS_IN_FLIGHT: 0, OPEN_STREAMS: 0})
        async with AsyncExitStack() as exits:
            readers = await asyncio.gather(
                *(_open_stream(client, exits, url) for _ in range(STREAMS))
            )
            await _until(scraper, url, {REQUESTS_IN_FLIGHT: STREAMS, OPEN_STREAMS: STREAMS})
            other = await load_gauges(scraper, stack.data_plane_urls[1])
            assert other == {REQUESTS_IN_FLIGHT: 0, OPEN_STREAMS: 0}, "counted per replica"
            del readers
        # every client hung up mid-stream
        await _until(scraper, url, {REQUESTS_IN_FLIGHT: 0, OPEN_STREAMS: 0})


async def test_finished_and_failed_requests_leave_nothing_counted(stack: Stack, key: str) -> None:
    url = stack.data_plane_urls[0]
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        await _set_faults(stack, tokens=5)
        for stream in (True, False, True, False):
            resp = await client.post(url + "/v1/chat/completions", json=_chat(stream))
            assert resp.status_code == 200, resp.text
        await _set_faults(stack, status=500)
        for stream in (True, False):
            resp = await client.post(url + "/v1/chat/completions", json=_chat(stream))
            assert resp.status_code >= 500, resp.text
        await _set_faults(stack, tokens=5, error_after=2)  # an error event mid-stream
        resp = await client.post(url + "/v1/chat/completions", json=_chat(True))
        assert resp.status_code == 200
        assert b"error" in resp.content
        resp = await client.post(url + "/v1/chat/completions", json={"model": MODEL})
        assert resp.status_code == 400, "refused at the gate"
        await _until(client, url, {REQUESTS_IN_FLIGHT: 0, OPEN_STREAMS: 0})


async def test_the_autoscalers_read_metrics_the_data_plane_serves(stack: Stack) -> None:
    """The HPA's pods metric, through the prometheus-adapter rules applied to a real
    /metrics, and every series KEDA's query names, are there."""
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(stack.data_plane_urls[0] + "/metrics")
    gauges = {
        family.name
        for family in text_string_to_metric_families(resp.text)
        if family.type == "gauge"
    }
    served = adapter_names(gauges)
    wanted: set[str] = set()
    for overlay in OVERLAYS:
        for hpa in of_kind(rendered(overlay), "HorizontalPodAutoscaler"):
            for metric in hpa["spec"]["metrics"]:
                if metric["type"] == "Pods":
                    name = metric["pods"]["metric"]["name"]
                    assert name in served, f"{overlay}: {name} is served by no adapter rule"
                    wanted.add(served[name])
        for scaled in of_kind(rendered(overlay), "ScaledObject"):
            for trigger in scaled["spec"]["triggers"]:
                if trigger["type"] == "prometheus":
                    names = set(re.findall(r"sluice_[a-z_]+", trigger["metadata"]["query"]))
                    assert names <= gauges, f"{overlay}: {names - gauges} not on /metrics"
                    wanted |= names
    assert REQUESTS_IN_FLIGHT in wanted
