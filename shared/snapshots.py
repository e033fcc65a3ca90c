"""Loading the state from the newest usable snapshot plus the events after it,
and writing new snapshots."""

from __future__ import annotations

import logging

import asyncpg

from shared.event_log import END, catch_up
from shared.queries import Q
from shared.snapshot_codec import UnknownSchemaVersion, decode_state, encode_state
from shared.state import SCHEMA_VERSION, State

__all__ = ["KEEP_SNAPSHOTS", "load_state", "write_snapshot"]

log = logging.getLogger("sluice.snapshots")
KEEP_SNAPSHOTS = 5


async def _snapshot_state(conn: asyncpg.Connection, at: int) -> tuple[State, bool]:
    """The newest snapshot at or before `at`, and whether one was refused as unreadable."""
    row = await conn.fetchrow(Q.snapshot_at_or_before, at)
    if row is None:
        return State(), False
    try:
        state = decode_state(row["data"])
    except UnknownSchemaVersion as exc:
        log.warning("ignoring the snapshot at %d: %s; folding the log", row["position"], exc)
        return State(), True
    log.info("starting from the snapshot at position %d", state.position)
    return state, False


async def load_state(conn: asyncpg.Connection, at: int = END) -> tuple[State, bool]:
    """The state after event `at` (default: the newest), and whether a snapshot was refused."""
    state, refused = await _snapshot_state(conn, at)
    return await catch_up(conn, state, upto=at), refused


async def write_snapshot(conn: asyncpg.Connection) -> int | None:
    """Store the newest state if it is newer than the newest snapshot; its position, or None."""
    newest, _ = await _snapshot_state(conn, END)
    state = await catch_up(conn, newest)
    if state.position == newest.position:
        return None
    await conn.execute(Q.insert_snapshot, state.position, SCHEMA_VERSION, encode_state(state))
    await conn.execute(Q.prune_snapshots, KEEP_SNAPSHOTS - 1)
    return state.position
