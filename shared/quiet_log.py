"""Logging a dependency that comes and goes: one line when it goes away, a reminder
every `remind` seconds while it stays away, one line when it is back.

Background loops (fleet sync, usage flush, event-log follower, budget watch, job
worker) retry every fraction of a second while PostgreSQL is down; each gives its
failures and successes to one `Outage` instead of logging every attempt. A library
that logs each retry itself (pgqueuer) gets a `Repeats` filter on its logger.
"""

from __future__ import annotations

import logging
import time

import asyncpg

__all__ = ["DATABASE_ERRORS", "Outage", "Repeats"]

# What a database that is away (or a connection that died) raises. asyncpg raises
# InternalClientError ("cannot switch to state …") for a query on a connection the
# server is closing at that moment.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    TimeoutError,
)


class Outage:
    """The state of one dependency as one loop sees it, and the lines it logs."""

    def __init__(self, log: logging.Logger, what: str, *, remind: float = 30.0) -> None:
        self._log = log
        self._what = what
        self._remind = remind
        self._since: float | None = None  # monotonic time of the first failure
        self._reminded = 0.0
        self._failures = 0  # since the first failure

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """An attempt failed. The first failure is logged (with its traceback when it
        is not a database error: that is a defect, not an outage); then a reminder
        every `remind` seconds."""
        now = time.monotonic()
        self._failures += 1
        if self._since is None:
            self._since = self._reminded = now
            self._log.warning(
                "%s unavailable (%s: %s)",
                self._what,
                type(exc).__name__,
                exc,
                exc_info=None if isinstance(exc, DATABASE_ERRORS) else exc,
            )
        elif now - self._reminded >= self._remind:
            self._reminded = now
            self._log.warning(
                "%s still unavailable after %.0f s (%d failed attempts; last: %s)",
                self._what,
                now - self._since,
                self._failures,
                type(exc).__name__,
            )

    def ok(self) -> None:
        """An attempt succeeded: if it was away, say that it is back."""
        if self._since is None:
            return
        self._log.warning(
            "%s available again after %.0f s (%d failed attempts)",
            self._what,
            time.monotonic() - self._since,
            self._failures,
        )
        self._since, self._failures = None, 0


class Repeats(logging.Filter):
    """A filter for a library's logger: each message (by its template) passes at
    most once every `remind` seconds, and a database error's traceback is cut to
    its name (an outage is not a defect: the stack says nothing new)."""

    def __init__(self, remind: float = 30.0) -> None:
        super().__init__()
        self._remind = remind
        self._last: dict[tuple[str, str], float] = {}  # one entry per distinct template

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = (record.name, str(record.msg))
        if now - self._last.get(key, -self._remind) < self._remind:
            return False
        self._last[key] = now
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, DATABASE_ERRORS) and isinstance(record.args, tuple):
            record.msg = f"{record.msg} (%s: %s; repeats within {self._remind:.0f} s not logged)"
            record.args = (*record.args, type(exc).__name__, exc)
            record.exc_info = record.exc_text = None
        return True
