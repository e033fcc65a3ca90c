"""Reading the event log in position order and folding it into a `State`."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.events import Event, decode_payload
from shared.queries import Q
from shared.reducer import apply
from shared.state import State

__all__ = ["END", "catch_up", "event_from_row", "read_events_after"]

BATCH = 5000
END = 2**63 - 1  # past every position


def event_from_row(row: asyncpg.Record | dict[str, Any]) -> Event:
    return Event(
        position=row["position"],
        stream=row["stream"],
        stream_version=row["stream_version"],
        type=row["type"],
        payload=decode_payload(row["type"], row["data"]),
        actor=row["actor"],
        created_at=row["created_at"],
    )


async def read_events_after(
    conn: asyncpg.Connection, position: int, upto: int = END, limit: int = BATCH
) -> list[Event]:
    rows = await conn.fetch(Q.events_between, position, upto, limit)
    return [event_from_row(row) for row in rows]


async def catch_up(conn: asyncpg.Connection, state: State, upto: int = END) -> State:
    """Apply every event after `state.position` (and up to `upto`), in batches."""
    while True:
        events = await read_events_after(conn, state.position, upto)
        for event in events:
            state = apply(state, event)
        if len(events) < BATCH:
            return state
