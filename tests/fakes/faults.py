"""The fake upstream's knobs: tokens, timing and faults, per request or for the whole process.

Every knob has a header form (``x-fake-`` + its name with ``-`` for ``_``) and a JSON form
(its name) for ``PUT /_fake/faults``. A header overrides the process setting for that
request only. A bad value, an unknown ``x-fake-*`` header or an unknown JSON name gets a 400
``invalid_request_error``. Flags take ``1``/``0`` or ``true``/``false``; ``null`` switches
an optional knob off (``x-fake-fail-after: null``), ``0`` switches ``status`` off.

Shape and timing of the answer:
  tokens N             pieces per answer (``max_tokens`` and continuation as documented in
                       ``tests/fakes/provider.py``)
  latency_ms N         wait before anything else (before faults, before any header)
  delay_ms N           wait between stream events
  first_token_ms N     stream: headers at once, then wait N ms before the first event;
                       non-stream: wait N ms more before answering, like latency

Faults instead of an answer (after ``latency_ms``; the first that applies wins):
  reset 1              close the connection with a TCP reset (RST), no response at all
  hang 1               send nothing until the client goes away; logged ``disconnected``
  status N             answer N (400-599) with the kind's own error body (OpenAI: 429 is its
                       rate-limit body, type ``requests``, code ``rate_limit_exceeded``, 5xx
                       its server-error body; Anthropic ``{"type": "error", ...}`` with 529
                       ``overloaded_error``; Gemini ``{"error": {"code", "message",
                       "status"}}``; Bedrock ``{"message"}`` with ``x-amzn-ErrorType``)
  fail_rate R          a share R (0-1) of requests fail: one draw a request from the process's
                       ``random.Random(seed)``, so the same seed gives the same sequence
  fail_mode M          how they fail: ``status`` (default), ``reset`` or ``hang``
  fail_status N        the status of ``fail_mode: status`` (400-599, default 500)
  retry_after S        adds ``Retry-After: S`` to those error statuses (forced or random)
  seed S               JSON and ``--seed`` only; every PUT and DELETE reseeds the draw

Refusals of a valid body (checked in this order):
  refuse_prefill 1     a last message from the assistant gets a 400 ``invalid_request_error``,
                       param ``messages`` (assistant message prefill is not supported)
  context_window N     a 400 ``context_length_exceeded`` (param ``messages``) when the prompt
                       tokens plus ``max_completion_tokens``/``max_tokens`` (0 if not sent)
                       exceed N, worded as OpenAI words either case
  content_filter prompt      OpenAI/Azure: a 400 with Azure OpenAI's content-filter body
                             (``innererror``); Gemini: a 200 with ``promptFeedback``
                             ``blockReason: SAFETY`` and no candidates; Anthropic, Bedrock:
                             an empty answer stopped ``refusal`` / ``guardrail_intervened``
  content_filter completion  a 200 cut after 3 pieces (fewer if the answer is shorter) with
                             the kind's filter reason (``content_filter``, ``refusal``,
                             ``SAFETY``, ``content_filtered``), stream or not

Shape of the wire:
  tool_call 0          no tool calls: a request offering tools gets a text answer
  spaced_json 1        JSON written with a space after ``:`` and ``,`` (as Python's
                       ``json.dumps``), bodies and stream events alike

Faults of the answer (K counts content events; a K past the last one means after the last):
  fail_after K         stream: cut the connection after K content events (no finish reason,
                       no ``[DONE]``); non-stream: close the connection without an answer
  stall_after K        stream: after K content events pause ``stall_ms`` N ms, then go on
  stall_ms N
  malformed_after K    stream: after K content events one event whose data is half a chunk
                       (not JSON, framed as the kind frames; Bedrock: a frame whose CRC is
                       wrong), then the rest as usual
  malformed_body 1     non-stream: a 200 ``application/json`` whose body is an HTML page
  error_after K        stream: after K content events the kind's in-stream error event
                       (OpenAI ``data: {"error": ...}``, Anthropic ``event: error``
                       ``overloaded_error``, Gemini ``data: {"error": ...}``, Bedrock a
                       ``throttlingException`` frame), then a clean end
  no_done 1            stream (OpenAI and Azure): everything, usage included, but
                       ``data: [DONE]``; clean end
  split_bytes N        stream: write the body in writes of at most N bytes (events split
                       across writes)
At the same K the malformed event comes first, then the stall, the error, the cut. Stream knobs do
nothing to a non-stream request and ``malformed_body`` nothing to a stream. A hang, a stall
or a first-token wait ends when the client goes away, so no request outlives its client.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "HEADER_PREFIX",
    "BadRequest",
    "Faults",
    "Stats",
    "early_fault",
    "faults_from_json",
    "request_faults",
]

HEADER_PREFIX = "x-fake-"
_DAY_MS = 86_400_000
Count = Annotated[int, Meta(ge=0)]
Millis = Annotated[float, Meta(ge=0, le=_DAY_MS)]


class BadRequest(Exception):
    """A request the fake answers with a 400 ``invalid_request_error``."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _header(name: str) -> str:
    return HEADER_PREFIX + name.replace("_", "-")


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every knob, by its JSON name; the defaults are a well-behaved upstream."""

    tokens: Count = 20
    latency_ms: Millis = 0
    delay_ms: Millis = 0
    first_token_ms: Millis = 0
    reset: bool = False
    hang: bool = False
    status: int = 0
    retry_after: Count | None = None
    fail_rate: Annotated[float, Meta(ge=0, le=1)] = 0
    fail_mode: Literal["status", "reset", "hang"] = "status"
    fail_status: Annotated[int, Meta(ge=400, le=599)] = 500
    seed: int | None = None
    refuse_prefill: bool = False
    context_window: Annotated[int, Meta(ge=1)] | None = None
    content_filter: Literal["prompt", "completion"] | None = None
    fail_after: Count | None = None
    stall_after: Count | None = None
    stall_ms: Millis = 0
    malformed_after: Count | None = None
    malformed_body: bool = False
    no_done: bool = False
    error_after: Count | None = None
    split_bytes: Annotated[int, Meta(ge=1)] | None = None
    tool_call: bool = True
    spaced_json: bool = False

    def __post_init__(self) -> None:
        if self.status and not 400 <= self.status <= 599:
            raise ValueError("status must be 0 (off) or between 400 and 599")

    def stream_faults(self) -> bool:
        """Whether a stream knob that is a fault acts on a stream."""
        return bool(
            self.first_token_ms
            or self.no_done
            or self.fail_after is not None
            or self.stall_after is not None
            or self.malformed_after is not None
            or self.error_after is not None
        )

    def slow_stream(self) -> bool:
        """Whether a stream needs the slower writer that knows pauses, cuts and splits."""
        return self.split_bytes is not None or self.stream_faults()


_PROCESS_ONLY = {"seed"}
_HEADER_KNOBS = {
    _header(name): name for name in Faults.__struct_fields__ if name not in _PROCESS_ONLY
}
_PATH = re.compile(r"`\$\.(\w+)`")


def _merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> Faults:
    return msgspec.convert({**base, **changes}, Faults, strict=False)


def request_faults(base: Faults, fields: Mapping[str, Any], headers: Mapping[str, str]) -> Faults:
    """``base`` (whose fields are ``fields``) with the request's ``x-fake-*`` headers applied."""
    changes: dict[str, str] | None = None
    for header, value in headers.items():
        if header[:7].lower() != HEADER_PREFIX:
            continue
        name = _HEADER_KNOBS.get(header.lower())
        if not name:
            raise BadRequest(f"Header {header} is not a per-request knob.")
        if changes is None:
            changes = {}
        changes[name] = value
    if changes is None:
        return base
    try:
        return _merge(fields, changes)
    except msgspec.ValidationError as exc:
        message = _PATH.sub(lambda match: _header(match[1]), str(exc))
        raise BadRequest(f"Bad header value: {message}.") from None


