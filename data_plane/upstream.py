"""Sending a request upstream with aiohttp and relaying the answer to the client.

Non-streaming answers are relayed whole. Streams are relayed piece by piece as
the upstream sends them, without re-encoding; if the upstream fails after the
stream started, the error propagates and the app ends the stream with a final
SSE error event.
If the client goes away, the upstream request is abandoned at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from data_plane.asgi import JSON, Receive, Send, send_response
from data_plane.providers import Adapter, UpstreamRequest
from shared.errors import UpstreamError, UpstreamTimeout

__all__ = ["relay"]

log = logging.getLogger("sluice.data_plane.upstream")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def relay(
    session: aiohttp.ClientSession,
    adapter: Adapter,
    request: UpstreamRequest,
    *,
    stream: bool,
    receive: Receive,
    send: Send,
    extra_headers: list[tuple[bytes, bytes]],
) -> None:
    try:
        async with session.post(request.url, data=request.body, headers=request.headers) as resp:
            if resp.status >= 400:
                raise adapter.error_from_upstream(resp.status, await resp.read())
            if not stream:
                body = await resp.read()
                await send_response(send, resp.status, body, [JSON, *extra_headers])
                return
            await _relay_stream(resp, receive, send, extra_headers)
    except TimeoutError:
        raise UpstreamTimeout("the upstream did not answer in time") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"the upstream could not be reached ({type(exc).__name__})") from None


async def _relay_stream(
    resp: aiohttp.ClientResponse,
    receive: Receive,
    send: Send,
    extra_headers: list[tuple[bytes, bytes]],
) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + extra_headers}
    )
    pump = asyncio.ensure_future(_pump(resp, send))
    watch = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not pump.done():  # the client went away: drop the upstream connection
            pump.cancel()
            resp.close()
        # OSError: the client went away while we were writing to it.
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await pump


async def _pump(resp: aiohttp.ClientResponse, send: Send) -> None:
    """Relay the upstream body. A break raises; the app then ends the stream with an error."""
    try:
        async for chunk in resp.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except TimeoutError:
        log.warning("upstream stream timed out")
        raise UpstreamTimeout("The upstream stopped sending.") from None
    except aiohttp.ClientError as exc:
        log.warning("upstream stream broke: %s", type(exc).__name__)
        raise UpstreamError("The upstream stream broke off.") from None
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
