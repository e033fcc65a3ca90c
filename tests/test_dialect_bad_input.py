"""Bad input gets a 4xx in the client's own dialect, never a 5xx, whichever kind
serves the route.

What the gateway checks itself (the body is JSON, an object, with a string model, a
boolean stream, and, for Anthropic's Messages, a positive `max_tokens`) is refused
on every route, the field named. The rest is read, and refused naming the field, when
the request is translated for another kind; on a route the client's own dialect serves
the body goes upstream as it came, so the upstream decides (the fake is lenient where a
real provider is strict): never a 5xx, and a refusal in the client's dialect.
Embeddings and Anthropic's token count are checked too, and a sweep of junk bodies
(every value of a valid body swapped for a value of another type) looks for anything
that is not a 2xx or a 4xx in the dialect's shape."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from tests.support.dialects import ask, body_for, dialect_error
from tests.support.kinds import Kinds, start_kinds_fake
from tests.support.routing import new_key
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(60)

# (client's dialect, kind serving the route): one served in the client's own dialect
# (the body relayed), the others translated
PAIRS = [
    ("openai", "openai"),
    ("openai", "anthropic"),
    ("openai", "gemini"),
    ("openai", "bedrock"),
    ("anthropic", "anthropic"),
    ("anthropic", "openai"),
]
NATIVE = {("openai", "openai"), ("openai", "azure_openai"), ("anthropic", "anthropic")}
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
PHOTO = "https://images.example.com/cat.png"

Body = dict[str, Any]


class Bad(NamedTuple):
    """A bad request: how to make it from a valid body, the field it should name
    (None: the body as a whole), and whether the gateway itself refuses it on
    every route (else only when it translates the request)."""

    name: str
    dialects: tuple[str, ...]
    spoil: Callable[[Body], Body | bytes]
    field: str | None
    gate: bool = False


def _without(name: str) -> Callable[[Body], Body]:
    return lambda body: {k: v for k, v in body.items() if k != name}


def _with(**changes: Any) -> Callable[[Body], Body]:
    return lambda body: {**body, **changes}


def _content(content: Any) -> Callable[[Body], Body]:
    return _with(messages=[{"role": "user", "content": content}])


BOTH = ("openai", "anthropic")
BAD = [
    Bad("not-json", BOTH, lambda body: b'{"model": "m", "messages": [', None, gate=True),
    Bad("not-an-object", BOTH, lambda body: b'["hello", "there"]', None, gate=True),
    Bad("no-model", BOTH, _without("model"), "model", gate=True),
    Bad("model-not-a-string", BOTH, _with(model=123), "model", gate=True),
    Bad("model-empty", BOTH, _with(model=""), "model", gate=True),
    Bad("no-messages", BOTH, _without("messages"), "messages"),
    Bad("messages-not-a-list", BOTH, _with(messages="hello there"), "messages"),
    Bad("messages-empty", BOTH, _with(messages=[]), "messages"),
    Bad("message-not-an-object", BOTH, _with(messages=["hello there"]), "messages[0]"),
    Bad("role-unknown", BOTH, _with(messages=[{"role": "wizard", "content": "hi"}]), "role"),
    Bad("content-a-number", BOTH, _content(42), "messages[0].content"),
    Bad(
        "content-part-unknown",
        BOTH,
        _content([{"type": "hologram", "text": "hi"}]),
        "messages[0].content[0].type",
    ),
    Bad("content-part-not-an-object", BOTH, _content(["hi"]), "messages[0].content[0]"),
    Bad("text-not-a-string", BOTH, _content([{"type": "text", "text": 7}]), "text"),
    Bad("max-tokens-missing", ("anthropic",), _without("max_tokens"), "max_tokens", gate=True),
    Bad("max-tokens-negative", ("anthropic",), _with(max_tokens=-5), "max_tokens", gate=True),
    Bad("max-tokens-zero", ("anthropic",), _with(max_tokens=0), "max_tokens", gate=True),
    Bad("max-tokens-a-string", ("anthropic",), _with(max_tokens="10"), "max_tokens", gate=True),
    Bad("max-tokens-negative", ("openai",), _with(max_tokens=-5), "max_tokens"),
    Bad("max-tokens-a-string", ("openai",), _with(max_tokens="10"), "max_tokens"),
    Bad(
        "max-completion-tokens-zero",
        ("openai",),
        _with(max_completion_tokens=0),
        "max_completion_tokens",
    ),
    Bad("stream-a-string", BOTH, _with(stream="yes"), "stream", gate=True),
    Bad("stream-a-number", BOTH, _with(stream=1), "stream", gate=True),
    Bad("tools-not-a-list", BOTH, _with(tools="weather"), "tools"),
    Bad("tool-not-an-object", BOTH, _with(tools=["weather"]), "tools[0]"),
    Bad(
        "tool-function-not-an-object",
        ("openai",),
        _with(tools=[{"type": "function", "function": "weather"}]),
        "tools[0].function",
    ),
    Bad(
        "tool-schema-not-an-object",
        ("anthropic",),
        _with(tools=[{"name": "weather", "input_schema": "object"}]),
        "tools[0].input_schema",
    ),
    Bad(
        "tool-name-not-a-string",
        ("anthropic",),
        _with(tools=[{"name": 5, "input_schema": {"type": "object"}}]),
        "tools[0].name",
    ),
]
CASES = [(dialect, kind, bad) for dialect, kind in PAIRS for bad in BAD if dialect in bad.dialects]


@pytest.fixture(scope="module")
async def kinds(stack: Stack) -> Kinds:
    served = Kinds(stack, start_kinds_fake(stack), await new_key(stack))
    await served.create()
    return served


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


def assert_refused(dialect: str, resp: httpx.Response) -> dict[str, Any]:
    """A 4xx in the dialect's shape; its inner error object."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    return dialect_error(dialect, resp)


