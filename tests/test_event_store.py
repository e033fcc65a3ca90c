"""The event store against a real PostgreSQL: optimistic concurrency, commit order,
projections and NOTIFY in the append transaction."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from control_plane.errors import NotFound, VersionConflict
from control_plane.jobs import Jobs
from control_plane.store import EventStore
from shared.event_log import catch_up, read_events_after
from shared.events import Payload, TenantCreated, TenantRenamed
from shared.state import State

CHANNEL = "sluice_events"


@pytest.fixture
async def store(database_url: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=20)
    yield EventStore(pool, CHANNEL)
    await pool.close()


def _create(tenant_id: str, name: str):  # type: ignore[no-untyped-def]
    def decide(state: State) -> list[Payload]:
        return [TenantCreated(id=tenant_id, name=name)]

    return decide


def _rename(tenant_id: str, name: str):  # type: ignore[no-untyped-def]
    def decide(state: State) -> list[Payload]:
        if tenant_id not in state.tenants:
            raise NotFound(tenant_id)
        return [TenantRenamed(id=tenant_id, name=name)]

    return decide


async def test_concurrent_appends_with_the_same_expected_version_one_wins(
    store: EventStore,
) -> None:
    tid = str(uuid.uuid4())
    stream = f"tenant:{tid}"
    await store.append(stream, _create(tid, "a"), actor="system:test", expected_version=0)
    results = await asyncio.gather(
        *(
            store.append(stream, _rename(tid, f"n{i}"), actor="system:test", expected_version=1)
            for i in range(10)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, list)]
    losers = [r for r in results if isinstance(r, VersionConflict)]
    assert len(winners) == 1, results
    assert len(losers) == 9, results
    rows = await store.pool.fetch("SELECT stream_version FROM events WHERE stream = $1", stream)
    assert sorted(r["stream_version"] for r in rows) == [1, 2]


async def test_new_stream_conflicts_when_it_exists(store: EventStore) -> None:
    tid = str(uuid.uuid4())
    await store.append(f"tenant:{tid}", _create(tid, "a"), actor="system:test", expected_version=0)
    with pytest.raises(VersionConflict):
        await store.append(
            f"tenant:{tid}", _create(tid, "b"), actor="system:test", expected_version=0
        )


async def test_a_rejected_command_writes_nothing(store: EventStore) -> None:
    with pytest.raises(NotFound):
        await store.append("tenant:x", _rename(str(uuid.uuid4()), "n"), actor="system:test")
    assert await store.pool.fetchval("SELECT count(*) FROM events") == 0


async def test_positions_become_visible_in_commit_order(store: EventStore) -> None:
    """A reader that repeatedly asks for `position > last` never skips an event
    while many writers append concurrently."""
    writers, per_writer = 8, 25
    seen: list[int] = []
    done = asyncio.Event()

    async def reader() -> None:
        async with store.pool.acquire() as conn:
            last = 0
            while True:
                finished = done.is_set()
                for event in await read_events_after(conn, last):
                    seen.append(event.position)
                    last = event.position
                if finished:
                    return
                await asyncio.sleep(0)

    async def writer(w: int) -> None:
        for i in range(per_writer):
            tid = str(uuid.uuid4())
            await store.append(f"tenant:{tid}", _create(tid, f"w{w}-{i}"), actor="system:test")

    read = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    done.set()
    await read
    all_positions = [r["position"] for r in await store.pool.fetch("SELECT position FROM events")]
    assert len(all_positions) == writers * per_writer
    assert seen == sorted(all_positions)  # every event, once, in order


async def test_projection_and_notify_share_the_append_transaction(
    store: EventStore, database_url: str
) -> None:
    listener = await asyncpg.connect(database_url)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(CHANNEL, lambda *args: payloads.put_nowait(args[3]))
    try:
        tid = str(uuid.uuid4())
        events = await store.append(f"tenant:{tid}", _create(tid, "proj"), actor="token:alice")
        payload = await asyncio.wait_for(payloads.get(), 2)
        assert payload == str(events[-1].position)  # the doorbell carries the position only
        row = await store.pool.fetchrow(
            "SELECT name, version FROM tenants WHERE id = $1", uuid.UUID(tid)
        )
        assert (row["name"], row["version"]) == ("proj", 1)
        async with store.pool.acquire() as conn:
            state = await catch_up(conn, State())
        assert state.tenants[tid].name == "proj"
        assert state.position == events[-1].position
    finally:
        await listener.close()


async def test_a_failing_projection_rolls_back_the_event_and_its_notify(
    store: EventStore, database_url: str
) -> None:
    tid = str(uuid.uuid4())
    # a row in the way: the projection's INSERT will fail inside the append transaction
    await store.pool.execute(
        "INSERT INTO tenants (id, name, version, created_at, updated_at)"
        " VALUES ($1, 'squatter', 1, now(), now())",
        uuid.UUID(tid),
    )
    listener = await asyncpg.connect(database_url)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(CHANNEL, lambda *args: payloads.put_nowait(args[3]))
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await store.append(f"tenant:{tid}", _create(tid, "blocked"), actor="system:test")
        assert await store.pool.fetchval("SELECT count(*) FROM events") == 0
        other = str(uuid.uuid4())
        events = await store.append(f"tenant:{other}", _create(other, "fine"), actor="system:test")
        # the first notification to arrive is the second append's: the failed one sent none
        assert await asyncio.wait_for(payloads.get(), 2) == str(events[-1].position)
        assert payloads.empty()
    finally:
        await listener.close()


async def test_every_n_events_a_snapshot_job_is_queued_with_the_append(
    database_url: str,
) -> None:
    jobs = Jobs(database_url, snapshot_every_events=3, snapshot_every_seconds=3600)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    store = EventStore(pool, CHANNEL, in_transaction=jobs.in_transaction)
    queued = "SELECT count(*) FROM pgqueuer WHERE entrypoint = 'sluice.snapshot'"
    try:
        counts = []
        for i in range(7):
            tid = str(uuid.uuid4())
            await store.append(f"tenant:{tid}", _create(tid, f"n{i}"), actor="system:test")
            counts.append(await pool.fetchval(queued))
        # positions 1..7: the appends at 3 and 6 cross the boundary; one dedupe key
        assert counts == [0, 0, 1, 1, 1, 1, 1]
    finally:
        await pool.close()
