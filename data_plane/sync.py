"""Following the event log: load, LISTEN, catch up on every doorbell.

One dedicated connection (never pooled: a pooled one is reset with UNLISTEN *)
listens on the channel. A notification, a reconnect and a slow safety poll all
do the same thing: fetch the events after the last applied position, fold them
into a new immutable state and swap it in. Events are applied strictly in
position order, each once. The first contact after start loads the newest
snapshot (or checks the disk cache's state against the database) before that.
If PostgreSQL goes away, the last snapshot keeps serving while the follower
reconnects with backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import asyncpg

from data_plane.cache import SnapshotCache
from data_plane.snapshot import SnapshotHolder
from shared.event_log import catch_up
from shared.snapshots import load_state
from shared.state import State

__all__ = ["FOLLOWER_APPLICATION_NAME", "Follower"]

log = logging.getLogger("sluice.data_plane.sync")

FOLLOWER_APPLICATION_NAME = "sluice-data-plane-follower"
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Follower:
    def __init__(
        self,
        database_url: str,
        channel: str,
        holder: SnapshotHolder,
        cache: SnapshotCache,
        *,
        poll_interval: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._url = database_url
        self._channel = channel
        self._holder = holder
        self._cache = cache
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self.reconnects = 0
        self.latest_known = 0  # the newest position heard of (notified or read)
        self.snapshots_refused = 0  # stored snapshots of an unknown schema version
        self.failed_syncs = 0
        self.connected = False

    async def run(self) -> None:
        """Follow until cancelled."""
        backoff = 0.1
        while True:
            try:
                await self._follow()
                log.warning("event log connection closed by the server; reconnecting")
            except _DB_ERRORS as exc:
                log.warning("event log connection lost (%s); reconnecting", type(exc).__name__)
            except Exception:
                log.exception("event log follower failed; retrying")
            self.connected = False
            self.reconnects += 1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self._max_backoff)

    async def _follow(self) -> None:
        # command_timeout: the safety poll doubles as a liveness check of this connection.
        conn = await asyncpg.connect(
            self._url,
            timeout=5,
            command_timeout=10,
            server_settings={"application_name": FOLLOWER_APPLICATION_NAME},
        )
        wake = asyncio.Event()
        lost = asyncio.Event()

        def on_notify(_c: object, _pid: int, _channel: str, payload: str) -> None:
            if payload.isdigit():
                self.latest_known = max(self.latest_known, int(payload))
            wake.set()

        def on_terminated(_c: object) -> None:
            lost.set()
            wake.set()

        try:
            conn.add_termination_listener(on_terminated)
            # Listen first, then read: a commit between the two is caught by either.
            await conn.add_listener(self._channel, on_notify)
            self.connected = True
            await self._sync(conn)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._poll_interval)
                wake.clear()
                if not lost.is_set():
                    await self._sync(conn)
        finally:
            conn.terminate()

    async def _starting_state(self, conn: asyncpg.Connection) -> State:
        """On the first contact: the cached state if it belongs to this database, else
        the newest stored snapshot."""
        holder = self._holder
        if holder.loaded and await self._cache.matches(conn, holder.state):
            return holder.state
        state, refused = await load_state(conn)
        self.snapshots_refused += refused
        return state

    async def _sync(self, conn: asyncpg.Connection) -> None:
        holder = self._holder
        current = holder.state
        try:
            start = current if holder.synced else await self._starting_state(conn)
            new = await catch_up(conn, start)
        except (KeyError, ValueError, TypeError):
            self.failed_syncs += 1
            log.exception(
                "cannot apply events after %d; keeping the current snapshot", current.position
            )
            return
        if new is not current:
            holder.swap(new)
        holder.mark_synced()
        self.latest_known = max(self.latest_known, new.position)
        await self._cache.maybe_write(conn, new)
