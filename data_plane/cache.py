"""The local snapshot cache: the latest state on disk, to boot from when the
database cannot be reached at start.

The file holds the encoded state and the identity (stream, version) of the event
at its position. On the first contact with the database the follower checks that
identity, so a cache from another database is thrown away, not built on.
One write at a time, in the background: encoded a chunk at a time between
requests, written to disk by a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path

import asyncpg
import msgspec

from shared.private_files import make_folder
from shared.queries import Q
from shared.snapshot_codec import UnknownSchemaVersion, decode_state, encode_state_cooperatively
from shared.state import State

__all__ = ["CachedState", "SnapshotCache"]

log = logging.getLogger("sluice.data_plane.cache")


class CachedState(msgspec.Struct, frozen=True):
    stream: str
    stream_version: int
    snapshot: bytes


class SnapshotCache:
    def __init__(self, path: str, interval: float) -> None:
        self.path = Path(path) if path else None
        self.interval = interval
        self.position = 0  # of the state last written or read
        self.identity: tuple[str, int] | None = None
        self.refused = 0  # files that could not be used
        self._last_write = 0.0
        self._writing: asyncio.Task[None] | None = None

    def read(self) -> State | None:
        """The cached state, or None (no file, unreadable, or another schema version)."""
        if self.path is None or not self.path.exists():
            return None
        try:
            cached = msgspec.msgpack.decode(self.path.read_bytes(), type=CachedState)
            state = decode_state(cached.snapshot)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError, UnknownSchemaVersion) as exc:
            self.refused += 1
            log.warning("not using the snapshot cache %s: %s", self.path, exc)
            return None
        self.position, self.identity = state.position, (cached.stream, cached.stream_version)
        log.info("read the snapshot cache at position %d", state.position)
        return state

    async def matches(self, conn: asyncpg.Connection, state: State) -> bool:
        """Whether the database holds the event the cached state ends with."""
        row = await conn.fetchrow(Q.event_identity, state.position)
        same = row is not None and (row["stream"], row["stream_version"]) == self.identity
        if not same:
            self.refused += 1
            log.warning("the snapshot cache is from another database; loading afresh")
        return same

    async def write_soon(self, conn: asyncpg.Connection, state: State) -> None:
        """Start writing `state` in the background if it is new, the last write is
        `interval` seconds old, and no write is under way. Only the identity query
        runs here, on the caller's connection."""
        if self.path is None or state.position in (0, self.position):
            return
        if self._writing is not None and not self._writing.done():
            return
        if time.monotonic() - self._last_write < self.interval:
            return
        row = await conn.fetchrow(Q.event_identity, state.position)
        if row is None:
            return
        self._last_write = time.monotonic()
        identity = (row["stream"], row["stream_version"])
        self._writing = asyncio.create_task(self._write(state, identity), name="sluice-cache")

    async def _write(self, state: State, identity: tuple[str, int]) -> None:
        assert self.path is not None
        snapshot = await encode_state_cooperatively(state)
        data = msgspec.msgpack.encode(CachedState(identity[0], identity[1], snapshot))
        try:
            await asyncio.to_thread(_write_atomically, self.path, data)
        except OSError as exc:
            log.warning("cannot write the snapshot cache %s: %s", self.path, exc)
            return
        self.position, self.identity = state.position, identity

    async def close(self) -> None:
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a 0600 file beside `path` and move it there (see shared/private_files.py)."""
    make_folder(path.parent)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600, O_EXCL
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
