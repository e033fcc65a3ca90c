"""A data plane with tracemalloc on, for `bench.memory --trace`: each SIGUSR1
writes a snapshot of the traced allocations to `<TRACE_DIR>/snapshot-<n>.bin`
(and an empty `.done` file once it is complete)."""

from __future__ import annotations

import gc
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

TRACE_DIR = Path(__file__).resolve().parent.parent / ".bench" / "trace"


def main() -> None:
    TRACE_DIR.mkdir(parents=True, exist_ok=True)
    for old in TRACE_DIR.glob("snapshot-*"):
        old.unlink()
    tracemalloc.start(1)
    taken = 0

    def snapshot(signum: int, frame: FrameType | None) -> None:
        nonlocal taken
        gc.collect()
        taken += 1
        tracemalloc.take_snapshot().dump(str(TRACE_DIR / f"snapshot-{taken}.bin"))
        (TRACE_DIR / f"snapshot-{taken}.done").touch()

    signal.signal(signal.SIGUSR1, snapshot)
    from data_plane.__main__ import main as data_plane

    data_plane(sys.argv[1:])


if __name__ == "__main__":
    main()
