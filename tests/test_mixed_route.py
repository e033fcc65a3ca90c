"""One route can hold deployments of different kinds (an OpenAI and an Anthropic
deployment behind one public model), and a failover between them mid-request (before
the first byte) is invisible to the client.

Two fake upstreams: A serves the OpenAI deployment, B the Anthropic one. A failing
first-tier deployment (a 5xx, a reset, a hang past its timeout) costs the request one
attempt: the client, whichever dialect it speaks, gets the other deployment's answer in
its own dialect, complete and well formed, as if nothing had happened."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.fake import expected_content
from tests.support.kinds import kind_provider, start_kinds_fake
from tests.support.parity import DIALECTS, PROMPT_TOKENS, Seen, read_answer, send
from tests.support.routing import (
    clear_faults,
    create_routed,
    new_key,
    reset_stats,
    set_faults,
    settled_stats,
    usage_of,
)
from tests.support.stack import Stack

TOKENS = 20
INPUT_PRICE, OUTPUT_PRICE = 1.0, 4.0
COST = (PROMPT_TOKENS * INPUT_PRICE + TOKENS * OUTPUT_PRICE) / 1_000_000
STOP = {"openai": "stop", "anthropic": "end_turn"}
EXPECTED = {d: Seen(expected_content(TOKENS), PROMPT_TOKENS, TOKENS, STOP[d]) for d in DIALECTS}
LEFT_AFTER = 0.5  # s: a hung first-tier deployment's first-token and response timeouts
# how a first-tier deployment fails, and what its fake counts for it
FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "status": ({"status": 500}, "500"),
    "reset": ({"reset": True}, "reset"),
    "hang": ({"hang": True}, "hang"),
}
# the Anthropic upstream's own overload (529) stands in for its 5xx
ANTHROPIC_FAULTS = {**FAULTS, "status": ({"status": 529}, "529")}
# A failed deployment waits out a backoff before its next attempt, so a request's retry
# goes to the next tier; kept short and never growing, the next request (BACKOFF later)
# tries the first tier again. No failure opens a breaker.
BACKOFF = 0.05
SETTINGS = {
    "retry": {"max_attempts": 2, "backoff": BACKOFF, "max_backoff": BACKOFF},
    "breaker": {"failures": 1_000_000, "min_requests": 1_000_000},
}


@dataclass
class Mixed:
    stack: Stack
    key: str
    fakes: dict[str, str]  # kind -> the URL of the fake serving that kind's deployment
    models: dict[str, str]  # which kind is tried first -> the route's model
    deployments: dict[tuple[str, str], str]  # (first kind, kind) -> deployment id
    weighted: str  # a route of both kinds at one priority, equal weights
    weighted_deployments: dict[str, str]  # kind -> deployment id

    @property
    def url(self) -> str:
        return self.stack.data_plane_urls[0]


async def _route(
    stack: Stack, providers: dict[str, str], deployments: list[dict[str, Any]], **settings: Any
) -> tuple[str, dict[str, str]]:
    model = "mixed-" + secrets.token_hex(4)
    async with stack.admin() as admin:
        price = {"input_per_million": INPUT_PRICE, "output_per_million": OUTPUT_PRICE}
        assert (await admin.put(f"/prices/{model}", json=price)).status_code == 200
    body = [
        {"provider_id": providers[d.pop("kind")], "upstream_model": "fake-1", **d}
        for d in deployments
    ]
    route = await create_routed(stack, model, body, **settings)
    ids = {kind: d["id"] for kind, d in zip(("first", "second"), route["deployments"], strict=True)}
    return model, ids


@pytest.fixture(scope="module")
async def mixed(stack: Stack) -> Mixed:
    fakes = {"openai": start_kinds_fake(stack), "anthropic": start_kinds_fake(stack)}
    providers = {kind: await kind_provider(stack, kind, url) for kind, url in fakes.items()}
    key = await new_key(stack)
    timeouts = {"first_token": LEFT_AFTER, "response": LEFT_AFTER}
    models, deployments = {}, {}
    for first, second in (("openai", "anthropic"), ("anthropic", "openai")):
        models[first], ids = await _route(
            stack,
            providers,
            [
                {"kind": first, "priority": 0, "timeouts": timeouts},
                {"kind": second, "priority": 1},
            ],
            **SETTINGS,
        )
        deployments[(first, first)], deployments[(first, second)] = ids["first"], ids["second"]
    weighted, ids = await _route(
        stack,
        providers,
        [{"kind": "openai", "weight": 1}, {"kind": "anthropic", "weight": 1}],
        strategy="weighted",
        **SETTINGS,
    )
    for model in [*models.values(), weighted]:
        await stack.until_model(key, model, within=10)
    return Mixed(
        stack,
        key,
        fakes,
        models,
        deployments,
        weighted,
        {"openai": ids["first"], "anthropic": ids["second"]},
    )


@pytest.fixture
async def fresh(mixed: Mixed) -> AsyncIterator[Mixed]:
    """Both fakes healthy, their counters at zero; healthy again afterwards."""
    for url in mixed.fakes.values():
        await settled_stats(url)
        await clear_faults(url)
        await reset_stats(url)
    await asyncio.sleep(2 * BACKOFF)  # an earlier test's failures are forgiven
    yield mixed
    for url in mixed.fakes.values():
        await clear_faults(url)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


async def _served_by(
    mixed: Mixed, resp: httpx.Response, first: str, by: str, attempts: int
) -> None:
    """Headers and usage record of an answer by the `by` deployment of the route whose
    first tier is `first`, after `attempts` attempts, none of which shows."""
    deployment = mixed.deployments[(first, by)]
    assert resp.headers["x-sluice-attempts"] == str(attempts)
    assert resp.headers["x-sluice-deployment"] == deployment
    row = await usage_of(mixed.stack, resp)
    assert str(row["deployment_id"]) == deployment
    assert (row["attempts"], row["status"], row["error_code"]) == (attempts, 200, None)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT_TOKENS, TOKENS)
    assert row["cost_usd"] == pytest.approx(COST, rel=1e-9)
    assert row["model"] == mixed.models[first]


async def _saw(fake_url: str, kind: str, outcome: str) -> None:
    """The fake had exactly one request, of `kind`, that ended as `outcome`."""
    stats = await settled_stats(fake_url)
    assert stats["by_kind"] == {kind: 1}, stats
    assert stats["by_status"] == {outcome: 1}, stats


def _no_trace(resp: httpx.Response) -> None:
    """Nothing of the failed attempt in what the client got."""
    said = resp.text.lower()
    for word in ("error", "overloaded", "reset", "timeout", "timed out", "upstream"):
        assert word not in said, resp.text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_failing_openai_deployment_is_invisible(
    fresh: Mixed, http: httpx.AsyncClient, fault: str, dialect: str, stream: bool
) -> None:
    knobs, outcome = FAULTS[fault]
    await set_faults(fresh.fakes["openai"], **knobs)
    resp = await send(http, fresh.url, fresh.key, dialect, fresh.models["openai"], stream)
    assert read_answer(resp, dialect, stream) == EXPECTED[dialect]
    _no_trace(resp)
    await _served_by(fresh, resp, "openai", "anthropic", 2)
    await _saw(fresh.fakes["openai"], "openai", outcome)
    await _saw(fresh.fakes["anthropic"], "anthropic", "200")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", list(ANTHROPIC_FAULTS))
async def test_a_failing_anthropic_deployment_is_invisible(
    fresh: Mixed, http: httpx.AsyncClient, fault: str, dialect: str, stream: bool
) -> None:
    knobs, outcome = ANTHROPIC_FAULTS[fault]
    await set_faults(fresh.fakes["anthropic"], **knobs)
    resp = await send(http, fresh.url, fresh.key, dialect, fresh.models["anthropic"], stream)
    assert read_answer(resp, dialect, stream) == EXPECTED[dialect]
    _no_trace(resp)
    await _served_by(fresh, resp, "anthropic", "openai", 2)
    await _saw(fresh.fakes["anthropic"], "anthropic", outcome)
    await _saw(fresh.fakes["openai"], "openai", "200")


async def test_the_anthropic_sdk_gets_the_answer_of_a_failover(fresh: Mixed) -> None:
    """The official SDK, whole and streamed, with the OpenAI deployment refusing: the
    Anthropic one answers; and with the Anthropic one refusing, the OpenAI one's answer
    translated."""
    sdk = anthropic.AsyncAnthropic(base_url=fresh.url, api_key=fresh.key, max_retries=0)
    ask: dict[str, Any] = {
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello there friend"}],
    }
    try:
        for failing, serving in (("openai", "anthropic"), ("anthropic", "openai")):
            model = fresh.models[failing]
            await set_faults(fresh.fakes[failing], status=500)
            raw = await sdk.messages.with_raw_response.create(model=model, **ask)
            message = await raw.parse()
            await asyncio.sleep(2 * BACKOFF)
            async with sdk.messages.stream(model=model, **ask) as stream:
                headers = stream.response.headers
                streamed = await stream.get_final_message()
            await clear_faults(fresh.fakes[failing])
            await asyncio.sleep(2 * BACKOFF)
            for answer, got in ((message, raw.headers), (streamed, headers)):
                assert answer.content[0].text == expected_content(TOKENS)  # type: ignore[union-attr]
                assert answer.stop_reason == "end_turn"
                usage = (answer.usage.input_tokens, answer.usage.output_tokens)
                assert usage == (PROMPT_TOKENS, TOKENS)
                assert got["x-sluice-attempts"] == "2"
                assert got["x-sluice-deployment"] == fresh.deployments[(failing, serving)]
    finally:
        await sdk.close()


async def test_the_openai_sdk_gets_the_answer_of_a_failover(fresh: Mixed) -> None:
    sdk = openai.AsyncOpenAI(base_url=fresh.url + "/v1", api_key=fresh.key, max_retries=0)
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there friend"},
    ]
    try:
        for failing, serving in (("openai", "anthropic"), ("anthropic", "openai")):
            model = fresh.models[failing]
            await set_faults(fresh.fakes[failing], reset=True)
            raw = await sdk.chat.completions.with_raw_response.create(
                model=model, messages=messages, max_tokens=100
            )
            whole = raw.parse()
            await asyncio.sleep(2 * BACKOFF)
            stream = await sdk.chat.completions.create(
                model=model,
                messages=messages,
                max_tokens=100,
                stream=True,
                stream_options={"include_usage": True},
            )
            text, finish, usage = "", None, None
            async for chunk in stream:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
                usage = chunk.usage or usage
            await clear_faults(fresh.fakes[failing])
            await asyncio.sleep(2 * BACKOFF)
            assert whole.choices[0].message.content == text == expected_content(TOKENS)
            assert whole.choices[0].finish_reason == finish == "stop"
            assert whole.usage is not None
            assert usage is not None
            assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (
                PROMPT_TOKENS,
                TOKENS,
            )
            assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, TOKENS)
            for headers in (raw.headers, stream.response.headers):
                assert headers["x-sluice-attempts"] == "2"
                assert headers["x-sluice-deployment"] == fresh.deployments[(failing, serving)]
    finally:
        await sdk.close()


async def test_weighted_traffic_over_both_kinds_looks_the_same(
    fresh: Mixed, http: httpx.AsyncClient
) -> None:
    """Both healthy, equal weights: 48 requests (both dialects, whole and streamed) go to
    both kinds, and every answer a client reads, and every usage record, is the same
    whichever served it."""
    gate = asyncio.Semaphore(8)
    cases = [(d, s) for d in DIALECTS for s in (False, True)] * 12

    async def one(dialect: str, stream: bool) -> tuple[str, httpx.Response]:
        async with gate:
            return dialect, await send(http, fresh.url, fresh.key, dialect, fresh.weighted, stream)

    answers = await asyncio.gather(*(one(d, s) for d, s in cases))
    served: Counter[str] = Counter()
    seen: dict[tuple[str, bool, str], set[Seen]] = {}
    by_kind = {d: k for k, d in fresh.weighted_deployments.items()}
    for (dialect, stream), (_, resp) in zip(cases, answers, strict=True):
        kind = by_kind[resp.headers["x-sluice-deployment"]]
        served[kind] += 1
        assert resp.headers["x-sluice-attempts"] == "1"
        seen.setdefault((dialect, stream, kind), set()).add(read_answer(resp, dialect, stream))
    assert min(served["openai"], served["anthropic"]) >= 5, served
    for (dialect, _, _), answers_seen in seen.items():
        assert answers_seen == {EXPECTED[dialect]}, seen
    rows = [await usage_of(fresh.stack, resp) for _, resp in answers]
    figures = {(r["prompt_tokens"], r["completion_tokens"], r["cost_usd"]) for r in rows}
    assert len(figures) == 1, figures
    assert {(r["attempts"], r["status"]) for r in rows} == {(1, 200)}
    assert Counter(by_kind[str(r["deployment_id"])] for r in rows) == served
    counts = {
        kind: (await settled_stats(url))["by_kind"].get(kind, 0)
        for kind, url in fresh.fakes.items()
    }
    assert counts == dict(served)


def test_the_answer_reader_refuses_an_incomplete_answer() -> None:
    """`read_answer` refuses what is not a complete answer (the tests above rely on it)."""
    broken = httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=b'data: {"choices": []}\n\n',
    )
    with pytest.raises(AssertionError):
        read_answer(broken, "openai", True)
    cut = {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}
    truncated = httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=f"event: message_start\ndata: {json.dumps(cut)}\n\n".encode(),
    )
    with pytest.raises(AssertionError):
        read_answer(truncated, "anthropic", True)
