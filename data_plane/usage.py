"""Usage records: one per request, written to PostgreSQL in batches, never lost.

`record` only appends to a buffer; a background task writes batches with COPY
(one transaction with the spend they add). While PostgreSQL is unreachable the
records wait in memory up to `max_buffer`, then in a local spool file; both are
written once it returns, and at shutdown whatever is left goes to the spool.
Every record carries its request id, and a batch that meets one already written
(a retry after a lost acknowledgement) is written row by row with ON CONFLICT
DO NOTHING, so each record is stored exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import asyncpg
import msgspec

from data_plane.queries import Q
from shared.private_files import open_private
from shared.quiet_log import Outage

__all__ = ["UsageRecord", "UsageRecorder"]

log = logging.getLogger("sluice.data_plane.usage")

_COLUMNS = (
    "request_id",
    "created_at",
    "tenant_id",
    "key_id",
    "model",
    "provider_id",
    "upstream_model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "status",
    "latency_ms",
    "ttft_ms",
    "stream",
    "disconnected",
    "error_code",
    "deployment_id",
    "attempts",
    "operation",
    "dialect",
)


class UsageRecord(msgspec.Struct, frozen=True):
    request_id: uuid.UUID
    created_at: datetime
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    model: str
    provider_id: uuid.UUID | None
    upstream_model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    status: int
    latency_ms: float
    ttft_ms: float | None
    stream: bool
    disconnected: bool
    error_code: str | None
    deployment_id: uuid.UUID | None = None  # the deployment that answered, else the last tried
    attempts: int = 1
    operation: str = "chat"  # chat, messages or embeddings
    dialect: str = "openai"  # the API the client spoke

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, c) for c in _COLUMNS)


_encode_line = msgspec.json.Encoder().encode
_decode_line = msgspec.json.Decoder(UsageRecord).decode


class UsageRecorder:
    def __init__(
        self,
        database_url: str,
        spool: str,
        *,
        max_buffer: int = 50_000,
        batch: int = 2_000,
        interval: float = 0.25,
        on_written: Callable[[list[UsageRecord]], None] | None = None,
    ) -> None:
        self._on_written = on_written
        self._url = database_url
        self._spool = Path(spool) if spool else None
        self._max_buffer = max_buffer
        self._batch = batch
        self._interval = interval
        self._buffer: collections.deque[UsageRecord] = collections.deque()
        self._pool: asyncpg.Pool | None = None
        self.written = 0
        self.spooled = 0
        self.failures = 0
        # records in the spool file since it was last taken for replay, and in the
        # replay file as last read: together, the records waiting on disk
        self._in_spool = 0
        self._in_replay = 0
        self._closed = False  # after close, a record goes straight to the spool

    @property
    def waiting(self) -> int:
        """Records in the spool waiting to be written (a spool left by an earlier
        process counts once its replay has read it)."""
        return self._in_spool + self._in_replay

    def record(self, record: UsageRecord) -> None:
        """Never raises: it runs as a request ends, whatever happened to it."""
        self._buffer.append(record)
        if self._closed:  # nothing writes the buffer any more
            self._spill(len(self._buffer))
        elif len(self._buffer) > self._max_buffer:
            self._spill(self._max_buffer // 2)

    async def run(self) -> None:
        """Write batches until cancelled (then call `close`)."""
        self._pool = await asyncpg.create_pool(
            self._url, min_size=0, max_size=2, timeout=5, command_timeout=30
        )
        backoff = self._interval
        outage = Outage(log, "usage recording (database)")
        while True:
            await asyncio.sleep(backoff)
            try:
                await self._replay_spool()
                await self._write_buffer()
                outage.ok()
                backoff = self._interval
            except Exception as exc:  # the records wait, in memory or in the spool
                self.failures += 1
                outage.failed(exc)
                backoff = min(backoff * 2, 5.0)

    async def close(self, grace: float = 5.0) -> None:
        """Write what is left; whatever cannot be written in `grace` seconds is spooled."""
        self._closed = True
        try:
            if self._pool is not None:
                async with asyncio.timeout(grace):
                    await self._replay_spool()
                    await self._write_buffer()
        except Exception as exc:
            log.warning("usage records go to the spool at shutdown (%s)", type(exc).__name__)
        if self._buffer:
            self._spill(len(self._buffer))
        if self._pool is not None:
            self._pool.terminate()

    def _take(self, n: int) -> list[UsageRecord]:
        return [self._buffer.popleft() for _ in range(min(n, len(self._buffer)))]

    async def _write_buffer(self) -> None:
        """Write what is buffered now (not what arrives meanwhile: the spool gets its turn)."""
        left = len(self._buffer)
        while left > 0 and self._buffer:
            records = self._take(min(self._batch, left))
            left -= len(records)
            try:
                await self._write(records)
            except BaseException:
                self._buffer.extendleft(reversed(records))  # not written: keep them
                raise

    async def _write(self, records: list[UsageRecord]) -> None:
        """Write a batch in one transaction with the spend it adds."""
        assert self._pool is not None
        # a deadline for the whole batch: a connection that dies silently (no RST)
        # must not hold the records hostage; they are retried, idempotently
        async with asyncio.timeout(30), self._pool.acquire() as conn, conn.transaction():
            try:
                async with conn.transaction():  # a savepoint: COPY is all or nothing
                    await conn.copy_records_to_table(
                        "usage", records=[r.row() for r in records], columns=_COLUMNS
                    )
                stored = records
            except (asyncpg.UniqueViolationError, asyncpg.DataError):
                # some were written before, or one is unstorable: one by one
                stored = await self._one_by_one(conn, records)
            for (scope, day), usd in _spend(stored).items():
                await conn.execute(Q.add_spend, scope, day, usd)
            hourly = _hourly(stored)
            if hourly:
                await conn.execute(Q.add_hourly, *map(list, zip(*hourly, strict=True)))
        self.written += len(stored)
        if self._on_written is not None:
            self._on_written(records)

    async def _one_by_one(
        self, conn: asyncpg.Connection, records: list[UsageRecord]
    ) -> list[UsageRecord]:
        stored = []
        for r in records:
            try:
                async with conn.transaction():
                    if await conn.fetchval(Q.insert_usage, *r.row()):
                        stored.append(r)
            except asyncpg.DataError as exc:
                log.error("the database refuses a usage record (%s); set aside", exc)
                self._append(self._rejected(), [r])
        return stored

    def _rejected(self) -> Path | None:
        return (
            None if self._spool is None else self._spool.with_name(self._spool.name + ".rejected")
        )

    def _spill(self, n: int) -> None:
        """Move the `n` oldest buffered records to the spool file (if it can be written)."""
        records = self._take(n)
        if self._spool is None or not self._append(self._spool, records):
            self._buffer.extendleft(reversed(records))  # nowhere to go: keep them
            return
        self.spooled += len(records)
        self._in_spool += len(records)
        log.warning("spooled %d usage records to %s", len(records), self._spool)

    @staticmethod
    def _append(path: Path | None, records: list[UsageRecord]) -> bool:
        if path is None:
            return False
        try:
            with os.fdopen(open_private(path, append=True), "ab") as f:  # 0600, folder 0700
                f.write(b"".join(_encode_line(r) + b"\n" for r in records))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            log.error("cannot write %s (%s); the records stay in memory", path, exc)
            return False
        return True

    async def _replay_spool(self) -> None:
        if self._spool is None:
            return
        replay = self._spool.with_name(self._spool.name + ".replay")
        if not replay.exists():
            if not self._spool.exists():
                return
            self._spool.replace(replay)  # new spills start a new file
            self._in_spool = 0
        records = await asyncio.to_thread(_read_spool, replay)
        self._in_replay = len(records)
        for i in range(0, len(records), self._batch):
            await self._write(records[i : i + self._batch])  # a failure leaves the file
        replay.unlink()
        self._in_replay = 0
        log.info("replayed %d spooled usage records", len(records))


def _spend(records: list[UsageRecord]) -> dict[tuple[str, date], float]:
    totals: dict[tuple[str, date], float] = {}
    for r in records:
        if r.cost_usd:
            day = r.created_at.date()
            for scope in (f"tenant:{r.tenant_id}", f"key:{r.key_id}"):
                totals[scope, day] = totals.get((scope, day), 0.0) + r.cost_usd
    return totals


def _hourly(records: list[UsageRecord]) -> list[tuple[object, ...]]:
    totals: dict[tuple[datetime, uuid.UUID, uuid.UUID, str], list[float]] = {}
    for r in records:
        hour = r.created_at.replace(minute=0, second=0, microsecond=0)
        row = totals.setdefault((hour, r.tenant_id, r.key_id, r.model), [0, 0, 0, 0, 0.0])
        row[0] += 1
        row[1] += r.status >= 400
        row[2] += r.prompt_tokens
        row[3] += r.completion_tokens
        row[4] += r.cost_usd
    return [
        (*group, int(n), int(errors), int(prompt), int(completion), usd)
        for group, (n, errors, prompt, completion, usd) in totals.items()
    ]


def _read_spool(path: Path) -> list[UsageRecord]:
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(_decode_line(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("skipping a damaged line of %s", path)
    return records
