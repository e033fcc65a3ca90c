"""Embeddings: deterministic vectors, OpenAI's ``POST /v1/embeddings`` wire.

The vector of a text is ``dimensions`` (default ``DIMENSIONS``) values in [-1, 1), each a
16-bit slice of SHA-256 digests of the text divided by 32768 (so exact in float32, the same
through ``encoding_format: base64``). ``prompt_tokens`` is the words of all inputs (a token
array counts its length), at least 1, as for chat.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import msgspec
from aiohttp import web

from tests.fakes.faults import BadRequest
from tests.fakes.openai_wire import OpenAI
from tests.fakes.tokens import Job

__all__ = ["DIMENSIONS", "OpenAIEmbeddings", "dimensions_of", "vector"]

DIMENSIONS = 8


def vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The embedding of ``text``."""
    data, counter = b"", 0
    while len(data) < 2 * dimensions:
        data += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [value / 32768 for value in struct.unpack(f"<{dimensions}h", data[: 2 * dimensions])]


def dimensions_of(value: Any, name: str) -> int:
    if value is None:
        return DIMENSIONS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise BadRequest(f"'{name}' must be an integer between 1 and 4096.", name)
    return value


def _inputs(value: Any) -> tuple[list[str], int]:
    """The texts to embed and their prompt tokens (a token array: its ints joined)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BadRequest("'input' must be a non-empty string or array.", "input")
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        value = [value]
    texts, tokens = [], 0
    for item in value:
        if isinstance(item, str):
            texts.append(item)
            tokens += len(item.split())
        elif isinstance(item, list) and all(isinstance(i, int) for i in item):
            texts.append(" ".join(map(str, item)))
            tokens += len(item)
        else:
            raise BadRequest("'input' must be strings or arrays of token ids.", "input")
    return texts, max(tokens, 1)


def read_embeddings(job: Job, body: Any, model: str | None = None) -> None:
    """Validate an OpenAI embeddings body and prepare its answer (``model``: Azure's)."""
    if body is msgspec.UNSET or not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if model is None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a string.", "model")
    texts, tokens = _inputs(body.get("input"))
    dimensions = dimensions_of(body.get("dimensions"), "dimensions")
    form = body.get("encoding_format", "float")
    if form not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    data = []
    for i, text in enumerate(texts):
        values: Any = vector(text, dimensions)
        if form == "base64":
            values = base64.b64encode(struct.pack(f"<{dimensions}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": values})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    job.model, job.prompt_tokens = model, tokens
    job.prepared = {"object": "list", "data": data, "model": model, "usage": usage}


class OpenAIEmbeddings(OpenAI):
    """``POST /v1/embeddings``."""

    chat = False

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        read_embeddings(job, body)

    def answer(self, job: Job) -> bytes:
        return job.encode(job.prepared)
