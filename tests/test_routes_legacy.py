"""Routes from before deployments existed: their `route.created` events (a provider and
an upstream model, no deployments) and their projected rows read as routes of one
deployment whose id is the route's."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from control_plane.api.route_views import read_route
from control_plane.store import EventStore
from shared.config import Settings
from shared.events import RouteCreated
from shared.migrate import migrate
from shared.routing import BreakerPolicy, RetryPolicy, Timeouts
from tests.support.database import drop_database, empty_database, with_db
from tests.support.stack import Stack

DEFAULT_TIMEOUTS = msgspec.to_builtins(Timeouts())


@pytest.fixture
async def store(control_plane: Stack) -> AsyncIterator[EventStore]:
    pool = await asyncpg.create_pool(control_plane.database_url, min_size=1, max_size=2)
    yield EventStore(pool, Settings().notify_channel)
    await pool.close()


async def test_an_older_route_event_reads_as_one_deployment(
    control_plane: Stack, store: EventStore
) -> None:
    provider = await control_plane.create_provider()
    route_id, model = str(uuid.uuid4()), "legacy-" + secrets.token_hex(3)
    older = RouteCreated(
        id=route_id, model=model, provider_id=provider["id"], upstream_model="old-upstream"
    )
    await store.append(f"route:{route_id}", lambda state: [older], actor="system:test")
    expected = {
        "id": route_id,  # the route's own id
        "provider_id": provider["id"],
        "upstream_model": "old-upstream",
        "weight": 1,
        "priority": 0,
        "rpm": None,
        "tpm": None,
        "timeouts": DEFAULT_TIMEOUTS,
        "continuation": None,
    }
    async with control_plane.admin() as admin:
        route = (await admin.get(f"/routes/{route_id}")).json()
        assert route["deployments"] == [expected]
        assert (route["version"], route["strategy"], route["tenant_ids"]) == (1, "weighted", None)
        state = (await admin.get("/state")).json()
        assert {r["model"]: r for r in state["routes"]}[model]["deployments"] == [expected]
        health = await admin.get(f"/deployments/{route_id}/health")
        assert health.json() == {"deployment_id": route_id, "route_id": route_id, "replicas": []}
        changed = await admin.patch(
            f"/routes/{route_id}/deployments/{route_id}",
            json={"weight": 4},
            headers={"if-match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json() == {**expected, "weight": 4}


async def test_the_oldest_event_json_folds_into_one_deployment(control_plane: Stack) -> None:
    """The payload exactly as the first releases wrote it, straight into the log."""
    provider = await control_plane.create_provider()
    route_id, model = str(uuid.uuid4()), "oldest-" + secrets.token_hex(3)
    data = {
        "id": route_id,
        "model": model,
        "provider_id": provider["id"],
        "upstream_model": "up",
        "tenant_ids": None,
    }
    conn = await asyncpg.connect(control_plane.database_url)
    try:
        await conn.execute(
            "INSERT INTO events (stream, stream_version, type, data, actor)"
            " VALUES ($1, 1, 'route.created', $2::jsonb, 'system:test')",
            f"route:{route_id}",
            json.dumps(data),
        )
    finally:
        await conn.close()
    async with control_plane.admin() as admin:
        state = (await admin.get("/state")).json()
    route = {r["model"]: r for r in state["routes"]}[model]
    assert [(d["id"], d["provider_id"], d["upstream_model"]) for d in route["deployments"]] == [
        (route_id, provider["id"], "up")
    ]


async def test_the_migration_gives_older_routes_their_deployment(
    pg_url: str,
) -> None:
    name = await empty_database(pg_url)
    url = with_db(pg_url, name)
    try:
        await asyncio.to_thread(migrate, url, "0005_usage_hourly")
        provider_id, route_id = uuid.uuid4(), uuid.uuid4()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO providers (id, name, kind, base_url, created_at)"
                " VALUES ($1, 'p', 'openai', 'http://127.0.0.1:9/v1', now())",
                provider_id,
            )
            await conn.execute(
                "INSERT INTO routes (id, model, provider_id, upstream_model, created_at)"
                " VALUES ($1, 'old-model', $2, 'old-up', now())",
                route_id,
                provider_id,
            )
            await conn.executemany(
                "INSERT INTO events (stream, stream_version, type, data, actor)"
                " VALUES ($1, $2, $3, '{}'::jsonb, 'system:test')",
                [
                    (f"provider:{provider_id}", 1, "provider.created"),
                    (f"provider:{provider_id}", 2, "provider.price_set"),
                    (f"route:{route_id}", 1, "route.created"),
                ],
            )
        finally:
            await conn.close()
        await asyncio.to_thread(migrate, url)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            route = await read_route(pool, str(route_id))
            provider_version = await pool.fetchval(
                "SELECT version FROM providers WHERE id = $1", provider_id
            )
        finally:
            await pool.close()
    finally:
        await drop_database(pg_url, name)
    [deployment] = route.deployments
    assert (deployment.id, deployment.provider_id, deployment.upstream_model) == (
        str(route_id),
        str(provider_id),
        "old-up",
    )
    assert deployment.timeouts == Timeouts()
    assert (route.retry, route.breaker, route.strategy) == (
        RetryPolicy(),
        BreakerPolicy(),
        "weighted",
    )
    assert route.version == 1
    assert route.updated_at == route.created_at
    assert provider_version == 2  # its price event counts