def names(dialect: str, error: dict[str, Any], field: str) -> bool:
    """Does the error name the field (OpenAI's `param`, or the message)?"""
    if dialect == "openai" and error["param"] is not None and field in error["param"]:
        return True
    return field in error["message"]


@pytest.mark.parametrize(
    ("dialect", "kind", "bad"), CASES, ids=[f"{d}-{k}-{b.name}" for d, k, b in CASES]
)
async def test_bad_input_is_a_4xx_in_the_clients_dialect(
    http: httpx.AsyncClient, kinds: Kinds, dialect: str, kind: str, bad: Bad
) -> None:
    body = bad.spoil(body_for(dialect, kinds.model(kind)))
    resp = await ask(http, kinds.url, dialect, kinds.key, body)
    assert resp.status_code < 500, resp.text
    native = (dialect, kind) in NATIVE
    if native and not bad.gate and resp.status_code == 200:
        return  # relayed as it came, and the (lenient) upstream took it
    error = assert_refused(dialect, resp)
    if bad.field is not None and (bad.gate or not native):
        assert names(dialect, error, bad.field), error


# --- images by URL, which Gemini and Bedrock cannot fetch -------------------------------------


def _photo(dialect: str, inline: bool) -> dict[str, Any]:
    if dialect == "anthropic":
        source = (
            {"type": "base64", "media_type": "image/png", "data": PNG}
            if inline
            else {"type": "url", "url": PHOTO}
        )
        return {"type": "image", "source": source}
    url = f"data:image/png;base64,{PNG}" if inline else PHOTO
    return {"type": "image_url", "image_url": {"url": url}}


def _looking(dialect: str, inline: bool, system: bool = False) -> list[dict[str, Any]]:
    """A question with a photo as its second part (after a system message if `system`)."""
    question = {"type": "text", "text": "what is in this picture"}
    messages = [{"role": "user", "content": [question, _photo(dialect, inline)]}]
    if system:
        messages.insert(0, {"role": "system", "content": "Be brief."})
    return messages


IMAGE_CASES = [(d, k) for d in ("openai", "anthropic") for k in ("gemini", "bedrock")]


@pytest.mark.parametrize(("dialect", "kind"), IMAGE_CASES, ids=[f"{d}-{k}" for d, k in IMAGE_CASES])
async def test_an_image_by_url_is_refused_naming_the_part(
    http: httpx.AsyncClient, kinds: Kinds, dialect: str, kind: str
) -> None:
    model = kinds.model(kind)
    by_url = body_for(dialect, model, messages=_looking(dialect, inline=False))
    refused = await ask(http, kinds.url, dialect, kinds.key, by_url)
    error = assert_refused(dialect, refused)
    assert refused.status_code == 400
    assert names(dialect, error, "messages[0].content[1]"), error
    assert "URL" in error["message"]
    # the same picture inline is taken: only the URL was the matter
    inline = body_for(dialect, model, messages=_looking(dialect, inline=True))
    taken = await ask(http, kinds.url, dialect, kinds.key, inline)
    assert taken.status_code == 200, taken.text


def _tool_turn(arguments: str) -> list[dict[str, Any]]:
    """An OpenAI conversation: a system message, a question, the assistant's tool call
    (with these arguments), its result, and the user's next words with a photo."""
    function = {"name": "weather", "arguments": arguments}
    call: dict[str, Any] = {"id": "call_1", "type": "function", "function": function}
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the weather in Lisbon"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "user", "content": _looking("openai", inline=False)[0]["content"]},
    ]


@pytest.mark.parametrize("kind", ["gemini", "bedrock"])
async def test_an_image_by_url_is_named_where_the_client_put_it(
    http: httpx.AsyncClient, kinds: Kinds, kind: str
) -> None:
    """OpenAI's system messages are not messages upstream, and a tool's result and the
    user's next words are one: the error still names the place in the client's body."""
    model = kinds.model(kind)
    after_system = body_for("openai", model, messages=_looking("openai", False, system=True))
    error = assert_refused("openai", await ask(http, kinds.url, "openai", kinds.key, after_system))
    assert error["param"] == "messages[1].content[1]", error
    after_tool = body_for("openai", model, messages=_tool_turn('{"city": "Lisbon"}'))
    error = assert_refused("openai", await ask(http, kinds.url, "openai", kinds.key, after_tool))
    assert error["param"] == "messages[4].content[1]", error


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "bedrock"])
async def test_a_tool_calls_bad_arguments_are_named_where_the_client_put_them(
    http: httpx.AsyncClient, kinds: Kinds, kind: str
) -> None:
    messages = _tool_turn("{not json")
    messages[-1] = {"role": "user", "content": "And tomorrow?"}
    body = body_for("openai", kinds.model(kind), messages=messages)
    error = assert_refused("openai", await ask(http, kinds.url, "openai", kinds.key, body))
    assert error["param"] == "messages[2].tool_calls[0].function.arguments", error


