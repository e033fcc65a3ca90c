"""Azure OpenAI: OpenAI's wire under ``/openai/deployments/{deployment}/...?api-version=``.

The ``api-version`` query parameter is required (without it Azure answers 404
``Resource not found``); the key comes in the ``api-key`` header (or as a bearer token); the
model of every answer is the deployment's name, whatever the body says. Answers carry
Azure's content filter results (``prompt_filter_results``, ``content_filter_results``;
streams start with a chunk of prompt filter results and no choices). Errors are OpenAI's
bodies, but for Azure's own 401, 404 and 429 (``{"error": {"code", "message"}}``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.embeddings import OpenAIEmbeddings, read_embeddings
from tests.fakes.kinds import json_response
from tests.fakes.openai_stream import AZURE_FILTERS, Chunks, azure_prompt_filters
from tests.fakes.openai_wire import OpenAI, completion, encode, head_of, read_body
from tests.fakes.streaming import Framer
from tests.fakes.tokens import Job

__all__ = ["Azure", "AzureEmbeddings", "azure_error"]

_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to"
    " provide a valid key for an active subscription and use a correct regional API endpoint"
    " for your resource."
)
_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment"
    " within the last 5 minutes, please wait a moment and try again."
)
_RATE_LIMITED = (
    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version"
    " {version} have exceeded token rate limit of your current OpenAI S0 pricing tier."
    " Please retry after {wait} seconds. Please go here: https://aka.ms/oai/quotaincrease if"
    " you would like to further increase the default rate limit."
)


def azure_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(status, encode({"error": {"code": code, "message": message}}), headers)


def _gate(request: web.Request, api_key: str | None) -> web.Response | None:
    if not request.query.get("api-version"):
        return azure_error(404, "404", "Resource not found")
    if api_key is None:
        return None
    given = request.headers.get("api-key")
    if given == api_key or request.headers.get("Authorization") == f"Bearer {api_key}":
        return None
    return azure_error(401, "401", _DENIED)


def _status_error(request_status: int, retry_after: int | None) -> web.Response | None:
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    if request_status == 401:
        return azure_error(401, "401", _DENIED, headers)
    if request_status == 404:
        return azure_error(404, "DeploymentNotFound", _NO_DEPLOYMENT, headers)
    if request_status == 429:
        wait = 1 if retry_after is None else retry_after
        message = _RATE_LIMITED.format(version="2024-10-21", wait=wait)
        return azure_error(429, "429", message, headers)
    return None


class _Addressed(OpenAI):
    """What Azure changes in OpenAI's wire: the key in ``api-key``, the deployment in
    the path (and in the answers), an ``api-version`` required, its own errors."""

    name = "azure_openai"

    def credential(self, request: web.Request) -> str | None:
        return request.headers.get("api-key") or request.headers.get("Authorization")

    def gate(self, request: web.Request, raw: bytes) -> web.Response | None:
        return _gate(request, self.api_key)

    def model_of(self, request: web.Request, body: Any) -> str:
        return request.match_info["deployment"]

    def status_error(self, status: int, model: str, retry_after: int | None) -> web.Response:
        own = _status_error(status, retry_after)
        return super().status_error(status, model, retry_after) if own is None else own


class Azure(_Addressed):
    """``POST /openai/deployments/{deployment}/chat/completions?api-version=...``."""

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        read_body(job, body, request.match_info["deployment"])

    def answer(self, job: Job) -> bytes:
        body = completion(job)
        body["prompt_filter_results"] = azure_prompt_filters()
        body["choices"][0]["content_filter_results"] = AZURE_FILTERS
        return job.encode(body)

    def framer(self, job: Job) -> Framer:
        return Chunks(job, head_of(job), azure=True)


class AzureEmbeddings(_Addressed, OpenAIEmbeddings):
    """``POST /openai/deployments/{deployment}/embeddings?api-version=...``."""

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        read_embeddings(job, body, request.match_info["deployment"])
