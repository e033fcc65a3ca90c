"""Reading the event log in position order and folding it into a `State`.

An event this build cannot apply (a type it does not know, a schema newer than
`EVENT_SCHEMA`, a payload it cannot decode) is never skipped: folding stops
before it (`Unreadable`), since every later event may depend on it.
"""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
import msgspec

from shared.events import EVENT_SCHEMA, PAYLOAD_TYPES, Event, decode_payload
from shared.queries import Q
from shared.reducer import apply
from shared.state import State

__all__ = [
    "END",
    "REASONS",
    "Unreadable",
    "catch_up",
    "event_from_row",
    "fold",
    "read_events_after",
]

BATCH = 5000
END = 2**63 - 1  # past every position

Reason = Literal["unknown_type", "newer_schema", "undecodable"]
REASONS: tuple[Reason, ...] = ("unknown_type", "newer_schema", "undecodable")


class Unreadable(Exception):
    """The event at `position` cannot be applied by this build, for `reason`."""

    def __init__(self, position: int, type_: str, schema: int, reason: Reason) -> None:
        self.position, self.type, self.schema, self.reason = position, type_, schema, reason
        super().__init__(self.describe())

    def describe(self) -> str:
        why = {
            "unknown_type": "its type is unknown to this build",
            "newer_schema": f"its schema is newer than this build's {EVENT_SCHEMA}",
            "undecodable": "its payload cannot be decoded",
        }[self.reason]
        return (
            f"cannot apply event {self.position} (type {self.type!r}, schema {self.schema}):"
            f" {why}; a newer build is needed"
        )


def event_from_row(row: asyncpg.Record | dict[str, Any]) -> Event:
    """The event of an `events` row; `Unreadable` if this build cannot apply it."""
    position, type_, schema = row["position"], row["type"], row["event_schema"]
    if type_ not in PAYLOAD_TYPES:
        raise Unreadable(position, type_, schema, "unknown_type")
    if schema > EVENT_SCHEMA:
        raise Unreadable(position, type_, schema, "newer_schema")
    try:
        payload = decode_payload(type_, row["data"])
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise Unreadable(position, type_, schema, "undecodable") from None
    return Event(
        position=position,
        stream=row["stream"],
        stream_version=row["stream_version"],
        type=type_,
        payload=payload,
        actor=row["actor"],
        created_at=row["created_at"],
    )


async def read_events_after(
    conn: asyncpg.Connection, position: int, upto: int = END, limit: int = BATCH
) -> list[Event]:
    rows = await conn.fetch(Q.events_between, position, upto, limit)
    return [event_from_row(row) for row in rows]


async def fold(
    conn: asyncpg.Connection, state: State, upto: int = END
) -> tuple[State, Unreadable | None]:
    """Apply every event after `state.position` (and up to `upto`), in batches, up to
    the first one this build cannot apply: the state before it, and why it stopped."""
    while True:
        rows = await conn.fetch(Q.events_between, state.position, upto, BATCH)
        for row in rows:
            try:
                event = event_from_row(row)
            except Unreadable as exc:
                return state, exc
            state = apply(state, event)
        if len(rows) < BATCH:
            return state, None


async def catch_up(conn: asyncpg.Connection, state: State, upto: int = END) -> State:
    """Apply every event after `state.position` (and up to `upto`); `Unreadable` if
    one of them cannot be applied."""
    state, stopped = await fold(conn, state, upto)
    if stopped is not None:
        raise stopped
    return state
