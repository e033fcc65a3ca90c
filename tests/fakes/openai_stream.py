"""OpenAI's (and Azure OpenAI's) chat completion chunks, framed as SSE ``data:`` events.

Text: a role chunk, one chunk per piece, a finish chunk, the usage chunk when asked, ``[DONE]``.
A tool call: a first chunk with the call's id and name and empty arguments, then one chunk
per argument piece. Azure OpenAI first sends a chunk of ``prompt_filter_results`` with no
choices, and its choices carry ``content_filter_results``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fakes.openai_wire import FINGERPRINT, FINISH, usage
from tests.fakes.tokens import Job, piece

__all__ = ["AZURE_FILTERS", "Chunks", "azure_prompt_filters"]

_DONE = b"data: [DONE]\n\n"
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
AZURE_FILTERS = {
    name: {"filtered": False, "severity": "safe"}
    for name in ("hate", "self_harm", "sexual", "violence")
}


def azure_prompt_filters() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": AZURE_FILTERS}]


class Chunks:
    """Encodes the chunks of one stream, reusing one dict for all of them."""

    content_type = "text/event-stream"

    def __init__(self, job: Job, head: dict[str, Any], azure: bool = False) -> None:
        self.choice: dict[str, Any] = {
            "index": 0,
            "delta": {},
            "logprobs": None,
            "finish_reason": None,
        }
        if azure:
            self.choice["content_filter_results"] = {}
        head.update(object="chat.completion.chunk", service_tier="default")
        head.update(system_fingerprint=FINGERPRINT, choices=[self.choice])
        if job.include_usage:
            head["usage"] = None
        self.job, self.chunk, self.azure, self.encode = job, head, azure, job.encode
        self.count = job.count

    def event(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        self.choice["delta"], self.choice["finish_reason"] = delta, reason
        return b"data: " + self.encode(self.chunk) + b"\n\n"

    def head(self) -> Iterator[bytes]:
        job = self.job
        if self.azure:
            filters = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
            filters["prompt_filter_results"] = azure_prompt_filters()
            yield b"data: " + self.encode(filters) + b"\n\n"
        if job.tool is None:
            yield self.event({"role": "assistant", "content": "", "refusal": None})
            return
        call = {"index": 0, "id": f"call_{job.serial}", "type": "function"}
        call["function"] = {"name": job.tool, "arguments": ""}
        yield self.event({"role": "assistant", "content": None, "tool_calls": [call]})

    def _delta(self, k: int) -> dict[str, Any]:
        job = self.job
        if job.tool is None:
            return {"content": piece(job.first + k)}
        return {"tool_calls": [{"index": 0, "function": {"arguments": job.pieces[k]}}]}

    def content(self, k: int) -> bytes:
        if self.azure:
            self.choice["content_filter_results"] = AZURE_FILTERS
        return self.event(self._delta(k))

    def malformed(self, k: int) -> bytes:
        """The ``k``-th content chunk cut in the middle: starts like JSON, is not JSON."""
        whole = self.content(k)[6:-2]
        return b"data: " + whole[: len(whole) // 2] + b"\n\n"

    def error(self) -> bytes:
        body = {"message": _SERVER_ERROR, "type": "server_error", "param": None, "code": None}
        return b"data: " + self.encode({"error": body}) + b"\n\n"

    def tail(self, done: bool) -> Iterator[bytes]:
        job = self.job
        if self.azure:
            self.choice["content_filter_results"] = {}
        yield self.event({}, FINISH[job.finish])
        if job.include_usage:
            last = {**self.chunk, "choices": [], "usage": usage(job)}
            yield b"data: " + self.encode(last) + b"\n\n"
        if done:
            yield _DONE
