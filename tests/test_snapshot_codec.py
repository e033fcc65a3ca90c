"""Snapshot encoding: round trips, determinism, versions, and the snapshot store."""

from __future__ import annotations

import asyncpg
import msgspec
import pytest

from shared.reducer import fold
from shared.snapshot_codec import (
    UnknownSchemaVersion,
    decode_state,
    encode_state,
    encode_state_cooperatively,
    state_digest,
)
from shared.snapshots import load_state, write_snapshot
from shared.state import SCHEMA_VERSION, Provider, State
from tests.test_reducer import BASE, _events


def test_round_trip_rebuilds_the_indexes() -> None:
    state = fold(State(), _events(*BASE))
    again = decode_state(encode_state(state))
    assert again == state
    assert again.key_by_hash("h2") == state.key_by_hash("h2")
    assert again.route_for_model("private") == state.route_for_model("private")
    assert state_digest(again) == state_digest(state)


def test_digest_is_order_independent_and_content_sensitive() -> None:
    forward = fold(State(), _events(*BASE))
    # the same content reached by inserting in another order
    shuffled = msgspec.structs.replace(
        forward,
        tenants=type(forward.tenants)(reversed(list(forward.tenants.items()))),
        keys=type(forward.keys)(reversed(list(forward.keys.items()))),
    )
    assert state_digest(shuffled) == state_digest(forward)
    fewer = fold(State(), _events(*BASE[:-1]))
    assert state_digest(fewer) != state_digest(forward)


def test_unknown_schema_version_is_refused() -> None:
    data = msgspec.msgpack.encode({"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(UnknownSchemaVersion):
        decode_state(data)


async def test_store_skips_unreadable_snapshots_and_writes_only_when_behind(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await write_snapshot(conn) is None  # empty log: nothing to store
        for event in _events(*BASE):
            await conn.execute(
                "INSERT INTO events (stream, stream_version, type, data, actor)"
                " VALUES ($1, $2, $3, $4::jsonb, 'system:test')",
                f"s{event.position}",
                1,
                event.type,
                msgspec.json.encode(event.data()).decode(),
            )
        written = await write_snapshot(conn)
        assert written == len(BASE)
        assert await write_snapshot(conn) is None  # nothing new since
        good, refused = await load_state(conn)
        assert refused == 0
        assert good.event_count == len(BASE)
        # a newer snapshot that cannot be read (corrupt, known version) is skipped
        await conn.execute(
            "INSERT INTO snapshots (position, schema_version, data) VALUES ($1, $2, $3)",
            written + 1000,
            SCHEMA_VERSION,
            b"\x93garbage",
        )
        again, refused = await load_state(conn)
        assert refused == 1
        assert state_digest(again) == state_digest(good)
        # time travel to before the snapshot folds from the log
        earlier, _ = await load_state(conn, at=2)
        assert earlier.position == 2
        assert set(earlier.tenants) == {"t1", "t2"}
    finally:
        await conn.close()


async def test_cooperative_encoding_decodes_to_the_same_state() -> None:
    state = fold(State(), _events(*BASE))
    assert decode_state(await encode_state_cooperatively(state)) == state


def test_snapshots_keep_provider_options() -> None:
    state = fold(State(), _events(*BASE))
    assert decode_state(encode_state(state)).providers["p2"].option("region") == "us-east-1"


def test_a_provider_record_without_options_decodes() -> None:
    """The record as schema 2 wrote it: five fields, no options."""
    old = msgspec.msgpack.encode([["p1", "p", "openai", "http://x/v1", None]])
    [provider] = msgspec.msgpack.decode(old, type=list[Provider])
    assert provider == Provider("p1", "p", "openai", "http://x/v1", None, ())


async def test_a_snapshot_of_schema_2_is_folded_again_from_the_log(database_url: str) -> None:
    """A build that predates provider options may have written a version 2 snapshot
    without them: it is refused, and the state comes from the events."""
    conn = await asyncpg.connect(database_url)
    try:
        for event in _events(*BASE):
            await conn.execute(
                "INSERT INTO events (stream, stream_version, type, data, actor)"
                " VALUES ($1, $2, $3, $4::jsonb, 'system:test')",
                f"s{event.position}",
                1,
                event.type,
                msgspec.json.encode(event.data()).decode(),
            )
        full = fold(State(), _events(*BASE))
        lossy = msgspec.structs.replace(
            full,
            providers=full.providers.set(
                "p2", msgspec.structs.replace(full.providers["p2"], options=())
            ),
        )
        old = msgspec.msgpack.decode(encode_state(lossy))
        old["schema_version"] = 2
        await conn.execute(
            "INSERT INTO snapshots (position, schema_version, data) VALUES ($1, 2, $2)",
            full.position,
            msgspec.msgpack.encode(old),
        )
        state, refused = await load_state(conn)
        assert refused == 1
        assert state.providers["p2"].option("region") == "us-east-1"
        assert state_digest(state) == state_digest(full)
    finally:
        await conn.close()
