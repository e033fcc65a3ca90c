"""Following the event log: load, LISTEN, catch up on every doorbell.

One dedicated connection (never pooled: a pooled one is reset with UNLISTEN *)
listens on the channel. A notification, a reconnect and a slow safety poll all
do the same thing: fetch the events after the last applied position, fold them
into a new immutable state and swap it in. Events are applied strictly in
position order, each once.

On the first contact after start the follower loads the newest readable stored
snapshot plus the events after it. Only if the database cannot be reached at
start does the data plane serve its local disk cache ("stale"); the first
contact then checks that cache against the database before building on it.
If PostgreSQL goes away later, the last snapshot keeps serving while the
follower reconnects with backoff and jitter.

An event this build cannot apply (`shared.event_log.Unreadable`: written by a
newer control plane) is never skipped: the follower applies the events before
it, then stops there, says so once in the log, in /readyz and in the metrics
(`blocked`), and keeps serving that snapshot. Every later sync tries again, so
it moves on if the event becomes readable, and a newer build moves on at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import asyncpg

from data_plane.cache import SnapshotCache
from data_plane.snapshot import SnapshotHolder
from shared.event_log import END, Unreadable, fold
from shared.quiet_log import Outage
from shared.snapshots import snapshot_state
from shared.state import State

__all__ = ["FOLLOWER_APPLICATION_NAME", "Follower", "SyncCounters"]

log = logging.getLogger("sluice.data_plane.sync")

FOLLOWER_APPLICATION_NAME = "sluice-data-plane-follower"


class SyncCounters:
    """What the follower has been through, for /readyz and /metrics."""

    def __init__(self) -> None:
        self.reconnects = 0  # connections made after a lost one
        self.connect_failures = 0  # attempts that did not connect
        self.snapshots_refused = 0  # stored snapshots that could not be read
        self.failed_syncs = 0  # syncs whose events could not be applied
        self.latest_known = 0  # the newest position heard of (notified or read)
        self.connected = False
        self.blocked: Unreadable | None = None  # the event the follower stopped at


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
        self.counters = SyncCounters()
        self._ever_connected = False
        self._cache_tried = False
        self._outage = Outage(log, "event log (database)")

    async def run(self) -> None:
        """Follow until cancelled."""
        backoff = 0.1
        while True:
            was_connected = False
            try:
                await self._follow()
                self._outage.failed(ConnectionError("connection closed by the server"))
            except Exception as exc:
                self._outage.failed(exc)
            finally:
                was_connected = self.counters.connected
                self.counters.connected = False
            if was_connected:
                backoff = 0.1  # it worked until now: retry soon
            else:
                self.counters.connect_failures += 1
                self._boot_from_cache()
            await asyncio.sleep(random.uniform(backoff / 2, backoff))
            backoff = min(backoff * 2, self._max_backoff)

    def _boot_from_cache(self) -> None:
        """Unreachable before anything was loaded: serve the disk cache, if any (tried once)."""
        if self._holder.loaded or self._cache_tried:
            return
        self._cache_tried = True
        cached = self._cache.read()
        if cached is not None:
            self._holder.swap(cached)
            log.warning("database unreachable; serving the cached snapshot at %d", cached.position)

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
                self.counters.latest_known = max(self.counters.latest_known, int(payload))
            wake.set()

        def on_terminated(_c: object) -> None:
            lost.set()
            wake.set()

        try:
            conn.add_termination_listener(on_terminated)
            # Listen first, then read: a commit between the two is caught by either.
            await conn.add_listener(self._channel, on_notify)
            self.counters.connected = True
            self._outage.ok()
            if self._ever_connected:
                self.counters.reconnects += 1
            self._ever_connected = True
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
        """The state to build on at the first contact since start."""
        holder = self._holder
        if holder.loaded and await self._cache.matches(conn, holder.state):
            return holder.state  # booted from the cache while the database was away
        state, refused = await snapshot_state(conn, END)  # the sync folds the events after it
        self.counters.snapshots_refused += refused
        return state

    async def _sync(self, conn: asyncpg.Connection) -> None:
        holder = self._holder
        current = holder.state
        try:
            start = current if holder.synced else await self._starting_state(conn)
            new, blocked = await fold(conn, start)
        except (KeyError, ValueError, TypeError):
            self.counters.failed_syncs += 1
            log.exception(
                "cannot apply events after %d; keeping the current snapshot", current.position
            )
            return
        if new is not current:
            holder.swap(new)
        holder.mark_synced()
        self._blocked(blocked)
        self.counters.latest_known = max(self.counters.latest_known, new.position)
        await self._cache.write_soon(conn, new)

    def _blocked(self, blocked: Unreadable | None) -> None:
        """Record where the follower stopped (logged once per event), or that it did not."""
        was = self.counters.blocked
        self.counters.blocked = blocked
        if blocked is not None:
            self.counters.latest_known = max(self.counters.latest_known, blocked.position)
            if was is None or was.position != blocked.position:
                position = self._holder.state.position
                log.error("snapshot blocked: %s; serving the snapshot at %d", blocked, position)
        elif was is not None:
            log.warning("snapshot unblocked: event %d applied", was.position)
