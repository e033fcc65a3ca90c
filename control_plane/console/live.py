"""The audit log's live updates: one LISTEN connection per control plane process on
the event log's channel, fanned out to the console's open streams.

NOTIFY is a doorbell (its payload is a position, not the data): a subscription only
learns that something was appended, and each stream reads what its session may see
through the admin API. The connection is opened when the first stream subscribes;
it is its own (never pooled: a pooled one is reset with `UNLISTEN *`), notices its
own death (a termination callback, and a ping when it has been quiet), and
reconnects with backoff and jitter. Every (re)connection rings all subscriptions,
so an append missed while it was away is caught up on. `live_events` makes it part
of the app's lifespan: it is closed at shutdown; `end_all` ends every subscription
when the drain begins, so that open pages do not hold the process up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from enum import Enum

import asyncpg
from litestar import Litestar

from control_plane.queries import Q
from shared.quiet_log import Outage

__all__ = ["APPLICATION_NAME", "LiveEvents", "Ring", "Subscription", "live_events", "live_of"]

log = logging.getLogger("sluice.control_plane.console.live")

APPLICATION_NAME = "sluice-console-live"  # how the connection shows in pg_stat_activity


class Ring(Enum):
    NEW = "new"  # something was appended (or may have been, after a reconnect)
    QUIET = "quiet"  # nothing within the wait
    CLOSED = "closed"  # the process is draining or stopping: end the stream


class Subscription:
    """One stream's doorbell: rings since the last wait coalesce into one."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Ring] = asyncio.Queue(maxsize=1)

    def ring(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(Ring.NEW)

    def end(self) -> None:
        with contextlib.suppress(asyncio.QueueEmpty):
            self._queue.get_nowait()
        self._queue.put_nowait(Ring.CLOSED)

    async def wait(self, seconds: float) -> Ring:
        """The next ring, or QUIET after `seconds` without one."""
        try:
            ring = await asyncio.wait_for(self._queue.get(), seconds)
        except TimeoutError:
            return Ring.QUIET
        if ring is Ring.CLOSED:
            self._queue.put_nowait(Ring.CLOSED)  # it stays closed
        return ring


class LiveEvents:
    """The process's LISTEN connection and the subscriptions it rings."""

    def __init__(
        self,
        database_url: str,
        channel: str,
        *,
        ping_seconds: float = 15.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._url = database_url
        self._channel = channel
        self._ping_seconds = ping_seconds
        self._max_backoff = max_backoff
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._up = False  # the current connection listens
        self._outage = Outage(log, "audit log notifications (database)")

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """A subscription for the block's duration; the first one opens the connection."""
        subscription = Subscription()
        if self._closed:
            subscription.end()
        else:
            self._subscriptions.add(subscription)
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name="sluice-console-live")
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def end_all(self) -> None:
        """End every subscription, now and to come (the process is draining): each
        stream closes, and its browser reconnects, to another replica."""
        self._closed = True
        for subscription in self._subscriptions:
            subscription.end()

    async def close(self) -> None:
        """End every subscription and the connection."""
        self.end_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _ring_all(self) -> None:
        for subscription in self._subscriptions:
            subscription.ring()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            self._up = False
            try:
                await self._listen()
                self._outage.failed(ConnectionError("connection closed by the server"))
            except Exception as exc:  # any failure: logged once (Outage), then retried
                self._outage.failed(exc)
            if self._up:
                backoff = 0.1  # it worked until now: retry soon
            await asyncio.sleep(random.uniform(backoff / 2, backoff))
            backoff = min(backoff * 2, self._max_backoff)

    async def _listen(self) -> None:
        """Listen until the connection is lost."""
        conn = await asyncpg.connect(
            self._url,
            timeout=5,
            command_timeout=10,
            server_settings={"application_name": APPLICATION_NAME},
        )
        lost = asyncio.Event()

        def on_notify(_c: object, _pid: int, _channel: str, _payload: str) -> None:
            self._ring_all()

        def on_terminated(_c: object) -> None:
            lost.set()

        try:
            conn.add_termination_listener(on_terminated)
            await conn.add_listener(self._channel, on_notify)
            self._up = True
            self._outage.ok()
            self._ring_all()  # whatever was appended while nobody listened
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._ping_seconds)
                if not lost.is_set():
                    await conn.fetchval(Q.ping)  # a dead peer shows as an error here
        finally:
            conn.terminate()


def live_events(
    database_url: str, channel: str
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan hook: the app's `LiveEvents` (`app.state.live_events`), closed at
    shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        live = LiveEvents(database_url, channel)
        app.state.live_events = live
        try:
            yield
        finally:
            await live.close()

    return lifespan


def live_of(app: Litestar) -> LiveEvents:
    live: LiveEvents = app.state.live_events
    return live
