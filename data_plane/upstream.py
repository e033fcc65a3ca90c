"""Sending a request upstream with aiohttp and relaying the answer to the client.

Non-streaming answers are relayed whole. Streams are relayed event by event as
the upstream sends them, without re-encoding; only the final usage event is
read (and dropped when the client did not ask for usage, since the gateway
asks the upstream for it to account every stream). If the upstream fails after
the stream started, the error propagates and the app ends the stream with a
final SSE error event. If the client goes away, the upstream request is
abandoned at once. Either way the `Outcome` says what was used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import msgspec

from data_plane.asgi import JSON, Receive, Send, send_response
from data_plane.providers import Adapter, UpstreamRequest
from shared.errors import UpstreamError, UpstreamTimeout

__all__ = ["Outcome", "relay"]

log = logging.getLogger("sluice.data_plane.upstream")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _WithUsage(msgspec.Struct):
    usage: _Usage | None = None


_usage_of = msgspec.json.Decoder(_WithUsage).decode


@dataclass
class Outcome:
    """What happened to one upstream call, for accounting."""

    status: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    content_events: int = 0  # stream events that carried content (≈ tokens)
    first_byte: float | None = None  # time.monotonic() of the first byte to the client
    disconnected: bool = False
    error_code: str | None = None

    def take_usage(self, data: bytes) -> None:
        try:
            usage = _usage_of(data).usage
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if usage is not None:
            self.prompt_tokens = usage.prompt_tokens
            self.completion_tokens = usage.completion_tokens


async def relay(
    session: aiohttp.ClientSession,
    adapter: Adapter,
    request: UpstreamRequest,
    *,
    stream: bool,
    client_wants_usage: bool,
    receive: Receive,
    send: Send,
    extra_headers: list[tuple[bytes, bytes]],
    outcome: Outcome,
) -> None:
    try:
        async with session.post(request.url, data=request.body, headers=request.headers) as resp:
            outcome.status = resp.status
            if resp.status >= 400:
                raise adapter.error_from_upstream(resp.status, await resp.read())
            if not stream:
                body = await resp.read()
                outcome.take_usage(body)
                outcome.first_byte = time.monotonic()
                await send_response(send, resp.status, body, [JSON, *extra_headers])
                return
            await _relay_stream(resp, receive, send, extra_headers, outcome, client_wants_usage)
    except TimeoutError:
        raise UpstreamTimeout("the upstream did not answer in time") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"the upstream could not be reached ({type(exc).__name__})") from None


async def _relay_stream(
    resp: aiohttp.ClientResponse,
    receive: Receive,
    send: Send,
    extra_headers: list[tuple[bytes, bytes]],
    outcome: Outcome,
    client_wants_usage: bool,
) -> None:
    """Relay in this task; a second one waits for the client to leave and then
    cancels this one, which drops the upstream connection at once."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + extra_headers}
    )
    relaying = asyncio.current_task()
    assert relaying is not None
    # The server reports a disconnect also once the response is complete; nothing
    # below may await between the last send and `watch.cancel()`.
    watch = asyncio.ensure_future(_cancel_on_disconnect(receive, relaying, outcome))
    try:
        await _pump(resp, send, outcome, client_wants_usage)
    except asyncio.CancelledError:
        # the watch's cancellation is expected; any other (a shutdown) goes on
        if not outcome.disconnected or relaying.uncancel() > 0:
            raise
        resp.close()
    except OSError:  # the client went away while we were writing to it
        outcome.disconnected = True
        resp.close()
    finally:
        watch.cancel()


async def _cancel_on_disconnect(
    receive: Receive, relaying: asyncio.Task[None], outcome: Outcome
) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    outcome.disconnected = True
    relaying.cancel()


async def _pump(
    resp: aiohttp.ClientResponse, send: Send, outcome: Outcome, client_wants_usage: bool
) -> None:
    """Relay whole SSE events as they complete. A break raises; the app then ends
    the stream with an error event."""
    pending = b""
    try:
        async for chunk in resp.content.iter_any():
            pending += chunk
            end = pending.rfind(b"\n\n")
            if end < 0:
                continue
            ready, pending = pending[: end + 2], pending[end + 2 :]
            if b'"usage":{' in ready:
                ready = _account_usage(ready, outcome, client_wants_usage)
            outcome.content_events += ready.count(b'"content":"')
            if ready:
                if outcome.first_byte is None:
                    outcome.first_byte = time.monotonic()
                await send({"type": "http.response.body", "body": ready, "more_body": True})
    except TimeoutError:
        log.warning("upstream stream timed out")
        raise UpstreamTimeout("The upstream stopped sending.") from None
    except aiohttp.ClientError as exc:
        log.warning("upstream stream broke: %s", type(exc).__name__)
        raise UpstreamError("The upstream stream broke off.") from None
    tail = pending if pending.strip() else b""
    await send({"type": "http.response.body", "body": tail, "more_body": False})


def _account_usage(events: bytes, outcome: Outcome, keep: bool) -> bytes:
    """Read the usage event among `events`; drop it unless the client asked for it."""
    kept = []
    for event in events.split(b"\n\n"):
        if b'"usage":{' in event and event.startswith(b"data: "):
            outcome.take_usage(event[6:])
            if not keep and b'"choices":[]' in event:
                continue
        if event:
            kept.append(event + b"\n\n")
    return b"".join(kept)
