"""The streams being relayed, so that a drain can end those still open when its
grace period is over.

A stream's task is added when its response starts and discarded when it ends (a
set add and discard: nothing else per request). `cut` cancels the open ones and
remembers them; the relay, seeing its cancellation came from here (`was_cut`),
ends the stream with the client's final error event and the request is accounted
as usual, with that error.
"""

from __future__ import annotations

import asyncio
import logging

from shared.errors import ServiceUnavailable

__all__ = ["OpenStreams", "shutting_down"]

log = logging.getLogger("sluice.data_plane.drain")


def shutting_down() -> ServiceUnavailable:
    """The error a stream still open at the end of the grace period ends with."""
    return ServiceUnavailable(
        "The gateway is shutting down; the stream ended before the answer was complete.",
        code="shutting_down",
    )


class OpenStreams:
    __slots__ = ("cut_off", "open")

    def __init__(self) -> None:
        self.open: set[asyncio.Task[None]] = set()
        self.cut_off: set[asyncio.Task[None]] = set()

    def was_cut(self, task: asyncio.Task[None]) -> bool:
        """On the task's cancellation: True (and the cancellation withdrawn) if it came
        from `cut` alone; the stream is then to end with `shutting_down()`."""
        return task in self.cut_off and task.uncancel() == 0

    async def cut(self, within: float) -> None:
        """Cancel every open stream, and wait up to `within` seconds for them to end."""
        tasks = list(self.open)
        if not tasks:
            return
        log.warning("ending %d stream(s) still open", len(tasks))
        for task in tasks:
            self.cut_off.add(task)
            task.cancel()
        await asyncio.wait(tasks, timeout=within)
