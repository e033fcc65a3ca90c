"""Usage and cost are identical for the same tokens whichever dialect came in and
whichever kind served, and whether the upstream writes compact or spaced JSON, with
events split across reads at every byte position.

One conversation (system "Be brief.", user "Hello there friend": 5 prompt tokens; the
fake's answer `tok0 … tok19`: 20 completion tokens) goes to every kind's route in both
dialects, whole and streamed; every public model has the same price. The usage record
and the answer's own usage must agree everywhere, and match a reference request's
record to the last bit of its cost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.fake import expected_content
from tests.support.kinds import KINDS, Kinds, start_kinds_fake
from tests.support.parity import DIALECTS, PROMPT_TOKENS, Seen, read_answer, send
from tests.support.routing import usage_of
from tests.support.stack import Stack

TOKENS = 20
INPUT_PRICE, OUTPUT_PRICE = 3.0, 15.0  # USD per million tokens, every model alike
COST = (PROMPT_TOKENS * INPUT_PRICE + TOKENS * OUTPUT_PRICE) / 1_000_000
STOP = {"openai": "stop", "anthropic": "end_turn"}
OPERATION = {"openai": "chat", "anthropic": "messages"}
EMBEDDING_KINDS = ("openai", "azure_openai", "gemini")
EMBEDDED = ["the first text", "and a second one here"]
# the kinds whose own wire is the dialect: their answers are relayed as they came
RELAYED = {("openai", "openai"), ("azure_openai", "openai"), ("anthropic", "anthropic")}
CASES = [(kind, dialect) for kind in KINDS for dialect in DIALECTS]
# sizes of the upstream's writes of a stream, beyond one byte, tried on one kind a dialect:
# a translated one for each (Bedrock's binary frames, Gemini's SSE)
SPLITS = [2, 3, 5, 7, 11, 64]
SPLIT_CASES = [("bedrock", "openai"), ("gemini", "anthropic")]


async def _price_all(stack: Stack, models: list[str]) -> None:
    async with stack.admin() as admin:
        for model in models:
            price = {"input_per_million": INPUT_PRICE, "output_per_million": OUTPUT_PRICE}
            resp = await admin.put(f"/prices/{model}", json=price)
            assert resp.status_code == 200, resp.text


async def _keyed(stack: Stack, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """A key of a new tenant (under `policy`)."""
    tenant = await stack.create_tenant()
    if policy is not None:
        async with stack.admin() as admin:
            resp = await admin.put(f"/tenants/{tenant['id']}/policy", json=policy)
            assert resp.status_code == 200, resp.text
    return await stack.create_key(tenant["id"])


@pytest.fixture(scope="module")
async def kinds(stack: Stack) -> Kinds:
    key = await _keyed(stack)
    served = Kinds(stack, start_kinds_fake(stack), key["key"])
    # priced before the routes exist: a data plane that serves a route knows its price
    await _price_all(stack, [served.model(kind) for kind in KINDS])
    await served.create()
    return served


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
async def reference(kinds: Kinds) -> dict[str, Any]:
    """The usage record of the conversation in OpenAI's dialect to the OpenAI route."""
    async with httpx.AsyncClient(timeout=20) as client:
        resp = await send(client, kinds.url, kinds.key, "openai", kinds.model("openai"), False)
    assert resp.status_code == 200, resp.text
    row = await usage_of(kinds.stack, resp)
    assert row["cost_usd"] == pytest.approx(COST, rel=1e-9)
    return row


async def _knobs(kinds: Kinds, **knobs: Any) -> None:
    """Set the fake's process knobs and check it took them."""
    await kinds.faults(**knobs)
    async with httpx.AsyncClient(timeout=5) as client:
        now = (await client.get(kinds.fake_url + "/_fake/faults")).json()
    assert {name: now[name] for name in knobs} == knobs, now


@pytest.fixture
async def spaced(kinds: Kinds) -> AsyncIterator[None]:
    await _knobs(kinds, spaced_json=True)
    try:
        yield
    finally:
        await kinds.faults()


async def _same_usage(
    http: httpx.AsyncClient,
    kinds: Kinds,
    reference: dict[str, Any],
    kind: str,
    dialect: str,
    stream: bool,
) -> httpx.Response:
    """The conversation to `kind`'s route in `dialect`: the client's answer and usage,
    and the usage record, as the reference's."""
    model = kinds.model(kind)
    resp = await send(http, kinds.url, kinds.key, dialect, model, stream)
    seen = read_answer(resp, dialect, stream)
    assert seen == Seen(expected_content(TOKENS), PROMPT_TOKENS, TOKENS, STOP[dialect])
    row = await usage_of(kinds.stack, resp)
    assert row["prompt_tokens"] == reference["prompt_tokens"] == PROMPT_TOKENS
    assert row["completion_tokens"] == reference["completion_tokens"] == TOKENS
    assert row["cost_usd"] == reference["cost_usd"]
    assert (row["operation"], row["dialect"]) == (OPERATION[dialect], dialect)
    assert (row["status"], row["error_code"], row["stream"]) == (200, None, stream)
    assert (row["attempts"], row["disconnected"]) == (1, False)
    assert row["model"] == model
    assert str(row["provider_id"]) == kinds.providers[kind]
    assert str(row["deployment_id"]) == resp.headers["x-sluice-deployment"]
    return resp


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("kind", "dialect"), CASES)
async def test_the_same_usage_whatever_the_dialect_and_kind(
    http: httpx.AsyncClient,
    kinds: Kinds,
    reference: dict[str, Any],
    kind: str,
    dialect: str,
    stream: bool,
) -> None:
    await _same_usage(http, kinds, reference, kind, dialect, stream)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("kind", "dialect"), CASES)
