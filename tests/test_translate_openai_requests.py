"""OpenAI chat completions requests both ways, over the wire-format fixtures."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from data_plane.translate import openai_chat
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
from shared.errors import BadRequest

FIXTURES = Path(__file__).parent / "fixtures"
OPENAI = FIXTURES / "openai"


def fixture(name: str) -> Any:
    return json.loads((OPENAI / name).read_text())


# -- requests ---------------------------------------------------------------------


def test_a_request_with_tools_and_images_reads_into_canonical() -> None:
    req = openai_chat.read_request(fixture("chat_request_tools_images.json"))
    assert req.system == [Text("You are a helpful assistant.")]
    user, assistant, results = req.messages
    assert user.role == "user"
    assert user.content[1] == Image(url="https://upload.example.org/photos/paris.jpg")
    image = user.content[2]
    assert isinstance(image, Image)
    assert (image.media_type, image.url) == ("image/png", None)
    assert image.data is not None
    assert image.data.startswith("iVBOR")
    assert [type(part) for part in assistant.content] == [ToolCall, ToolCall]
    assert assistant.content[0] == ToolCall(
        "call_Qx1aLz0bXk7yP2nE4rT9uWcd", "get_weather", '{"city": "Paris"}'
    )
    # both tool messages and the user's follow-up share one user message
    assert results.role == "user"
    assert results.content == [
        ToolResult("call_Qx1aLz0bXk7yP2nE4rT9uWcd", [Text("18 C, cloudy")]),
        ToolResult("call_Vb8mNq3sHj6tR1oK5wY2eZfg", [Text("22 C, sunny")]),
        Text("Which is warmer?"),
    ]
    assert req.tools[0].name == "get_weather"
    assert req.tools[0].parameters["required"] == ["city"]
    assert req.tool_choice == ToolChoice(mode="auto", parallel=True)
    assert (req.max_tokens, req.temperature, req.top_p) == (256, 0.2, 0.9)
    assert (req.stop, req.stream, req.user) == (["\n\n\n"], True, "user-8431")


def test_a_request_round_trips_keeping_its_meaning() -> None:
    body = fixture("chat_request_tools_images.json")
    req = openai_chat.read_request(body)
    written = openai_chat.write_request(req, "gpt-4o-mini")
    assert openai_chat.read_request(written) == req
    roles = [message["role"] for message in written["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    assert written["messages"][1]["content"][2]["image_url"]["url"].startswith(
        "data:image/png;base64,iVBOR"
    )
    assert written["messages"][2]["content"] is None
    assert (
        written["tools"][0]["function"]["parameters"] == body["tools"][0]["function"]["parameters"]
    )
    assert written["max_tokens"] == 256
    assert written["stream_options"] == {"include_usage": True}
    assert written["parallel_tool_calls"] is True


def test_writing_keeps_tool_results_before_the_users_text_and_drops_thinking() -> None:
    req = Request(
        model="m",
        system=[Text("be brief")],
        messages=[
            Message("user", [Text("hi")]),
            Message(
                "assistant",
                [Thinking("hmm", signature="sig"), Text("calling"), ToolCall("c1", "f", "{}")],
            ),
            Message("user", [Text("and?"), ToolResult("c1", [Text("ok")], is_error=True)]),
        ],
        tools=[Tool("f")],
        tool_choice=ToolChoice(mode="tool", name="f"),
        reasoning_effort="low",
    )
    body = openai_chat.write_request(req, "up")
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "user", "content": "and?"},
    ]
    assert body["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["reasoning_effort"] == "low"
    assert "stream" not in body


def test_what_openai_cannot_take_is_refused_by_name() -> None:
    base = Request(model="m", messages=[Message("user", [Text("hi")])])
    with pytest.raises(BadRequest) as caught:
        openai_chat.write_request(msgspec.structs.replace(base, thinking_budget=1024), "up")
    assert caught.value.param == "thinking"
    image_result = Message("user", [ToolResult("c", [Image(url="https://x/y.png")])])
    with pytest.raises(BadRequest) as caught:
        openai_chat.write_request(msgspec.structs.replace(base, messages=[image_result]), "up")
    assert caught.value.param == "messages[0].content[0].content[0]"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("response_format", {"type": "json_object"}),
        ("seed", 7),
        ("presence_penalty", 0.5),
        ("frequency_penalty", -1),
        ("logit_bias", {"50256": -100}),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("prediction", {"type": "content", "content": "x"}),
        ("service_tier", "flex"),
        ("web_search_options", {}),
        ("functions", [{"name": "f"}]),
        ("function_call", "auto"),
        ("store", True),
        ("some_extension", 1),
    ],
)
def test_fields_canonical_cannot_carry_are_refused(field: str, value: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], field: value}
    with pytest.raises(BadRequest) as caught:
        openai_chat.read_request(body)
    assert caught.value.param == field


def test_neutral_values_are_accepted() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "x"}],
        "n": 1,
        "logprobs": False,
        "seed": None,
        "presence_penalty": 0,
        "frequency_penalty": 0.0,
        "response_format": {"type": "text"},
        "modalities": ["text"],
        "stream_options": {"include_usage": True},
        "metadata": {"k": "v"},
        "store": False,
        "service_tier": "auto",
        "max_tokens": 10,
    }
    req = openai_chat.read_request(body)
    assert (req.system, req.max_tokens) == ([Text("rules")], 10)


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "function", "name": "f", "content": "x"}, "messages[0].role"),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
            "messages[0].content[0]",
        ),
        ({"role": "user", "content": [{"type": "file", "file": {}}]}, "messages[0].content[0]"),
        ({"role": "user", "content": [{"type": "video"}]}, "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "text", "text": 3}]}, "messages[0].content[0].text"),
        ({"role": "robot", "content": "x"}, "messages[0].role"),
        ({"role": "tool", "content": "x"}, "messages[0].tool_call_id"),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
            },
            "messages[0].content[0].image_url.url",
        ),
    ],
)
def test_bad_messages_name_the_path(message: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        openai_chat.read_request({"model": "m", "messages": [message]})
    assert caught.value.param == param


JUNK: list[Any] = [None, 0, 1.5, True, "x", "", [], [1], {}, {"type": "zzz"}, [{"type": "zzz"}]]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*path, index)))
    return out


def _replace(body: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    body = copy.deepcopy(body)
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return body


def test_junk_anywhere_in_a_request_is_a_bad_request_and_nothing_else() -> None:
    body = fixture("chat_request_tools_images.json")
    tried = 0
    for path in _paths(body):
        variants = [_replace(body, path, junk, False) for junk in JUNK]
        if path:
            variants.append(_replace(body, path, None, True))
        for variant in variants:
            tried += 1
            with contextlib.suppress(BadRequest):
                openai_chat.read_request(variant)
    assert tried > 500