def faults_from_json(startup: Mapping[str, Any], raw: bytes) -> Faults:
    """The process knobs a ``PUT /_fake/faults`` body asks for; the rest as at startup."""
    try:
        changes = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(changes, dict):
        raise BadRequest("The request body must be a JSON object of knobs.")
    try:
        return _merge(startup, changes)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"Bad knob: {exc}.") from None


def early_fault(faults: Faults, rng: random.Random) -> tuple[str, int] | None:
    """The fault that answers before the body is read, and its status: reset, hang, status."""
    if faults.reset:
        return "reset", 0
    if faults.hang:
        return "hang", 0
    if faults.status:
        return "status", faults.status
    if faults.fail_rate and rng.random() < faults.fail_rate:
        return faults.fail_mode, faults.fail_status
    return None


class Stats(msgspec.Struct):
    """Counters over the process's life (the request log keeps only the last entries)."""

    chat_requests: int = 0
    embedding_requests: int = 0
    streams: int = 0
    by_status: dict[str, int] = msgspec.field(default_factory=dict)
    by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    faults_injected: int = 0
    in_flight: int = 0

    def record(
        self, kind: str, outcome: str, streamed: bool, faulted: bool, chat: bool = True
    ) -> None:
        """One finished request: its kind, its status (or ``reset``/``hang``), and how."""
        if chat:
            self.chat_requests += 1
        else:
            self.embedding_requests += 1
        self.streams += streamed
        self.faults_injected += faulted
        self.by_status[outcome] = self.by_status.get(outcome, 0) + 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def clear(self) -> None:
        """Zero the counters; ``in_flight`` counts what is running and stays."""
        self.chat_requests = self.embedding_requests = self.streams = self.faults_injected = 0
        self.by_status, self.by_kind = {}, {}
