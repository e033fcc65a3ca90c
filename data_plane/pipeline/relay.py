"""After the commit point: relaying the answer to the client.

A non-stream is sent whole. A stream is relayed as its events arrive; it is
complete once its finish reason has come (the relay then ends it with
`[DONE]`, whether or not the upstream sent one). If it breaks before that (cut,
idle past the deployment's timeout, an error event) and the route allows
continuation, another deployment that continues answers is asked to continue
this one, and its events are spliced in; otherwise, or if no continuation
commits, the stream ends with the first failure's error event. If the client
leaves, the upstream request is dropped at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from data_plane.asgi import JSON, Receive, Send, send_response
from data_plane.drain import OpenStreams, shutting_down
from data_plane.pipeline.attempts import Committed, Relayed, Upstreams
from data_plane.pipeline.call import Call
from data_plane.transport.attempt import transport_error
from data_plane.transport.stream import StreamState
from shared.errors import GatewayError, UpstreamError, UpstreamTimeout

__all__ = ["relay_stream", "send_whole"]

log = logging.getLogger("sluice.data_plane.relay")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def send_whole(
    call: Call, committed: Committed, send: Send, headers: list[tuple[bytes, bytes]]
) -> None:
    call.status = 200
    call.first_byte = time.monotonic()
    await send_response(send, 200, committed.body, [JSON, *headers])


async def relay_stream(
    upstreams: Upstreams,
    call: Call,
    committed: Committed,
    body: dict[str, Any] | None,
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
    streams: OpenStreams,
) -> None:
    """Relay in this task; a second one waits for the client to leave and then
    cancels this one, which drops the upstream connection at once. A drain's
    cut (`streams`) cancels it too; the stream then ends with an error event."""
    call.status = 200
    try:
        await send(
            {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + headers}
        )
    except BaseException:
        _drop(committed)
        raise
    relaying = asyncio.current_task()
    assert relaying is not None
    # The server reports a disconnect also once the response is complete; nothing
    # below may await between the last send and `watch.cancel()`.
    watch = asyncio.ensure_future(_cancel_on_disconnect(receive, relaying, call))
    state = committed.state
    assert state is not None
    streams.open.add(relaying)
    try:
        await _relay(upstreams, call, committed, state, body, send)
    except asyncio.CancelledError:
        if streams.was_cut(relaying):
            raise shutting_down() from None
        # the watch's cancellation is expected; any other (a shutdown) goes on
        if not call.disconnected or relaying.uncancel() > 0:
            raise
    except OSError:  # the client went away while we were writing to it
        call.disconnected = True
    finally:
        streams.open.discard(relaying)
        watch.cancel()
        call.content_events = state.content_events
        if state.malformed:
            log.warning(
                "request %s: dropped %d malformed event(s) of the upstream's stream",
                call.request_id,
                state.malformed,
                extra=call.log_ids(),
            )
        if state.prompt_tokens is not None:
            call.prompt_tokens, call.completion_tokens = (
                state.prompt_tokens,
                state.completion_tokens,
            )


async def _relay(
    upstreams: Upstreams,
    call: Call,
    committed: Committed,
    state: Relayed,
    body: dict[str, Any] | None,
    send: Send,
) -> None:
    first_failure: GatewayError | None = None
    while True:
        try:
            await _pump(call, committed, state, send)
            break
        except GatewayError as exc:
            route = call.route
            assert route is not None
            committed.health.failed(
                time.monotonic(),
                f"{exc.code}: {exc.message}",
                route.breaker,
                route.retry,
                exc.retry_after,
                committed.probe,
            )
            log.warning(
                "request %s: stream from deployment %s broke: %s",
                call.request_id,
                committed.deployment.id,
                exc.code,
                extra=call.log_ids(),
            )
            first_failure = first_failure or exc
            if state.error_relayed:  # the client has the upstream's error event already
                call.status, call.error_code = exc.status, exc.code
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if (
                body is None
                or not isinstance(state, StreamState)
                or not state.continuable
                or not route.continuation
            ):
                raise first_failure from None
            following = await _continuation(upstreams, call, committed, state, body)
            if following is None:
                raise first_failure from None
            committed = following
    await send({"type": "http.response.body", "body": state.close(), "more_body": False})


async def _pump(call: Call, committed: Committed, state: Relayed, send: Send) -> None:
    opened = committed.opened
    assert opened is not None
    resp = opened.resp
    whole = False  # read to its end: the connection may serve another request
    try:
        if opened.first:
            if call.first_byte is None:
                call.first_byte = time.monotonic()
            await send({"type": "http.response.body", "body": opened.first, "more_body": True})
            opened.first = b""
        total = committed.deployment.timeouts.total
        ends_by = opened.first_at + total
        try:
            while state.error is None:
                chunk = await resp.content.readany()
                if not chunk:
                    break
                ready = state.feed(chunk)
                if ready:
                    await send({"type": "http.response.body", "body": ready, "more_body": True})
                if time.monotonic() > ends_by and not state.finished:
                    raise UpstreamTimeout(
                        f"The upstream's answer took longer than {total:g} s.",
                        code="upstream_timeout",
                    )
        except (TimeoutError, aiohttp.ClientError) as exc:
            if state.finished:
                return  # the answer was complete; only the upstream's goodbye was lost
            idle = committed.deployment.timeouts.idle
            raise transport_error(exc, answered=True, what=f"no event for {idle:g} s") from None
        if state.error is not None and not state.finished:
            raise state.error  # what came before it was relayed
        whole = state.error is None
        if not state.finished:
            raise UpstreamError(
                "The upstream's stream ended before the answer was complete.",
                code="upstream_incomplete",
            )
    finally:
        if whole:
            resp.release()
        else:
            resp.close()
        committed.end()


def _drop(committed: Committed) -> None:
    """An attempt that will not be relayed after all."""
    if committed.opened is not None:
        committed.opened.resp.close()
    committed.end()


async def _continuation(
    upstreams: Upstreams, call: Call, committed: Committed, state: StreamState, body: dict[str, Any]
) -> Committed | None:
    """Ask another deployment to continue the answer; None if none will."""
    ask = committed.adapter.continuation_body
    if ask is None:
        return None
    state.begin_continuation()
    asked = ask(body, state.prefill(), state.content_events)
    try:
        return await upstreams.commit(call, asked, state, avoid=committed.deployment.id)
    except GatewayError as exc:
        log.warning(
            "request %s: no continuation (%s)", call.request_id, exc.code, extra=call.log_ids()
        )
        call.deployment = committed.deployment  # the answer so far is this one's
        return None


async def _cancel_on_disconnect(receive: Receive, relaying: asyncio.Task[None], call: Call) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    call.disconnected = True
    relaying.cancel()
