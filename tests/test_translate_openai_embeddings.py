"""OpenAI embeddings translators over the wire-format fixtures."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from openai.types import CreateEmbeddingResponse

from data_plane.translate import openai_embeddings
from data_plane.translate.model import EmbeddingsRequest, EmbeddingsResponse, Usage
from shared.errors import BadRequest, UpstreamError

FIXTURES = Path(__file__).parent / "fixtures" / "openai"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_a_request_reads_and_writes_back() -> None:
    body = fixture("embeddings_request.json")
    req = openai_embeddings.read_request(body)
    assert req == EmbeddingsRequest(
        "text-embedding-3-small",
        ["The food was delicious.", "The waiter was friendly."],
        dimensions=4,
        user="user-8431",
    )
    written = openai_embeddings.write_request(req, "up")
    assert written == {
        "model": "up",
        "input": body["input"],
        "dimensions": 4,
        "user": "user-8431",
    }
    assert openai_embeddings.read_request({"model": "m", "input": "one"}).inputs == ["one"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2], [3]]}, "input"),
        ({"input": []}, "input"),
        ({"input": ""}, "input[0]"),
        ({"input": ["a", ""]}, "input[1]"),
        ({"input": None}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": {"text": "a"}}, "input"),
        ({"model": 3}, "model"),
        ({"encoding_format": "int8"}, "encoding_format"),
        ({"dimensions": 0}, "dimensions"),
        ({"dimensions": True}, "dimensions"),
        ({"dimensions": "4"}, "dimensions"),
        ({"user": 5}, "user"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_requests_name_the_field(change: dict[str, Any], param: str) -> None:
    body = {**fixture("embeddings_request.json"), **change}
    with pytest.raises(BadRequest) as caught:
        openai_embeddings.read_request(body)
    assert caught.value.param == param
    junks: list[Any] = [None, [], "x", 3]
    for junk in junks:
        with pytest.raises(BadRequest):
            openai_embeddings.read_request(junk)


def test_float_and_base64_answers_read_the_same() -> None:
    floats = openai_embeddings.read_response(
        (FIXTURES / "embeddings_response_float.json").read_bytes()
    )
    packed = openai_embeddings.read_response(
        (FIXTURES / "embeddings_response_base64.json").read_bytes()
    )
    assert floats.usage == packed.usage == Usage(input_tokens=11)
    assert floats.model == "text-embedding-3-small"
    assert len(floats.vectors) == 2
    for a, b in zip(floats.vectors, packed.vectors, strict=True):
        assert a == pytest.approx(b, rel=1e-6)


def test_vectors_follow_the_answers_indexes() -> None:
    body = json.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": 1, "embedding": [2.0]},
                {"object": "embedding", "index": 0, "embedding": [1.0]},
            ],
            "model": "m",
        }
    ).encode()
    answer = openai_embeddings.read_response(body)
    assert answer.vectors == [[1.0], [2.0]]
    assert answer.usage is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"data": 3}',
        b'{"data": [{"embedding": "@@@"}]}',
        b'{"data": [{"embedding": "AAA="}]}',
    ],
)
def test_an_unreadable_answer_is_upstream_malformed(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        openai_embeddings.read_response(body)
    assert caught.value.code == "upstream_malformed"


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_a_written_answer_is_what_the_sdk_reads(encoding: str) -> None:
    resp = EmbeddingsResponse("up", [[0.5, -0.25], [1.0, 0.0]], Usage(input_tokens=4))
    written = openai_embeddings.write_response(resp, "public", encoding)
    body = json.loads(written)
    if encoding == "base64":  # the SDK decodes these (little-endian float32) before parsing
        for item in body["data"]:
            raw = base64.b64decode(item["embedding"])
            item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    parsed = CreateEmbeddingResponse.model_validate(body)
    assert parsed.model == "public"
    assert [item.embedding for item in parsed.data] == resp.vectors
    assert (parsed.usage.prompt_tokens, parsed.usage.total_tokens) == (4, 4)
    assert openai_embeddings.read_response(written).vectors == resp.vectors
