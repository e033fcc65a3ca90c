"""OpenTelemetry traces and GenAI metrics of a real data plane.

A data plane with `SLUICE_OTLP_ENDPOINT` pointing at an OTLP/HTTP receiver in this
test (protobuf decoded with opentelemetry-proto) relays streams from the fake
provider: the receiver gets the request's span and its attempt's span with the
GenAI attributes and the token counts the client saw, and the upstream got a
`traceparent` of the same trace (the client's, when it sent one). `/metrics`, read
with prometheus_client's parser, carries the GenAI histograms; with the tenant cap
at 2, tenants past the first two count as "other".
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client.parser import text_string_to_metric_families

from data_plane.genai_metrics import OTHER
from tests.support.database import clone_database, drop_database, with_db
from tests.support.processes import free_port
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.timeout(120)

MODEL = "traced-model"
UPSTREAM_MODEL = "fake-traced"
CHAT = "/v1/chat/completions"
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


class Receiver:
    """An OTLP/HTTP trace receiver: every span it was sent, its attributes decoded."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource in export.resource_spans:
            for scoped in resource.scope_spans:
                for span in scoped.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "kind": span.kind,
                            "attributes": attributes,
                        }
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    async def until(self, trace_id: str, count: int, within: float = 20) -> list[dict[str, Any]]:
        """The spans of `trace_id`, once there are `count` of them."""
        deadline = time.monotonic() + within
        while True:
            found = [s for s in self.spans if s["trace_id"] == trace_id]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{len(found)} span(s) of {trace_id}"
            await asyncio.sleep(0.05)


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, which) if which else None


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", found.traces)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield found, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture(scope="module")
async def traced(
    pg_url: str,
    template_db: str,
    log_dir: Path,
    handed_out: list[str],
    receiver: tuple[Receiver, str],
) -> AsyncIterator[Stack]:
    env = {
        "SLUICE_OTLP_ENDPOINT": receiver[1],
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "SLUICE_METRICS_TENANT_CAP": "2",
    }
    name = await clone_database(pg_url, template_db)
    stack = start_stack(with_db(pg_url, name), log_dir, handed_out, data_planes=1, extra_env=env)
    try:
        provider = await stack.create_provider()
        await stack.create_route(MODEL, provider["id"], UPSTREAM_MODEL)
        yield stack
    finally:
        stack.stop()
        await drop_database(pg_url, name)


async def _key(stack: Stack) -> tuple[str, dict[str, Any]]:
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    await stack.until_model(key["key"], MODEL)
    return tenant["id"], key


def _chat() -> dict[str, Any]:
    return {
        "model": MODEL,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "trace me"}],
    }


def _stream_usage(text: str) -> dict[str, int]:
    """The usage chunk of an SSE answer."""
    for line in text.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage: dict[str, int] = chunk["usage"]
                return usage
    raise AssertionError(f"no usage in {text!r}")


async def _upstream_traceparents(stack: Stack) -> list[str | None]:
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(stack.fake_url + "/_fake/requests")
        return [entry.get("traceparent") for entry in resp.json()]


async def test_a_stream_is_traced_to_the_upstream(
    traced: Stack, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    tenant_id, key = await _key(traced)
    url = traced.data_plane_urls[0]
    async with httpx.AsyncClient(timeout=30) as client:
        await client.delete(traced.fake_url + "/_fake/requests")
        resp = await client.post(
            url + CHAT, json=_chat(), headers={"authorization": f"Bearer {key['key']}"}
        )
    assert resp.status_code == 200, resp.text
    usage = _stream_usage(resp.text)
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    (traceparent,) = await _upstream_traceparents(traced)
    assert traceparent is not None, "the upstream got no trace context"
    version, trace_id, upstream_parent, _ = traceparent.split("-")
    assert version == "00"

    spans = await found.until(trace_id, 2)
    (request,) = [s for s in spans if s["parent"] == ""]
    (attempt,) = [s for s in spans if s["parent"] == request["span_id"]]
    assert upstream_parent == attempt["span_id"], "the upstream's parent is the attempt"
    assert request["name"] == f"chat {MODEL}"
    assert attempt["name"] == f"chat {UPSTREAM_MODEL}"
    wanted = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": UPSTREAM_MODEL,
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "sluice.tenant.id": tenant_id,
        "sluice.key.id": key["id"],
        "http.response.status_code": 200,
    }
    assert wanted.items() <= request["attributes"].items(), request["attributes"]
    deployment = request["attributes"]["sluice.deployment.id"]
    assert {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": UPSTREAM_MODEL,
        "gen_ai.response.model": UPSTREAM_MODEL,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "sluice.deployment.id": deployment,
    }.items() <= attempt["attributes"].items(), attempt["attributes"]


