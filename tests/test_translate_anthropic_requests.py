"""Anthropic's Messages format: a client's request read, an upstream's request written."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from data_plane.translate.anthropic_messages import (
    read_request,
    write_request,
)
from data_plane.translate.model import (
    Image,
    Message,
    Request,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from shared.errors import (
    BadRequest,
)

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# -- reading a client's request -----------------------------------------------------


def test_read_request_fixture() -> None:
    req = read_request(fixture("request.json"))
    assert req.model == "claude-sonnet-4-5"
    assert req.max_tokens == 2048
    assert req.system == [
        Text("You are a helpful weather assistant."),
        Text("Units follow the user's locale."),
    ]
    user, assistant, results, second, failed = req.messages
    assert user.content[0] == Image(media_type="image/png", data=user.content[0].data)  # type: ignore[union-attr]
    assert user.content[1] == Image(
        url="https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
    )
    assert isinstance(assistant.content[0], Thinking)
    assert assistant.content[0].signature
    assert assistant.content[2] == ToolCall(
        "toolu_01A09q90qw90lq917835lq9", "get_weather", '{"location":"San Francisco, CA"}'
    )
    assert results.content[0] == ToolResult(
        "toolu_01A09q90qw90lq917835lq9", [Text("15 degrees, foggy")]
    )
    assert second.content[0] == Thinking(redacted=second.content[0].redacted)  # type: ignore[union-attr]
    assert failed.content == [
        ToolResult(
            "toolu_01CvRfEGGsr8ktmJkJ9ZpTBn",
            [Text("unit conversion failed: value out of range")],
            is_error=True,
        )
    ]
    assert [t.name for t in req.tools] == ["get_weather", "convert_units"]
    assert req.tools[0].parameters["required"] == ["location"]
    assert req.tool_choice == ToolChoice("auto", parallel=False)
    assert req.thinking_budget == 1024
    assert req.user == "13803d75-b4b5-4c3e-b2a2-6f21399b021b"
    assert req.stop == ["\n\nHuman:"]
    assert req.temperature == 1.0
    assert req.stream is True


def minimal(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]} | extra


def test_read_request_small_shapes() -> None:
    req = read_request(minimal(system="be brief", tool_choice={"type": "any"}))
    assert req.system == [Text("be brief")]
    assert req.messages == [Message("user", [Text("hi")])]
    assert req.tool_choice == ToolChoice("required")
    assert req.stream is False
    choice = read_request(minimal(tool_choice={"type": "tool", "name": "f"})).tool_choice
    assert choice == ToolChoice("tool", "f")
    assert read_request(minimal(thinking={"type": "disabled"})).thinking_budget is None
    assert read_request(minimal(cache_control={"type": "ephemeral"}, top_k=None)).top_p is None
    assert read_request(minimal(service_tier="auto")).model == "m"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (minimal(top_k=5), "top_k"),
        (minimal(logprobs=True), "logprobs"),
        (minimal(service_tier="standard_only"), "service_tier"),
        (minimal(max_tokens=0), "max_tokens"),
        (minimal(max_tokens=True), "max_tokens"),
        (minimal(max_tokens="5"), "max_tokens"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (minimal(messages=[]), "messages"),
        (minimal(messages={}), "messages"),
        (minimal(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (minimal(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (
            minimal(messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}]),
            "messages[0].content[0].type",
        ),
        (
            minimal(messages=[{"role": "user", "content": [{"type": "search_result"}]}]),
            "messages[0].content[0].type",
        ),
        (
            minimal(messages=[{"role": "assistant", "content": [{"type": "server_tool_use"}]}]),
            "messages[0].content[0].type",
        ),
        (
            minimal(messages=[{"role": "user", "content": [{"type": "hologram"}]}]),
            "messages[0].content[0].type",
        ),
        (
            minimal(messages=[{"role": "user", "content": [{"text": "no type"}]}]),
            "messages[0].content[0].type",
        ),
        (
            minimal(
                messages=[
                    {"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}
                ]
            ),
            "messages[0].content[0].type",
        ),
        (
            minimal(
                messages=[
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}
                ]
            ),
            "messages[0].content[0].input",
        ),
        (
            minimal(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "a",
                                "content": [{"type": "document"}],
                            }
                        ],
                    }
                ]
            ),
            "messages[0].content[0].content[0].type",
        ),
        (
            minimal(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            ),
            "messages[0].content[0].source.type",
        ),
        (minimal(system=[{"type": "image"}]), "system[0].type"),
        (minimal(system=5), "system"),
        (minimal(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0].type"),
        (minimal(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (minimal(tools=[{"name": "f", "input_schema": {}, "strict": True}]), "tools[0].strict"),
        (minimal(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (minimal(tool_choice={"type": "tool"}), "tool_choice.name"),
        (
            minimal(tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}),
            "tool_choice.disable_parallel_tool_use",
        ),
        (minimal(metadata={"user_id": 5}), "metadata.user_id"),
        (minimal(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (minimal(thinking={"type": "adaptive"}), "thinking.type"),
        (minimal(temperature="hot"), "temperature"),
        (minimal(stop_sequences="STOP"), "stop_sequences"),
        (minimal(stop_sequences=[1]), "stop_sequences[0]"),
        (minimal(stream="yes"), "stream"),
        (minimal(output_config={"effort": "high"}), "output_config"),
    ],
)
def test_read_request_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        read_request(body)
    assert caught.value.param == param


JUNK: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    [],
    [None],
    [1],
    {},
    {"type": None},
    {"type": "text"},
    {"type": "image", "source": {"type": "base64"}},
    {"type": 7},
    [{"type": "text", "text": 1}],
    2**70,
]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def test_junk_anywhere_in_a_request_is_a_bad_request_or_fine() -> None:
    """Every node of the fixture replaced by each junk value: the only failure is BadRequest."""
    doc = fixture("request.json")
    refused = 0
    for path in _paths(doc):
        for junk in JUNK:
            try:
                read_request(_replace(doc, path, junk))
            except BadRequest:
                refused += 1
    assert refused > 500
    for junk in JUNK:
        with pytest.raises(BadRequest):
            read_request(junk)


# -- writing an upstream request -----------------------------------------------------


def test_request_round_trip_is_stable() -> None:
    req = read_request(fixture("request.json"))
    body = write_request(req, "claude-upstream")
    assert body["model"] == "claude-upstream"
    assert read_request(body) == Request(**{**_fields(req), "model": "claude-upstream"})
    again = write_request(read_request(body), "claude-upstream")
    assert again == body


def _fields(req: Request) -> dict[str, Any]:
    return {name: getattr(req, name) for name in req.__struct_fields__}


def test_write_request_shapes() -> None:
    req = Request(
        model="public",
        system=[Text("only one")],
        messages=[
            Message("user", [Text("a")]),
            Message("user", [Image(url="https://x/y.png")]),
            Message("assistant", [Thinking("mine, unsigned"), Text(""), ToolCall("c1", "f", "")]),
            Message("assistant", [ToolCall("c2", "g", '{"k": [1, 2]}')]),
            Message("user", [Text("after")]),
            Message("user", [ToolResult("c1", [Text("one")]), ToolResult("c2", is_error=True)]),
        ],
        stop=["END"],
        tools=[Tool("f"), Tool("g", "does g", {"type": "object", "properties": {}})],
        tool_choice=ToolChoice("required", parallel=False),
        user="u1",
        thinking_budget=8000,
        top_p=0.5,
    )
    body = write_request(req, "claude-x")
    assert body["system"] == "only one"
    assert body["max_tokens"] == 8000 + 4096  # room for the thinking budget
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8000}
    assert body["stop_sequences"] == ["END"]
    assert body["top_p"] == 0.5
    assert "stream" not in body
    assert body["metadata"] == {"user_id": "u1"}
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["tools"][0] == {"name": "f", "input_schema": {"type": "object", "properties": {}}}
    assert body["tools"][1]["description"] == "does g"
    user, assistant, results = body["messages"]
    assert user == {
        "role": "user",
        "content": [
            {"type": "text", "text": "a"},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        ],
    }
    assert assistant["content"] == [
        {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
        {"type": "tool_use", "id": "c2", "name": "g", "input": {"k": [1, 2]}},
    ]
    assert [b["type"] for b in results["content"]] == ["tool_result", "tool_result", "text"]
    assert results["content"][1] == {"type": "tool_result", "tool_use_id": "c2", "is_error": True}
    assert write_request(Request("m", [], max_tokens=5, stream=True), "m")["stream"] is True
    assert write_request(Request("m", []), "m")["max_tokens"] == 4096


def test_write_request_tool_choice_modes() -> None:
    tools = [Tool("f")]

    def choice(tc: ToolChoice | None, with_tools: bool = True) -> Any:
        req = Request("m", [], tools=tools if with_tools else [], tool_choice=tc)
        return write_request(req, "m").get("tool_choice")

    assert choice(ToolChoice("auto")) == {"type": "auto"}
    assert choice(ToolChoice("none", parallel=False)) == {"type": "none"}
    assert choice(ToolChoice("tool", "f")) == {"type": "tool", "name": "f"}
    assert choice(ToolChoice("tool", "f", parallel=True)) == {"type": "tool", "name": "f"}
    assert choice(ToolChoice("none"), with_tools=False) is None
    assert choice(None) is None
    with pytest.raises(BadRequest) as caught:
        choice(ToolChoice("tool"))
    assert caught.value.param == "tool_choice"


def test_write_request_refusals() -> None:
    with pytest.raises(BadRequest) as caught:
        write_request(Request("m", [], reasoning_effort="high"), "m")
    assert caught.value.param == "reasoning_effort"
    bad_args = Request("m", [Message("assistant", [Text("x"), ToolCall("c", "f", "{nope")])])
    with pytest.raises(BadRequest) as caught:
        write_request(bad_args, "m")
    assert caught.value.param == "messages[0].content[1].arguments"
    not_object = Request("m", [Message("assistant", [ToolCall("c", "f", "[1]")])])
    with pytest.raises(BadRequest):
        write_request(not_object, "m")
    no_type = Request("m", [Message("user", [ToolResult("c", [Image(data="AAAA")])])])
    with pytest.raises(BadRequest) as caught:
        write_request(no_type, "m")
    assert caught.value.param == "messages[0].content[0].content[0]"


def test_write_request_keeps_thinking_with_its_signature() -> None:
    req = Request(
        "m",
        [Message("assistant", [Thinking("hmm", signature="sig"), Thinking(redacted="opaque")])],
    )
    assert write_request(req, "m")["messages"][0]["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