@pytest.mark.usefixtures("spaced")
async def test_the_same_usage_from_spaced_json(
    http: httpx.AsyncClient,
    kinds: Kinds,
    reference: dict[str, Any],
    kind: str,
    dialect: str,
    stream: bool,
) -> None:
    resp = await _same_usage(http, kinds, reference, kind, dialect, stream)
    if (kind, dialect) in RELAYED and not stream:
        assert b'": ' in resp.content  # the upstream's own bytes: spaced indeed


async def _split_stream(
    http: httpx.AsyncClient,
    kinds: Kinds,
    reference: dict[str, Any],
    kind: str,
    dialect: str,
    size: int,
) -> None:
    await _knobs(kinds, split_bytes=size)
    try:
        await _same_usage(http, kinds, reference, kind, dialect, True)
    finally:
        await kinds.faults()


@pytest.mark.parametrize(("kind", "dialect"), CASES)
async def test_the_same_usage_from_a_stream_split_at_every_byte(
    http: httpx.AsyncClient, kinds: Kinds, reference: dict[str, Any], kind: str, dialect: str
) -> None:
    """The upstream writes its stream one byte at a time: every event, every frame,
    every multi-byte sequence arrives split at each of its positions."""
    await _split_stream(http, kinds, reference, kind, dialect, 1)


@pytest.mark.parametrize("size", SPLITS)
@pytest.mark.parametrize(("kind", "dialect"), SPLIT_CASES)
async def test_the_same_usage_from_a_stream_split_in_pieces(
    http: httpx.AsyncClient,
    kinds: Kinds,
    reference: dict[str, Any],
    kind: str,
    dialect: str,
    size: int,
) -> None:
    await _split_stream(http, kinds, reference, kind, dialect, size)


@pytest.mark.parametrize("kind", EMBEDDING_KINDS)
async def test_embeddings_cost_their_input_tokens(
    http: httpx.AsyncClient, kinds: Kinds, kind: str
) -> None:
    resp = await http.post(
        kinds.url + "/v1/embeddings",
        json={"model": kinds.model(kind), "input": EMBEDDED},
        headers={"authorization": f"Bearer {kinds.key}"},
    )
    assert resp.status_code == 200, resp.text
    usage = resp.json()["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"]
    if kind != "gemini":  # Gemini does not count: the gateway estimates
        assert usage["prompt_tokens"] == 8  # the words of both texts
    row = await usage_of(kinds.stack, resp)
    assert (row["operation"], row["dialect"]) == ("embeddings", "openai")
    assert (row["status"], row["stream"]) == (200, False)
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == 0
    assert row["cost_usd"] == pytest.approx(INPUT_PRICE * usage["prompt_tokens"] / 1_000_000)


async def _spent(stack: Stack, key_id: str) -> tuple[int, float]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, coalesce(sum(cost_usd), 0) AS usd FROM usage"
            " WHERE key_id = $1 AND status = 200",
            key_id,
        )
    finally:
        await conn.close()
    return row["n"], row["usd"]


async def test_spend_through_messages_counts_toward_a_budget_as_chat_does(
    http: httpx.AsyncClient, kinds: Kinds, reference: dict[str, Any]
) -> None:
    """A budget of 2.5 requests: spent through messages, chat, messages, it is over,
    and refused in both dialects. Had a message cost less (or nothing), a fourth request
    would pass; had it cost more, the third would be refused."""
    stack = kinds.stack
    cost = reference["cost_usd"]
    key = await _keyed(stack, {"budget_usd": 2.5 * cost, "budget_period": "total"})
    model = kinds.model("anthropic")
    await stack.until_model(key["key"], model, within=10)
    for dialect in ("anthropic", "openai", "anthropic"):
        resp = await send(http, kinds.url, key["key"], dialect, model, False)
        read_answer(resp, dialect, False)
        assert (await usage_of(stack, resp))["cost_usd"] == cost
    count, usd = await _spent(stack, key["id"])
    assert count == 3
    assert usd == pytest.approx(3 * cost, rel=1e-9)
    # the spend just written is read back by the replica within a fleet sync (250 ms)
    await asyncio.sleep(0.6)
    for dialect in ("openai", "anthropic"):
        refused = await send(http, kinds.url, key["key"], dialect, model, False)
        assert refused.status_code == 429, refused.text
        if dialect == "openai":
            assert refused.json()["error"]["code"] == "budget_exceeded"
        else:
            body = refused.json()
            assert body["type"] == "error", body
            assert body["error"]["type"] == "rate_limit_error", body
            assert "budget" in body["error"]["message"], body
    assert (await _spent(stack, key["id"]))[0] == 3
