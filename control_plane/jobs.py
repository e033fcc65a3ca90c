"""Background jobs on the PostgreSQL queue (pgqueuer): periodic snapshots.

A snapshot is requested every `snapshot_every_events` events (inside the append
transaction that crosses the boundary, so the request is never lost) and every
`snapshot_every_seconds` seconds (by a timer in each control-plane process).
Requests share one dedupe key, so however many processes ask, at most one
snapshot job is queued at a time; the job itself does nothing when no event came
since the newest snapshot.

The worker runs without pgqueuer's `shutdown_on_listener_failure`: its first
listener probe (a NOTIFY on a pooled connection) is sent by a task started
before the worker's LISTEN is issued, and when the NOTIFY commits first the
probe never hears itself; 10 s later the probe fails, and the worker stopped at
its next wake-up (the 30 s dequeue timeout): a restart ~30 s after a healthy
start, now and then. Without the option a worker whose listener is gone still
polls the queue every `_POLL`; one whose database is gone fails its queries and
is restarted. Database outages are logged once, when they start and end
(`shared/quiet_log.py`); "available again" shows on the next snapshot request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta

import asyncpg
from pgqueuer import PgQueuer, Queries
from pgqueuer.db import AsyncpgDriver, AsyncpgPoolDriver
from pgqueuer.models import Job, Schedule

from control_plane.partitions import ensure_usage_partitions
from shared.quiet_log import DATABASE_ERRORS, Outage, Repeats
from shared.snapshots import write_snapshot

__all__ = ["SNAPSHOT_JOB", "Jobs"]

log = logging.getLogger("sluice.control_plane.jobs")

SNAPSHOT_JOB = "sluice.snapshot"
PARTITIONS_JOB = "sluice.usage_partitions"
_POLL = timedelta(seconds=30)  # the worker looks at the queue at least this often


async def _enqueue_snapshot(queries: Queries) -> None:
    await queries.enqueue(SNAPSHOT_JOB, None, dedupe_key=SNAPSHOT_JOB, on_conflict="skip")


class Jobs:
    def __init__(
        self, database_url: str, *, snapshot_every_events: int, snapshot_every_seconds: float
    ) -> None:
        self._url = database_url
        self.every_events = snapshot_every_events
        self.every_seconds = snapshot_every_seconds
        self._pool: asyncpg.Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pgq: PgQueuer | None = None
        self._stopping = False
        self._outage = Outage(log, "job queue (database)")
        self._repeats = Repeats()  # pgqueuer logs each failed retry, traceback and all

    async def start(self) -> None:
        logging.getLogger("pgqueuer").addFilter(self._repeats)
        # A pool of its own: the queue's listener holds one connection for good.
        self._pool = await asyncpg.create_pool(self._url, min_size=0, max_size=3, timeout=5)
        self._tasks = [
            asyncio.create_task(self._work(), name="sluice-jobs-worker"),
            asyncio.create_task(self._tick(), name="sluice-jobs-timer"),
        ]
        try:  # daily usage partitions: now, then every hour (the schedule below)
            await Queries(AsyncpgPoolDriver(self._pool)).enqueue(
                PARTITIONS_JOB, None, dedupe_key=PARTITIONS_JOB, on_conflict="skip"
            )
        except Exception as exc:
            log.warning("could not queue the partition job: %s", type(exc).__name__)

    async def stop(self) -> None:
        self._stopping = True
        if self._pgq is not None:
            self._pgq.shutdown.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        if self._pool is not None:
            self._pool.terminate()
        logging.getLogger("pgqueuer").removeFilter(self._repeats)

    async def in_transaction(self, conn: asyncpg.Connection, first: int, last: int) -> None:
        """Called inside each append transaction with the positions it wrote."""
        if self.every_events and (first - 1) // self.every_events != last // self.every_events:
            await _enqueue_snapshot(Queries(AsyncpgDriver(conn)))

    async def request_snapshot(self) -> None:
        assert self._pool is not None
        try:
            await _enqueue_snapshot(Queries(AsyncpgPoolDriver(self._pool)))
            self._outage.ok()
        except Exception as exc:  # the database is away: the next tick asks again
            self._outage.failed(exc)

    async def _snapshot(self, job: Job) -> None:
        assert self._pool is not None
        try:
            async with self._pool.acquire() as conn:
                position = await write_snapshot(conn)
        except DATABASE_ERRORS as exc:  # the next request (timer or append) tries again
            self._outage.failed(exc)
            return
        if position is not None:
            log.info("snapshot written at position %d", position)

    async def _partitions(self, _trigger: Job | Schedule) -> None:
        assert self._pool is not None
        try:
            async with self._pool.acquire() as conn:
                created = await ensure_usage_partitions(conn)
        except DATABASE_ERRORS as exc:  # the hourly schedule tries again
            self._outage.failed(exc)
            return
        if created:
            log.info("created %d usage partitions", created)

    async def _work(self) -> None:
        """Run the queue worker; if it stops (the database went away, its listener
        died), start it again, until the process stops."""
        assert self._pool is not None
        backoff = 0.5
        while not self._stopping:
            self._pgq = PgQueuer.from_asyncpg_pool(self._pool)
            self._pgq.entrypoint(SNAPSHOT_JOB)(self._snapshot)
            self._pgq.entrypoint(PARTITIONS_JOB)(self._partitions)
            self._pgq.schedule(PARTITIONS_JOB, "0 * * * *")(self._partitions)
            try:
                # not `shutdown_on_listener_failure`: see the module's docstring
                await self._pgq.run(dequeue_timeout=_POLL)
                backoff = 0.5
            except Exception as exc:
                if self._stopping:
                    return
                self._outage.failed(exc)
            if self._stopping:
                return
            await asyncio.sleep(random.uniform(backoff / 2, backoff))
            backoff = min(backoff * 2, 10)

    async def _tick(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.every_seconds)
            await self.request_snapshot()
