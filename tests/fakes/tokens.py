"""What every kind answers, whatever its wire: token counts, answer pieces, the tool-call rule.

Each kind's parser reduces its request to an ``Ask`` (the texts that count, the prefill, the
cap, the tools offered); ``plan`` turns it into the ``Job`` every writer answers from, so
the same conversation gets the same answer and the same usage from every kind:

- prompt tokens: whitespace-separated words of every text of the request (system, messages,
  tool results), at least 1; tool call arguments and images count nothing;
- a text answer of ``n`` tokens is the pieces ``"tok0"``, ``" tok1"``, ... ``" tok{n-1}"``,
  one piece per content event, capped by the request's max tokens (finish ``max_tokens``);
  after a final assistant message of ``k`` words the answer continues from piece ``k``;
- with tools offered, a tool choice other than none, a last message that is not a tool
  result and knob ``tool_call`` on, the answer is one call of the forced (or first) tool with
  arguments ``{"input": "<last user text>"}`` (compact JSON), sent in pieces of at most 8
  characters; completion tokens are the number of pieces, finish ``tool_use``;
- Anthropic's ``thinking`` adds a thinking block of ``THINKING`` pieces before the answer,
  counted in the completion tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgspec

from tests.fakes.faults import Faults

__all__ = [
    "ARGUMENT_PIECE",
    "FILTERED_AFTER",
    "THINKING",
    "Ask",
    "Job",
    "arguments_of",
    "content",
    "encoder",
    "piece",
    "plan",
    "texts_in",
    "words",
]

FILTERED_AFTER = 3  # pieces a completion keeps before the content filter stops it
ARGUMENT_PIECE = 8  # characters of tool call arguments per content event
THINKING = ("thought0", " thought1", " thought2")  # the thinking block's pieces
_compact = msgspec.json.Encoder().encode


def _spaced(value: Any) -> bytes:
    return json.dumps(value).encode()


def encoder(spaced: bool) -> Callable[[Any], bytes]:
    """Compact JSON, or JSON with a space after ``:`` and ``,`` (knob ``spaced_json``)."""
    return _spaced if spaced else _compact


def piece(i: int) -> str:
    """The ``i``-th piece of every answer: ``"tok0"``, ``" tok1"``, ..."""
    return f" tok{i}" if i else "tok0"


@lru_cache(maxsize=64)
def content(first: int, end: int) -> str:
    """Pieces ``first`` to ``end - 1`` joined: a whole answer when ``first`` is 0."""
    return "".join(piece(i) for i in range(first, end))


def words(texts: Iterable[str]) -> int:
    """Prompt tokens: the whitespace-separated words of ``texts``, at least 1."""
    return max(sum(len(text.split()) for text in texts), 1)


def texts_in(value: Any) -> list[str]:
    """Every string inside a JSON value (a structured tool result's text)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in texts_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in texts_in(item)]
    return []


def arguments_of(text: str) -> str:
    """The arguments of every tool call: ``{"input": text}`` as compact JSON."""
    return json.dumps({"input": text}, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class Ask:
    """What a request asks, whatever its wire."""

    texts: list[str] = field(default_factory=list)
    prefill: int | None = None  # words of a final assistant message, None without one
    max_tokens: int | None = None
    tools: list[str] = field(default_factory=list)  # names of the tools offered
    choice: str = "auto"  # "auto", "none", "any" or "tool"
    forced: str | None = None  # the tool named by choice "tool"
    tool_result_last: bool = False
    last_user_text: str = ""
    thinking: bool = False


@dataclass(slots=True)
class Job:
    """One request: its knobs, then what it is answered with."""

    faults: Faults
    kind: str = "openai"
    serial: int = 0  # the process's request number (ids)
    created: int = 0  # unix seconds
    model: str = ""
    stream: bool = False
    include_usage: bool = False
    prompt_tokens: int = 1
    max_tokens: int | None = None
    prefill: bool = False
    first: int = 0  # a text answer is pieces first..end-1
    end: int = 0
    finish: str = "end"  # end, max_tokens, tool_use or content_filter
    tool: str | None = None  # the tool called, None for a text answer
    arguments: str = ""
    pieces: list[str] = field(default_factory=list)  # the arguments, piece by piece
    thinking: bool = False
    prepared: Any = None  # an answer made while reading (embeddings)
    streamed: bool = False
    outcome: str | None = None  # "reset" or "hang" when no status was sent
    faulted: bool = False
    encode: Callable[[Any], bytes] = _compact

    @property
    def count(self) -> int:
        """Content events of a stream (a Gemini tool call is one, see its writer)."""
        return len(self.pieces) if self.tool is not None else self.end - self.first

    @property
    def completion_tokens(self) -> int:
        answer = len(self.pieces) if self.tool is not None else self.end - self.first
        return answer + (len(THINKING) if self.thinking else 0)

    @property
    def text(self) -> str:
        return content(self.first, self.end)


def plan(job: Job, ask: Ask) -> None:
    """Fill in ``job``'s answer from ``ask`` and the job's knobs."""
    faults = job.faults
    job.encode = encoder(faults.spaced_json)
    job.prompt_tokens = words(ask.texts)
    job.max_tokens = ask.max_tokens
    job.prefill = ask.prefill is not None
    job.thinking = ask.thinking
    calls = faults.tool_call and ask.tools and ask.choice != "none"
    if calls and not ask.tool_result_last and not job.prefill:
        job.tool = ask.forced if ask.forced in ask.tools else ask.tools[0]
        job.arguments = arguments_of(ask.last_user_text)
        args = job.arguments
        job.pieces = [args[i : i + ARGUMENT_PIECE] for i in range(0, len(args), ARGUMENT_PIECE)]
        job.finish = "tool_use"
        return
    job.end = faults.tokens
    job.first = min(ask.prefill or 0, job.end)
    if job.max_tokens is not None and job.max_tokens < job.end - job.first:
        job.end, job.finish = job.first + job.max_tokens, "max_tokens"
    if faults.content_filter == "completion":
        job.end = min(job.end, job.first + FILTERED_AFTER)
        job.finish, job.faulted = "content_filter", True
