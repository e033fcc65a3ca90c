"""OpenAI embeddings, both ways: a client's request and answer, an upstream's body.

Token arrays as `input` (lists of token ids) are refused when reading: they
mean something only to the tokenizer of the model they were made for.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import msgspec

from data_plane.translate.model import EmbeddingsRequest, EmbeddingsResponse, Usage
from data_plane.translate.upstream_errors import malformed
from shared.errors import BadRequest, echo

__all__ = ["read_request", "read_response", "write_request", "write_response"]

_encode = msgspec.json.Encoder().encode
_READ = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


def read_request(body: dict[str, Any]) -> EmbeddingsRequest:
    """A client's embeddings body -> the canonical request. `encoding_format` is
    checked here; the caller reads it again to write the answer."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    for key in body:
        if key not in _READ:
            raise BadRequest(f"Unknown field `{echo(key)}`.", param=key)
    model = body.get("model")
    if not isinstance(model, str):
        raise BadRequest("`model` must be a string.", param="model")
    raw = body.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        inputs = list(raw)
    elif isinstance(raw, list) and raw and all(isinstance(item, int | list) for item in raw):
        raise BadRequest(
            "Token arrays as `input` are not supported by this model's upstream; send text.",
            param="input",
        )
    else:
        raise BadRequest("`input` must be a string or an array of strings.", param="input")
    if not inputs:
        raise BadRequest("`input` must not be empty.", param="input")
    for i, text in enumerate(inputs):
        if not text:
            raise BadRequest("`input` must not hold an empty string.", param=f"input[{i}]")
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ("float", "base64"):
        raise BadRequest("`encoding_format` must be `float` or `base64`.", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise BadRequest("`dimensions` must be a positive integer.", param="dimensions")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise BadRequest("`user` must be a string.", param="user")
    return EmbeddingsRequest(model=model, inputs=inputs, dimensions=dimensions, user=user)


def write_request(req: EmbeddingsRequest, model: str) -> dict[str, Any]:
    """The canonical request as an OpenAI embeddings body for `model` (floats asked)."""
    body: dict[str, Any] = {"model": model, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.user is not None:
        body["user"] = req.user
    return body


class _Item(msgspec.Struct):
    embedding: list[float] | str
    index: int = 0


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0


class _List(msgspec.Struct):
    data: list[_Item]
    model: str = ""
    usage: _Usage | None = None


_decode_list = msgspec.json.Decoder(_List).decode


def _floats(value: list[float] | str) -> list[float]:
    if isinstance(value, list):
        return value
    raw = base64.b64decode(value, validate=True)
    if len(raw) % 4:
        raise ValueError("not float32")
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def read_response(body: bytes) -> EmbeddingsResponse:
    """An embeddings `list` body -> the canonical answer, vectors in input order."""
    try:
        answer = _decode_list(body)
        items = sorted(answer.data, key=lambda item: item.index)
        vectors = [_floats(item.embedding) for item in items]
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        raise malformed() from None
    usage = None if answer.usage is None else Usage(input_tokens=answer.usage.prompt_tokens)
    return EmbeddingsResponse(model=answer.model, vectors=vectors, usage=usage)


def write_response(resp: EmbeddingsResponse, model: str, encoding_format: str) -> bytes:
    """The canonical answer as an embeddings `list` body naming `model`;
    `encoding_format` `base64`: each vector as little-endian float32, base64."""
    data: list[dict[str, Any]] = []
    for index, vector in enumerate(resp.vectors):
        embedding: list[float] | str = vector
        if encoding_format == "base64":
            packed = struct.pack(f"<{len(vector)}f", *vector)
            embedding = base64.b64encode(packed).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = resp.usage.input_tokens if resp.usage is not None else 0
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _encode({"object": "list", "data": data, "model": model, "usage": usage})