# --- embeddings, and Anthropic's token count ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "changes", "field", "words"),
    [
        ("openai", {"input": ""}, "input", None),
        ("openai", {"input": []}, "input", None),
        ("openai", {"input": 42}, "input", None),
        ("openai", {"input": [None]}, "input", None),
        ("openai", {"input": {"text": "hello"}}, "input", None),
        ("gemini", {"input": ["fine", 7]}, "input", None),
        ("openai", {"input": "hello", "stream": True}, "stream", None),
        ("openai", {"input": "hello", "encoding_format": "hex"}, "encoding_format", None),
        ("openai", {"input": "hello", "model": 5}, "model", None),
        ("anthropic", {"input": "hello"}, "model", "not an embeddings model"),
        ("bedrock", {"input": "hello"}, "model", "not an embeddings model"),
    ],
    ids=[
        "empty-string",
        "empty-list",
        "a-number",
        "a-null-in-the-list",
        "an-object",
        "gemini-a-number-in-the-list",
        "streamed",
        "unknown-encoding",
        "model-a-number",
        "anthropic-route",
        "bedrock-route",
    ],
)
async def test_bad_embeddings_are_a_4xx(
    http: httpx.AsyncClient,
    kinds: Kinds,
    kind: str,
    changes: dict[str, Any],
    field: str,
    words: str | None,
) -> None:
    body = {"model": kinds.model(kind), **changes}
    resp = await ask(http, kinds.url, "openai", kinds.key, body, path="/v1/embeddings")
    error = assert_refused("openai", resp)
    assert resp.status_code == 400
    assert error["param"] == field, error
    if words is not None:
        assert words in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"model": "m", "messages": [', None),
        (b"", None),
        (b"[]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
    ],
    ids=["cut-json", "empty", "a-list", "no-model"],
)
async def test_bad_token_counts_are_a_4xx_in_anthropics_shape(
    http: httpx.AsyncClient, kinds: Kinds, body: bytes, field: str | None
) -> None:
    path = "/v1/messages/count_tokens"
    resp = await ask(http, kinds.url, "anthropic", kinds.key, body, path=path)
    error = assert_refused("anthropic", resp)
    assert resp.status_code == 400
    if field is not None:
        assert field in error["message"]


# --- junk: every value of a valid body swapped for one of another type ---------------------------

JUNK: list[Any] = [1, "x", [], {}, None, True]


def _valid(dialect: str, model: str) -> Body:
    body: Body = {
        "model": model,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "max_tokens": 20,
    }
    if dialect == "openai":
        body["temperature"] = 0.5
    else:
        body["system"] = "Be brief."
    return body


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where every value of a JSON document is (the root left out)."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield (*at, key)
        if isinstance(item, dict | list) and item:
            yield from _paths(item, (*at, key))


def _swapped(body: Body, path: tuple[Any, ...], junk: Any) -> Body:
    out = copy.deepcopy(body)
    into: Any = out
    for key in path[:-1]:
        into = into[key]
    into[path[-1]] = copy.deepcopy(junk)
    return out


def junk_bodies(dialect: str, model: str) -> list[tuple[str, Body]]:
    """Each value of a valid body replaced by each junk value of another type (the
    model name kept for one replacement in six, so most of them reach a route)."""
    valid = _valid(dialect, model)
    out = []
    for path in _paths(valid):
        for junk in JUNK:
            if path == ("model",) and junk != "x":
                continue  # a model that is not a string: the same refusal five more times
            where = ".".join(str(p) for p in path)
            out.append((f"{where}={junk!r}", _swapped(valid, path, junk)))
    return out


@pytest.mark.parametrize(("dialect", "kind"), PAIRS, ids=[f"{d}-{k}" for d, k in PAIRS])
async def test_junk_never_gets_a_5xx(
    http: httpx.AsyncClient, kinds: Kinds, dialect: str, kind: str
) -> None:
    """Never a 5xx: the gateway refuses junk, or relays the upstream's refusal of a
    body it passed on as it came, in the dialect's shape."""
    bodies = junk_bodies(dialect, kinds.model(kind))
    assert len(bodies) >= 40
    wrong, refused = [], 0
    for name, body in bodies:
        resp = await ask(http, kinds.url, dialect, kinds.key, body)
        if resp.status_code == 200:
            continue
        refused += 1
        try:
            assert_refused(dialect, resp)
        except AssertionError:
            wrong.append(f"{name}: {resp.status_code} {resp.text[:300]}")
    assert not wrong, "\n".join(wrong)
    assert refused >= len(bodies) // 3  # most junk is refused, not answered
