"""Loading the state from the newest readable snapshot plus the events after it,
and writing new snapshots. Decoding and encoding run in a worker thread, so a
large snapshot does not stall the event loop that serves requests."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import msgspec

from shared.event_log import END, catch_up
from shared.queries import Q
from shared.snapshot_codec import UnknownSchemaVersion, decode_state, encode_state
from shared.state import SCHEMA_VERSION, State

__all__ = ["KEEP_SNAPSHOTS", "load_state", "snapshot_state", "write_snapshot"]

log = logging.getLogger("sluice.snapshots")
KEEP_SNAPSHOTS = 5
_UNREADABLE = (UnknownSchemaVersion, msgspec.DecodeError, msgspec.ValidationError)


async def snapshot_state(conn: asyncpg.Connection, at: int) -> tuple[State, int]:
    """The newest readable snapshot at or before `at` (or the empty state), and how
    many newer ones were refused as unreadable (another schema version, corrupt)."""
    refused = 0
    for row in await conn.fetch(Q.snapshot_positions, at, KEEP_SNAPSHOTS + 1):
        data = await conn.fetchval(Q.snapshot_data, row["position"])
        if data is None:  # pruned meanwhile
            continue
        try:
            state = await asyncio.to_thread(decode_state, data)
        except _UNREADABLE as exc:
            refused += 1
            log.warning("ignoring the snapshot at %d: %s", row["position"], exc)
            continue
        log.info("starting from the snapshot at position %d", state.position)
        return state, refused
    return State(), refused


async def load_state(conn: asyncpg.Connection, at: int = END) -> tuple[State, int]:
    """The state after event `at` (default: the newest), and how many snapshots were refused."""
    state, refused = await snapshot_state(conn, at)
    return await catch_up(conn, state, upto=at), refused


async def write_snapshot(conn: asyncpg.Connection) -> int | None:
    """Store the newest state if it is newer than the newest snapshot; its position, or None."""
    newest_snapshot: int = await conn.fetchval(Q.newest_snapshot_position, SCHEMA_VERSION)
    if await conn.fetchval(Q.latest_position) <= newest_snapshot:
        return None  # nothing happened since: no decoding, no folding
    state, _ = await load_state(conn)
    if state.position <= newest_snapshot:
        return None
    data = await asyncio.to_thread(encode_state, state)
    await conn.execute(Q.insert_snapshot, state.position, SCHEMA_VERSION, data)
    await conn.execute(Q.prune_snapshots, KEEP_SNAPSHOTS - 1)
    return state.position
