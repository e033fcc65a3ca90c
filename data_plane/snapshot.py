"""The data plane's current snapshot: one reference, swapped whole."""

from __future__ import annotations

import gc
import time

from shared.state import State

__all__ = ["SnapshotHolder"]


class SnapshotHolder:
    """Holds the latest `State`. A request reads `.state` once, at its start.

    `loaded`: there is a state to serve (from the database or the disk cache).
    `synced`: caught up with the database at least once since this process started;
    loaded but not synced means serving from the disk cache ("stale").
    """

    def __init__(self) -> None:
        self.state = State()
        self.loaded = False
        self.synced = False
        self.last_sync = 0.0  # time.monotonic() of the last successful sync

    def swap(self, state: State) -> None:
        self.state = state
        self.loaded = True
        # A snapshot is hundreds of thousands of long-lived objects (map nodes);
        # left to the cyclic collector, each full collection walks them all (≈ 90 ms
        # with 100,000 keys, a stall for every request in flight). Frozen objects
        # are skipped by collections and still freed by reference counting when a
        # later swap drops them; snapshots hold no reference cycles.
        gc.freeze()

    def mark_synced(self) -> None:
        self.synced = True
        self.last_sync = time.monotonic()

    @property
    def status(self) -> str:
        if not self.loaded:
            return "starting"
        return "ready" if self.synced else "stale"

    def seconds_since_sync(self) -> float | None:
        return round(time.monotonic() - self.last_sync, 3) if self.synced else None
