"""One attempt at one upstream, up to the commit point.

`open_stream` returns once the upstream has sent its first valid event (the
response and the bytes to relay first); `fetch_whole` returns a complete,
well-formed non-streaming answer. Anything else raises a `GatewayError` that
names what went wrong (`code`) and says whether another attempt may succeed.
Nothing here touches the client.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple, Protocol

import aiohttp
import msgspec

from data_plane.providers import Adapter, UpstreamRequest
from data_plane.translate.upstream_errors import malformed
from shared.errors import GatewayError, UpstreamError, UpstreamTimeout
from shared.routing import Timeouts

__all__ = [
    "Opened",
    "UpstreamStream",
    "Whole",
    "client_timeout",
    "fetch_whole",
    "open_stream",
    "openai_answer",
    "transport_error",
]

_ERROR_BODY_LIMIT = 64 * 1024
_MAX_RETRY_AFTER = 3600.0


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Answer(msgspec.Struct):
    choices: list[msgspec.Raw]
    usage: _Usage | None = None


_answer = msgspec.json.Decoder(_Answer).decode


class Opened:
    """A stream past its commit point: the response and what to send first."""

    __slots__ = ("first", "first_at", "resp")

    def __init__(self, resp: aiohttp.ClientResponse, first: bytes, first_at: float) -> None:
        self.resp, self.first, self.first_at = resp, first, first_at


class Whole(NamedTuple):
    """A whole answer: the body for the client and the usage it reported."""

    body: bytes
    prompt_tokens: int | None
    completion_tokens: int | None


class UpstreamStream(Protocol):
    """A stream being read from an upstream and relayed (`StreamState`,
    `TranslatedStream`, `NativeStream`)."""

    events: int
    error: GatewayError | None

    def attempt(self) -> None: ...
    def first(self, chunk: bytes) -> bytes: ...


@lru_cache(maxsize=1024)
def client_timeout(
    timeouts: Timeouts, stream: bool, limit: float | None = None
) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for an attempt: connect, and then a stream's longest idle
    gap, or a non-stream's whole answer (`limit`, else its `response` timeout). A
    stream's first event and total are timed by the attempt and the relay: one timer
    per request is cheaper than two."""
    if stream:
        return aiohttp.ClientTimeout(
            connect=timeouts.connect, sock_connect=timeouts.connect, sock_read=timeouts.idle
        )
    return aiohttp.ClientTimeout(
        total=timeouts.response if limit is None else limit,
        connect=timeouts.connect,
        sock_connect=timeouts.connect,
    )


async def _refusal(adapter: Adapter, resp: aiohttp.ClientResponse) -> GatewayError:
    """The error an upstream's failed response means (its body read up to a limit)."""
    body = b""
    while len(body) < _ERROR_BODY_LIMIT:
        piece = await resp.content.read(_ERROR_BODY_LIMIT - len(body))
        if not piece:
            break
        body += piece
    return adapter.error_from_upstream(resp.status, body, _retry_after(resp))


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    """Retry-After in seconds (delta-seconds, at most an hour; an HTTP date or
    anything else is read as 'soon')."""
    raw = resp.headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return 1.0
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER) if math.isfinite(seconds) else 1.0


async def open_stream(
    session: aiohttp.ClientSession,
    adapter: Adapter,
    request: UpstreamRequest,
    timeouts: Timeouts,
    stream: UpstreamStream,
) -> Opened:
    """Send, and read up to the first event for the client, within
    `timeouts.first_token`. The caller wraps this in `asyncio.timeout(first_token)`;
    a timeout is reported by it."""
    resp = await session.post(
        request.url,
        data=request.body,
        headers=request.headers,
        timeout=client_timeout(timeouts, True),
    )
    try:
        if resp.status >= 400:
            raise await _refusal(adapter, resp)
        stream.attempt()
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                raise UpstreamError(
                    "The upstream ended the stream before its first event.",
                    code="upstream_incomplete",
                )
            first = stream.first(chunk)
            if first:  # committed; an error event after these is the relay's to raise
                return Opened(resp, first, time.monotonic())
            if stream.error is not None:
                raise stream.error
    except BaseException:
        resp.close()
        raise


async def fetch_whole(
    session: aiohttp.ClientSession,
    adapter: Adapter,
    request: UpstreamRequest,
    timeouts: Timeouts,
    read: Callable[[bytes], Whole],
    limit: float | None = None,
) -> Whole:
    """A whole non-streaming answer, within `limit` seconds (default: the `response`
    timeout), read by `read` (which raises `upstream_malformed` if it cannot)."""
    async with session.post(
        request.url,
        data=request.body,
        headers=request.headers,
        timeout=client_timeout(timeouts, False, limit),
    ) as resp:
        if resp.status >= 400:
            raise await _refusal(adapter, resp)
        body = await resp.read()
    try:
        return read(body)
    except GatewayError as exc:
        if exc.code == "upstream_malformed" and not exc.detail:
            exc.detail = f"HTTP {resp.status}: {body[:300].decode('utf-8', 'replace')}"
        raise


def openai_answer(body: bytes) -> Whole:
    """An OpenAI chat completion relayed as it is: only its usage read."""
    try:
        answer = _answer(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed() from None
    usage = answer.usage
    if usage is None:
        return Whole(body, None, None)
    return Whole(body, usage.prompt_tokens, usage.completion_tokens)


def transport_error(exc: BaseException, *, answered: bool, what: str) -> GatewayError:
    """Name a transport failure for what it was. `answered`: the upstream had begun
    its answer (a stream past its first event)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(
            "Connecting to the upstream timed out.", code="upstream_connect_timeout"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("The upstream could not be reached.", code="upstream_connect_error")
    if isinstance(exc, TimeoutError):  # aiohttp's socket-read timeouts are TimeoutErrors too
        if answered:
            return UpstreamTimeout(f"The upstream stopped sending ({what}).", code="upstream_idle")
        return UpstreamTimeout(f"The upstream did not answer in time ({what}).")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | OSError):
        if answered:
            return UpstreamError(
                "The upstream closed the connection mid-answer.", code="upstream_reset"
            )
        return UpstreamError(
            "The upstream closed the connection before answering.", code="upstream_reset"
        )
    return UpstreamError(
        f"The upstream connection failed ({type(exc).__name__}).", code="upstream_error"
    )
