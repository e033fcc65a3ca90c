"""The data plane's current snapshot: one reference, swapped whole."""

from __future__ import annotations

import time

from shared.state import State

__all__ = ["SnapshotHolder"]


class SnapshotHolder:
    """Holds the latest `State`. A request reads `.state` once, at its start."""

    def __init__(self) -> None:
        self.state = State()
        self.loaded = False
        self.last_sync = 0.0  # time.monotonic() of the last successful sync

    def swap(self, state: State) -> None:
        self.state = state
        self.loaded = True
        self.last_sync = time.monotonic()
