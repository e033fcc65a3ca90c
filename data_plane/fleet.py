"""Sharing limit counters and spend with the rest of the fleet, off the request path.

Every `interval` seconds this replica writes the per-second counters and
in-flight counts it changed, and reads the other replicas' (and the fleet's
recorded spend for budgeted scopes) into the `Limiter` and `Budgets`. A request
never waits on the database. The error bound of a fleet-wide limit is what the
other replicas admit within one interval (plus the database round trip); the
design note in docs/limits.md works it out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from data_plane.budgets import Budgets
from data_plane.limits import WINDOW, Fleet, Limiter
from data_plane.queries import Q
from data_plane.routing.health import Health
from data_plane.routing.report import report_health
from data_plane.snapshot import SnapshotHolder
from data_plane.sync import SyncCounters
from shared.budgets import budgeted_scopes, recorded_spend
from shared.events import EVENT_SCHEMA
from shared.quiet_log import Outage
from shared.replicas import LIVENESS

__all__ = ["FleetSync"]

log = logging.getLogger("sluice.data_plane.fleet")

IN_FLIGHT_TTL = LIVENESS  # seconds: a replica that stops reporting stops counting
HEALTH_INTERVAL = 2.0  # seconds between reports of deployment health
HEARTBEAT_INTERVAL = 2.0  # seconds between heartbeats (well within LIVENESS)


class FleetSync:
    def __init__(
        self,
        database_url: str,
        limiter: Limiter,
        budgets: Budgets,
        holder: SnapshotHolder,
        interval: float,
        health: Health | None = None,
        sync: SyncCounters | None = None,
    ) -> None:
        self._health = health
        self._sync = sync  # the follower's: what blocks the snapshot, for the heartbeat
        self._last_health = 0.0
        self._url = database_url
        self._limiter = limiter
        self._budgets = budgets
        self._holder = holder
        self.interval = interval
        self.replica = uuid.uuid4()
        self.failures = 0
        self._last_prune = 0.0
        self._last_heartbeat = -HEARTBEAT_INTERVAL  # the first exchange reports at once

    async def run(self) -> None:
        pool = await asyncpg.create_pool(
            self._url, min_size=0, max_size=1, timeout=5, command_timeout=5
        )
        outage = Outage(log, "fleet counters (database)")
        try:
            while True:
                started = time.monotonic()
                try:
                    async with asyncio.timeout(5), pool.acquire() as conn:
                        await self._exchange(conn)
                    outage.ok()
                except Exception as exc:
                    self.failures += 1
                    outage.failed(exc)
                await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.01))
        finally:
            pool.terminate()

    async def _exchange(self, conn: asyncpg.Connection) -> None:
        limiter = self._limiter
        now = int(time.time())
        if time.monotonic() - self._last_heartbeat > HEARTBEAT_INTERVAL:
            # the control plane appends no event a live replica cannot apply
            blocked = None if self._sync is None else self._sync.blocked
            await conn.execute(
                Q.heartbeat,
                self.replica,
                EVENT_SCHEMA,
                self._holder.state.position,
                None if blocked is None else blocked.describe(),
            )
            self._last_heartbeat = time.monotonic()
        dirty, limiter.dirty = limiter.dirty, set()
        try:
            rows = [(scope, second, *limiter.bucket(scope, second)) for scope, second in dirty]
            if rows:
                scopes, seconds, requests, tokens = map(list, zip(*rows, strict=True))
                await conn.execute(
                    Q.push_counters, scopes, seconds, [self.replica] * len(rows), requests, tokens
                )
        except BaseException:
            limiter.dirty |= dirty  # report them next time
            raise
        # every scope with requests in flight is reported each time (others drop
        # reports older than IN_FLIGHT_TTL), and a scope that went to zero once
        flying, limiter.dirty_in_flight = limiter.dirty_in_flight, set()
        flying |= {scope for scope, n in limiter.in_flight.items() if n > 0}
        try:
            if flying:
                names = sorted(flying)
                counts = [limiter.in_flight.get(n, 0) for n in names]
                await conn.execute(Q.push_in_flight, names, self.replica, counts)
        except BaseException:
            limiter.dirty_in_flight |= flying
            raise
        fleet = Fleet()
        for row in await conn.fetch(Q.pull_counters, now - WINDOW, self.replica):
            fleet.windows.setdefault(row["scope"], {})[row["second"]] = (
                row["requests"],
                row["tokens"],
            )
        for row in await conn.fetch(Q.pull_in_flight, self.replica, IN_FLIGHT_TTL):
            fleet.in_flight[row["scope"]] = row["in_flight"]
        limiter.fleet = fleet
        budgeted = [(scope, p.budget_period) for scope, p in budgeted_scopes(self._holder.state)]
        if budgeted:
            today = datetime.now(UTC).date()
            mark = self._budgets.mark()
            self._budgets.refreshed(await recorded_spend(conn, budgeted, today), mark)
        else:  # no budget to read: what was written need not wait for a read
            self._budgets.refreshed({}, self._budgets.mark())
        if self._health is not None and time.monotonic() - self._last_health > HEALTH_INTERVAL:
            self._last_health = time.monotonic()
            await report_health(conn, self.replica, self._health, self._holder)
        if time.monotonic() - self._last_prune > 10:
            self._last_prune = time.monotonic()
            await conn.execute(Q.prune_counters, now - 2 * WINDOW)
            await conn.execute(Q.prune_in_flight, 6 * IN_FLIGHT_TTL)
            await conn.execute(Q.prune_replicas, 6 * LIVENESS)
