"""Appending events: optimistic concurrency, commit-ordered positions,
projections and the NOTIFY doorbell, all in one transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import asyncpg

from control_plane.errors import VersionConflict
from control_plane.event_tenant import tenant_of
from control_plane.projections import project
from control_plane.queries import Q
from shared.event_log import catch_up
from shared.events import Event, Payload, encode_payload, event_type
from shared.reducer import apply
from shared.snapshots import load_state
from shared.state import State

__all__ = ["APPEND_LOCK", "Decide", "EventStore", "Step"]

# Any constant works; it only has to be the same for every writer.
APPEND_LOCK = 0x5_1_0_1_C_E

Decide = Callable[[State], Sequence[Payload]]


class Step(NamedTuple):
    """One stream's part of an append: what `decide` returns, at `expected_version`
    (0: a new stream; None: any)."""

    stream: str
    decide: Decide
    expected_version: int | None = None


# Runs inside the append transaction with (connection, first position, last position).
InTransaction = Callable[[asyncpg.Connection, int, int], Awaitable[None]]


class EventStore:
    """The single writer path to the event log.

    `decide` sees the state folded up to the newest event (read under the append
    lock), so a command is validated against exactly the state it will change.
    """

    def __init__(
        self, pool: asyncpg.Pool, channel: str, in_transaction: InTransaction | None = None
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._in_transaction = in_transaction
        self._state: State | None = None  # loaded from the newest snapshot on first use
        self._loading = asyncio.Lock()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def append(
        self,
        stream: str,
        decide: Decide,
        *,
        actor: str,
        expected_version: int | None = None,
    ) -> list[Event]:
        """Append what `decide` returns to `stream`.

        With `expected_version`, the stream must be at exactly that version
        (0 for a new stream), or `VersionConflict` is raised and nothing is written.
        """
        return await self.append_all([Step(stream, decide, expected_version)], actor=actor)

    async def append_all(self, steps: Sequence[Step], *, actor: str) -> list[Event]:
        """Append every step's events in one transaction, all or none: each step's
        `decide` sees the state after the steps before it, and any exception (a
        refusal, a version conflict) leaves the log as it was."""
        known = await self._known_state()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q.lock_appends, APPEND_LOCK)
            state = await catch_up(conn, known)
            events: list[Event] = []
            for step in steps:
                version: int = await conn.fetchval(Q.stream_version, step.stream)
                if step.expected_version is not None and step.expected_version != version:
                    raise VersionConflict(step.stream, step.expected_version, version)
                for payload in step.decide(state):
                    version += 1
                    event = await self._insert(conn, step.stream, version, payload, actor, state)
                    state = apply(state, event)
                    await project(conn, event)
                    events.append(event)
            if events:
                if self._in_transaction is not None:
                    await self._in_transaction(conn, events[0].position, events[-1].position)
                await conn.execute(Q.notify, self._channel, str(events[-1].position))
        if self._state is None or state.position > self._state.position:
            self._state = state
        return events

    async def current_state(self) -> State:
        """The newest state (caught up without taking the append lock)."""
        known = await self._known_state()
        async with self._pool.acquire() as conn:
            state = await catch_up(conn, known)
        if self._state is None or state.position > self._state.position:
            self._state = state
        return state

    async def _known_state(self) -> State:
        """The newest state this process has folded; the first time, the newest stored
        snapshot plus the events after it, read before taking the append lock so
        that no writer waits while a large log is folded."""
        async with self._loading:
            if self._state is None:
                async with self._pool.acquire() as conn:
                    self._state, _ = await load_state(conn)
            return self._state

    @staticmethod
    async def _insert(
        conn: asyncpg.Connection,
        stream: str,
        version: int,
        payload: Payload,
        actor: str,
        state: State,
    ) -> Event:
        type_ = event_type(payload)
        tenant = tenant_of(payload, state)
        try:
            row = await conn.fetchrow(
                Q.insert_event,
                stream,
                version,
                type_,
                encode_payload(payload).decode(),
                actor,
                None if tenant is None else uuid.UUID(tenant),
            )
        except asyncpg.UniqueViolationError:
            raise VersionConflict(stream, version - 1, version) from None
        assert row is not None
        return Event(
            position=row["position"],
            stream=stream,
            stream_version=version,
            type=type_,
            payload=payload,
            actor=actor,
            created_at=row["created_at"],
        )
