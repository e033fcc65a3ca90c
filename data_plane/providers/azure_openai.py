"""Azure OpenAI: OpenAI's wire format, addressed by deployment.

`base_url` is the resource's endpoint (`https://<resource>.openai.azure.com`); the
upstream model is the deployment's name; `options["api_version"]` picks the API
version. Azure reads the model from the URL, so bodies go without `model`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from data_plane.providers import openai
from data_plane.providers.base import Connection, UpstreamRequest
from data_plane.translate import openai_chat, openai_embeddings
from data_plane.translate.model import EmbeddingsRequest, Request

__all__ = ["ADAPTER", "DEFAULT_API_VERSION"]

DEFAULT_API_VERSION = "2024-10-21"

_encode = msgspec.json.Encoder().encode


def _url(conn: Connection, deployment: str, operation: str) -> str:
    version = quote(conn.options.get("api_version") or DEFAULT_API_VERSION, safe="")
    return (
        f"{conn.base_url}/openai/deployments/{quote(deployment, safe='')}/{operation}"
        f"?api-version={version}"
    )


def _headers(conn: Connection) -> dict[str, str]:
    out = {"content-type": "application/json", "accept-encoding": "identity"}
    if conn.secret:
        out["api-key"] = conn.secret
    return out


def _post(
    conn: Connection, deployment: str, operation: str, body: dict[str, Any]
) -> UpstreamRequest:
    if "model" in body:
        body = {key: value for key, value in body.items() if key != "model"}
    return UpstreamRequest(_url(conn, deployment, operation), _headers(conn), _encode(body))


def request(conn: Connection, upstream_model: str, req: Request) -> UpstreamRequest:
    body = openai_chat.write_request(req, upstream_model)
    return _post(conn, upstream_model, "chat/completions", body)


def native_request(
    conn: Connection, upstream_model: str, body: dict[str, Any], stream: bool
) -> UpstreamRequest:
    return _post(conn, upstream_model, "chat/completions", body)


def embeddings_request(
    conn: Connection, upstream_model: str, req: EmbeddingsRequest
) -> UpstreamRequest:
    body = openai_embeddings.write_request(req, upstream_model)
    return _post(conn, upstream_model, "embeddings", body)


# OpenAI's adapter, addressed the Azure way
ADAPTER = openai.ADAPTER._replace(
    request=request, native_request=native_request, embeddings_request=embeddings_request
)
