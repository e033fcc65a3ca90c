"""What the fake's request handling needs of each upstream kind: the ``Kind`` base class.

A kind checks the credentials and required headers of a request, reads its body into a
``Job`` (through ``tokens.plan``), writes answers, stream events and error bodies in its own
wire format. ``refuse`` applies the refusal knobs the same way for every kind.
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web

from tests.fakes.faults import BadRequest
from tests.fakes.streaming import Framer
from tests.fakes.tokens import Job

__all__ = ["PROCESS", "Kind", "json_response", "obj", "text_of"]

PROCESS = os.urandom(4).hex()  # in ids, so two processes never give the same ones


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def obj(value: Any, param: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a 400 naming ``param``."""
    if not isinstance(value, dict):
        raise BadRequest(f"{param}: Input should be an object", param)
    return value


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Kind:
    """One upstream kind's wire: overridden by each kind."""

    name = "openai"
    chat = True  # False for an embeddings endpoint

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key

    def credential(self, request: web.Request) -> str | None:
        """The credential header's value, for the request log."""
        return request.headers.get("Authorization")

    def gate(self, request: web.Request, raw: bytes) -> web.Response | None:
        """The answer to a request without valid credentials or required parts, else None."""
        return None

    def model_of(self, request: web.Request, body: Any) -> str:
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) and model else "fake-model"

    def read(self, job: Job, body: Any, request: web.Request) -> None:
        """Validate ``body`` and plan ``job``'s answer; BadRequest if the kind would refuse."""
        raise NotImplementedError

    def bad_request(self, message: str, param: str | None) -> web.Response:
        raise NotImplementedError

    def status_error(self, status: int, model: str, retry_after: int | None) -> web.Response:
        raise NotImplementedError

    def prefill_refused(self) -> web.Response:
        message = "This model does not support assistant message prefill. The conversation"
        return self.bad_request(message + " must end with a user message.", "messages")

    def too_long(self, window: int, prompt: int, completion: int | None) -> web.Response:
        raise NotImplementedError

    def prompt_filtered(self, job: Job) -> web.Response | None:
        """A blocked prompt: by default an empty answer with finish ``prompt_filter``."""
        job.tool, job.pieces, job.end = None, [], job.first
        job.finish, job.faulted = "prompt_filter", True
        return None

    def refuse(self, job: Job) -> web.Response | None:
        """The refusal a knob makes of a valid body: prefill, context window, prompt filter."""
        faults = job.faults
        if faults.refuse_prefill and job.prefill:
            return self.prefill_refused()
        window = faults.context_window
        if window is not None and job.prompt_tokens + (job.max_tokens or 0) > window:
            return self.too_long(window, job.prompt_tokens, job.max_tokens)
        if faults.content_filter == "prompt":
            return self.prompt_filtered(job)
        return None

    def answer(self, job: Job) -> bytes:
        """The non-stream answer's body."""
        raise NotImplementedError

    def framer(self, job: Job) -> Framer:
        raise NotImplementedError