async def test_the_clients_trace_is_continued(
    traced: Stack, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    _, key = await _key(traced)
    client_span = "b7ad6b7169203331"
    headers = {
        "authorization": f"Bearer {key['key']}",
        "traceparent": f"00-{CLIENT_TRACE}-{client_span}-01",
    }
    async with httpx.AsyncClient(timeout=30) as client:
        await client.delete(traced.fake_url + "/_fake/requests")
        resp = await client.post(traced.data_plane_urls[0] + CHAT, json=_chat(), headers=headers)
    assert resp.status_code == 200, resp.text
    (traceparent,) = await _upstream_traceparents(traced)
    assert traceparent is not None
    assert traceparent.split("-")[1] == CLIENT_TRACE
    spans = await found.until(CLIENT_TRACE, 2)
    (request,) = [s for s in spans if s["parent"] == client_span]
    assert [s for s in spans if s["parent"] == request["span_id"]], "no attempt span"


def _genai(text: str) -> dict[str, list[Any]]:
    """The GenAI families' samples, by family name."""
    return {
        family.name: family.samples
        for family in text_string_to_metric_families(text)
        if family.name.startswith("gen_ai_")
    }


async def test_genai_metrics_are_labelled_and_tenants_capped(traced: Stack) -> None:
    url = traced.data_plane_urls[0]
    tenants = [await _key(traced) for _ in range(3)]
    async with httpx.AsyncClient(timeout=30) as client:
        usages = []
        for _, key in tenants:
            resp = await client.post(
                url + CHAT, json=_chat(), headers={"authorization": f"Bearer {key['key']}"}
            )
            assert resp.status_code == 200, resp.text
            usages.append(_stream_usage(resp.text))
        families = _genai((await client.get(url + "/metrics")).text)
    assert set(families) == {
        "gen_ai_client_token_usage",
        "gen_ai_client_operation_duration_seconds",
        "gen_ai_server_time_to_first_token_seconds",
    }
    named = {s.labels["tenant"] for s in families["gen_ai_client_token_usage"]} - {OTHER}
    assert len(named) == 2, "the cap names two tenants"
    capped = [
        u for (tenant_id, _), u in zip(tenants, usages, strict=True) if tenant_id not in named
    ]
    assert capped, "a tenant past the cap"
    others = {
        s.labels["gen_ai_token_type"]: s.value
        for s in families["gen_ai_client_token_usage"]
        if s.name == "gen_ai_client_token_usage_sum" and s.labels["tenant"] == OTHER
    }
    assert others == {
        "input": sum(u["prompt_tokens"] for u in capped),
        "output": sum(u["completion_tokens"] for u in capped),
    }
    for name in (
        "gen_ai_client_operation_duration_seconds",
        "gen_ai_server_time_to_first_token_seconds",
    ):
        (count,) = [
            s for s in families[name] if s.name == name + "_count" and s.labels["tenant"] == OTHER
        ]
        assert count.value == len(capped)
        assert count.labels["gen_ai_request_model"] == MODEL
        assert count.labels["gen_ai_operation_name"] == "chat"
        assert count.labels["status_class"] == "2xx"
        assert count.labels["deployment"] not in ("", "none")


# last: its 404 adds a label set that the metrics test above does not expect
async def test_an_unknown_models_span_does_not_carry_the_clients_string(
    traced: Stack, receiver: tuple[Receiver, str]
) -> None:
    found, _ = receiver
    _, key = await _key(traced)
    trace_id = "1bf7651916cd43dd8448eb211c80319d"
    headers = {
        "authorization": f"Bearer {key['key']}",
        "traceparent": f"00-{trace_id}-c7ad6b7169203332-01",
    }
    body = {**_chat(), "model": "client-chosen-model-name"}
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(traced.data_plane_urls[0] + CHAT, json=body, headers=headers)
    assert resp.status_code == 404, resp.text
    (span,) = await found.until(trace_id, 1)
    assert span["name"] == "chat unknown"
    assert span["attributes"]["gen_ai.request.model"] == "unknown"
    assert "client-chosen-model-name" not in str(span)


async def test_label_sets_past_their_cap_record_as_other(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> None:
    env = {"SLUICE_METRICS_LABEL_SET_CAP": "1"}
    name = await clone_database(pg_url, template_db)
    stack = start_stack(with_db(pg_url, name), log_dir, handed_out, data_planes=1, extra_env=env)
    try:
        provider = await stack.create_provider()
        await stack.create_route(MODEL, provider["id"], UPSTREAM_MODEL)
        tenants = [await _key(stack) for _ in range(3)]
        async with httpx.AsyncClient(timeout=30) as client:
            for _, key in tenants:
                resp = await client.post(
                    stack.data_plane_urls[0] + CHAT,
                    json=_chat(),
                    headers={"authorization": f"Bearer {key['key']}"},
                )
                assert resp.status_code == 200, resp.text
            families = _genai((await client.get(stack.data_plane_urls[0] + "/metrics")).text)
    finally:
        stack.stop()
        await drop_database(pg_url, name)
    name = "gen_ai_client_operation_duration_seconds_count"
    counts = {
        (s.labels["tenant"], s.labels["deployment"], s.labels["gen_ai_request_model"]): s.value
        for s in families["gen_ai_client_operation_duration_seconds"]
        if s.name == name
    }
    (first, _), *_ = tenants
    deployments = {deployment for _, deployment, _ in counts} - {OTHER}
    assert len(deployments) == 1, counts
    assert counts == {(first, deployments.pop(), MODEL): 1, (OTHER, OTHER, MODEL): 2}
