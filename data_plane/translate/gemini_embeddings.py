"""Gemini's `batchEmbedContents`: canonical embeddings request -> its body, its
answer -> canonical."""

from __future__ import annotations

from typing import Any

import msgspec

from data_plane.translate.model import EmbeddingsRequest, EmbeddingsResponse
from data_plane.translate.upstream_errors import malformed

__all__ = ["read_embeddings", "write_embeddings"]


def write_embeddings(req: EmbeddingsRequest, model: str) -> dict[str, Any]:
    """A `batchEmbedContents` body: one request per input (`user` is ignored)."""
    requests = []
    for text in req.inputs:
        one: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if req.dimensions is not None:
            one["outputDimensionality"] = req.dimensions
        requests.append(one)
    return {"requests": requests}


class _Embedding(msgspec.Struct):
    values: list[float]


class _Embeddings(msgspec.Struct):
    embeddings: list[_Embedding]


_decode_embeddings = msgspec.json.Decoder(_Embeddings).decode


def read_embeddings(body: bytes) -> EmbeddingsResponse:
    """The vectors; `usage` None (Gemini reports no token counts for embeddings) and
    `model` empty (the answer does not name it)."""
    try:
        answer = _decode_embeddings(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed() from None
    return EmbeddingsResponse(model="", vectors=[e.values for e in answer.embeddings])
