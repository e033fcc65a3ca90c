"""Appending events: optimistic concurrency, commit-ordered positions,
projections and the NOTIFY doorbell, all in one transaction.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import asyncpg

from control_plane.errors import AdminError, Conflict, VersionConflict
from control_plane.event_tenant import tenant_of
from control_plane.projections import project
from control_plane.queries import Q
from shared.event_log import Unreadable, catch_up
from shared.events import Event, Payload, encode_payload, event_type, schema_of
from shared.reducer import apply
from shared.replicas import LIVENESS
from shared.snapshots import load_state
from shared.state import State

__all__ = [
    "APPEND_LOCK",
    "FORCE_SCHEMA",
    "Decide",
    "EventStore",
    "NewerLog",
    "ReplicasBehind",
    "Step",
]

# Any constant works; it only has to be the same for every writer.
APPEND_LOCK = 0x5_1_0_1_C_E

Decide = Callable[[State], Sequence[Payload]]
FORCE_SCHEMA = "X-Sluice-Force-Schema"  # the admin API's header for `EventStore.forcing_schema`


class NewerLog(AdminError):
    """The log holds an event this build of the control plane cannot apply."""

    status = 503


async def _catch_up(conn: asyncpg.Connection, state: State) -> State:
    try:
        return await catch_up(conn, state)
    except Unreadable as exc:
        raise NewerLog(str(exc)) from exc


class ReplicasBehind(Conflict):
    """Events of a schema that live data plane replicas cannot apply."""

    def __init__(self, schema: int, replicas: Sequence[tuple[uuid.UUID, int]]) -> None:
        names = ", ".join(f"{replica} (schema {known})" for replica, known in replicas)
        super().__init__(
            f"these events are of event schema {schema}, which live data plane replicas do"
            f" not understand: {names}. Upgrade them first, or repeat with {FORCE_SCHEMA}:"
            " true (they then stop applying events there and report not ready).",
            field=FORCE_SCHEMA,
            source="header",
        )
        self.schema, self.replicas = schema, list(replicas)


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
        self._force_schema = False

    def forcing_schema(self) -> EventStore:
        """This store, appending events even of a schema that live replicas cannot apply
        (they stop applying there until upgraded), where it refuses with `ReplicasBehind`."""
        forced = copy.copy(self)
        forced._force_schema = True
        return forced

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
            state = await _catch_up(conn, known)
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
                if not self._force_schema:
                    await self._refuse_unknown_schema(conn, events)
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
            state = await _catch_up(conn, known)
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
                    try:
                        self._state, _ = await load_state(conn)
                    except Unreadable as exc:
                        raise NewerLog(str(exc)) from exc
            return self._state

    @staticmethod
    async def _refuse_unknown_schema(conn: asyncpg.Connection, events: list[Event]) -> None:
        """`ReplicasBehind` if a live replica understands an older schema than an event's."""
        schema = max(schema_of(event.type) for event in events)
        behind = await conn.fetch(Q.replicas_behind, schema, LIVENESS)
        if behind:
            raise ReplicasBehind(schema, [(row["replica"], row["event_schema"]) for row in behind])

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
                schema_of(type_),
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
