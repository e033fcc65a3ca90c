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
from functools import lru_cache

import aiohttp
import msgspec

from data_plane.providers import Adapter, UpstreamRequest
from data_plane.transport.stream import StreamState
from shared.errors import GatewayError, UpstreamError, UpstreamTimeout
from shared.routing import Timeouts
from shared.sse import SSEDecoder

__all__ = ["Opened", "client_timeout", "fetch_whole", "open_stream", "transport_error"]

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
    """A stream past its commit point: the response, its decoder and what to send first."""

    __slots__ = ("decoder", "first", "first_at", "resp")

    def __init__(
        self, resp: aiohttp.ClientResponse, decoder: SSEDecoder, first: bytes, first_at: float
    ) -> None:
        self.resp, self.decoder, self.first, self.first_at = resp, decoder, first, first_at


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
    state: StreamState,
) -> Opened:
    """Send, and read up to the first event, within `timeouts.first_token`. The caller
    wraps this in `asyncio.timeout(first_token)`; a timeout is reported by it."""
    resp = await session.post(
        request.url,
        data=request.body,
        headers=request.headers,
        timeout=client_timeout(timeouts, True),
    )
    try:
        if resp.status >= 400:
            raise await _refusal(adapter, resp)
        decoder = SSEDecoder()
        malformed, valid = state.malformed, state.events
        first: list[bytes] = []
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                raise UpstreamError(
                    "The upstream ended the stream before its first event.",
                    code="upstream_incomplete",
                )
            # one event at a time until a valid one: a read may bring the first events
            # and, after them, a malformed one, which is past the commit point
            # (dropped, not retried)
            events = decoder.feed(chunk)
            taken = 0
            while taken < len(events) and state.events == valid:
                first.append(state.take(events[taken : taken + 1]))
                taken += 1
                if state.malformed > malformed:
                    raise UpstreamError(
                        "The upstream's stream began with a malformed event.",
                        code="upstream_malformed",
                    )
            if taken < len(events):
                first.append(state.take(events[taken:]))
            if any(first):  # committed; an error event after these is the relay's to raise
                return Opened(resp, decoder, b"".join(first), time.monotonic())
            if state.error is not None:
                raise state.error
    except BaseException:
        resp.close()
        raise


async def fetch_whole(
    session: aiohttp.ClientSession,
    adapter: Adapter,
    request: UpstreamRequest,
    timeouts: Timeouts,
    limit: float | None = None,
) -> tuple[bytes, int | None, int | None]:
    """A whole non-streaming answer, within `limit` seconds (default: the `response`
    timeout), and its (prompt, completion) usage if it said."""
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
        answer = _answer(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        error = UpstreamError("The upstream's answer was malformed.", code="upstream_malformed")
        error.detail = f"HTTP {resp.status}: {body[:300].decode('utf-8', 'replace')}"
        raise error from None
    usage = answer.usage
    return (
        body,
        None if usage is None else usage.prompt_tokens,
        (None if usage is None else usage.completion_tokens),
    )


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
