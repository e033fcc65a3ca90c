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
  status N             answer N (400-599) with an OpenAI error body: 429 is OpenAI's rate-limit
                       body (type ``requests``, code ``rate_limit_exceeded``), 5xx its
                       server-error body (type ``server_error``)
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
  content_filter prompt      a 400 with Azure OpenAI's content-filter body (``innererror``)
  content_filter completion  a 200 cut after 3 pieces (fewer if the answer is shorter) with
                             finish_reason ``content_filter``, stream or not

Faults of the answer (K counts content events; a K past the last one means after the last):
  fail_after K         stream: cut the connection after K content events (no finish reason,
                       no ``[DONE]``); non-stream: close the connection without an answer
  stall_after K        stream: after K content events pause ``stall_ms`` N ms, then go on
  stall_ms N
  malformed_after K    stream: after K content events one event whose data is half a chunk
                       (not JSON, framed by a blank line), then the rest as usual
  malformed_body 1     non-stream: a 200 ``application/json`` whose body is an HTML page
  no_done 1            stream: everything, usage included, but ``data: [DONE]``; clean end
At the same K the malformed event comes first, then the stall, then the cut. Stream knobs do
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

    def __post_init__(self) -> None:
        if self.status and not 400 <= self.status <= 599:
            raise ValueError("status must be 0 (off) or between 400 and 599")

    def stream_faults(self) -> bool:
        """Whether a stream needs the slower writer that knows pauses and cuts."""
        return bool(
            self.first_token_ms
            or self.no_done
            or self.fail_after is not None
            or self.stall_after is not None
            or self.malformed_after is not None
        )


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
    streams: int = 0
    by_status: dict[str, int] = msgspec.field(default_factory=dict)
    faults_injected: int = 0
    in_flight: int = 0

    def record(self, outcome: str, streamed: bool, faulted: bool) -> None:
        """One finished chat request: its status (or ``reset``/``hang``) and kind."""
        self.chat_requests += 1
        self.streams += streamed
        self.faults_injected += faulted
        self.by_status[outcome] = self.by_status.get(outcome, 0) + 1

    def clear(self) -> None:
        """Zero the counters; ``in_flight`` counts what is running and stays."""
        self.chat_requests = self.streams = self.faults_injected = 0
        self.by_status = {}
