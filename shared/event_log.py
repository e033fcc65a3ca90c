"""Reading the event log in position order and folding it into a `State`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from shared.events import Event, decode_payload
from shared.reducer import apply
from shared.sql import load_queries
from shared.state import State

__all__ = ["QUERIES", "catch_up", "event_from_row", "read_events_after"]

QUERIES = load_queries(Path(__file__).parent / "sql")
BATCH = 5000


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
    conn: asyncpg.Connection, position: int, limit: int = BATCH
) -> list[Event]:
    rows = await conn.fetch(QUERIES.events_after, position, limit)
    return [event_from_row(row) for row in rows]


async def catch_up(conn: asyncpg.Connection, state: State) -> State:
    """Apply every event after `state.position`, in batches, and return the new state."""
    while True:
        events = await read_events_after(conn, state.position)
        for event in events:
            state = apply(state, event)
        if len(events) < BATCH:
            return state
