"""Routes with several deployments through the admin API: create, read, change,
deployments one at a time, versions and If-Match, and the health the data planes
report. Refusals: tests/test_routes_validation.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import get_args

import asyncpg

from control_plane.api.route_inputs import Strategy
from shared.routing import STRATEGIES
from tests.support import routes_admin
from tests.support.problems import assert_refused, nothing_appended
from tests.support.routes_admin import Body, create_route, deployment_body, new_model
from tests.support.stack import Stack

# module-scoped: one provider each for the module's routes
provider, other_provider = routes_admin.provider, routes_admin.other_provider


def test_the_strategies_accepted_are_the_strategies_known() -> None:
    assert set(get_args(Strategy)) == set(STRATEGIES)


async def test_a_route_with_two_deployments_round_trips(
    control_plane: Stack, provider: Body, other_provider: Body
) -> None:
    tenant = await control_plane.create_tenant()
    model = new_model()
    body = {
        "model": model,
        "strategy": "least_in_flight",
        "deployments": [
            deployment_body(
                provider["id"],
                "gpt-primary",
                weight=3,
                rpm=600,
                tpm=100_000,
                timeouts={"connect": 2, "first_token": 5},
                continuation=True,
            ),
            deployment_body(other_provider["id"], "gpt-backup", priority=1),
        ],
        "tenant_ids": [tenant["id"]],
        "retry": {"max_attempts": 2, "deadline": 20},
        "breaker": {"failures": 3, "ratio": 1},
        "continuation": True,
    }
    route, tag = await create_route(control_plane, body)
    assert tag == '"1"'
    assert route["version"] == 1
    assert route["model"] == model
    assert route["strategy"] == "least_in_flight"
    assert route["tenant_ids"] == [tenant["id"]]
    assert route["continuation"] is True
    assert route["context_fallback"] is None
    assert route["retry"] == {
        "max_attempts": 2,
        "deadline": 20,
        "backoff": 0.05,
        "max_backoff": 2.0,
        "max_retry_after": 10.0,
    }
    assert route["breaker"]["failures"] == 3
    assert route["breaker"]["ratio"] == 1
    assert route["breaker"]["window"] == 30.0  # the default
    first, second = route["deployments"]
    ids = [uuid.UUID(x) for x in (route["id"], first["id"], second["id"])]  # made by the server
    assert len(set(ids)) == 3
    assert first == {
        "id": first["id"],
        "provider_id": provider["id"],
        "upstream_model": "gpt-primary",
        "weight": 3,
        "priority": 0,
        "rpm": 600,
        "tpm": 100_000,
        "timeouts": {"connect": 2, "first_token": 5, "idle": 30, "response": 120, "total": 600},
        "continuation": True,
    }
    assert (second["provider_id"], second["upstream_model"]) == (other_provider["id"], "gpt-backup")
    assert (second["weight"], second["priority"], second["rpm"], second["continuation"]) == (
        1,
        1,
        None,
        None,
    )
    async with control_plane.admin() as admin:
        read = await admin.get(f"/routes/{route['id']}")
        listed = (await admin.get("/routes")).json()
        state = (await admin.get("/state")).json()
        events = (await admin.get("/events", params={"stream": f"route:{route['id']}"})).json()
    assert read.json() == route
    assert read.headers["etag"] == '"1"'
    assert route in listed
    in_state = {r["model"]: r for r in state["routes"]}[model]
    assert in_state["deployments"] == route["deployments"]
    assert (in_state["strategy"], in_state["retry"], in_state["breaker"]) == (
        route["strategy"],
        route["retry"],
        route["breaker"],
    )
    assert [e["type"] for e in events["data"]] == ["route.created"]
    assert [d["id"] for d in events["data"][0]["data"]["deployments"]] == [
        first["id"],
        second["id"],
    ]


async def test_the_older_shape_is_a_route_of_one_deployment(
    control_plane: Stack, provider: Body
) -> None:
    model = new_model()
    route, _ = await create_route(control_plane, {"model": model, "provider_id": provider["id"]})
    [deployment] = route["deployments"]
    assert deployment["id"] != route["id"]
    assert uuid.UUID(deployment["id"])
    assert (deployment["provider_id"], deployment["upstream_model"]) == (provider["id"], model)
    assert route["tenant_ids"] is None
    assert route["strategy"] == "weighted"
    stack_route = await control_plane.create_route(new_model(), provider["id"], "upstream-name")
    assert stack_route["deployments"][0]["upstream_model"] == "upstream-name"


async def test_route_settings_change_with_if_match(control_plane: Stack, provider: Body) -> None:
    tenants = [await control_plane.create_tenant() for _ in range(2)]
    fallback, _ = await create_route(
        control_plane, {"model": new_model(), "deployments": [deployment_body(provider["id"])]}
    )
    route, _ = await create_route(
        control_plane,
        {
            "model": new_model(),
            "deployments": [deployment_body(provider["id"])],
            "retry": {"deadline": 9},
        },
    )
    path = f"/routes/{route['id']}"
    async with control_plane.admin() as admin:
        changed = await admin.patch(
            path,
            json={
                "strategy": "lowest_latency",
                "retry": {"max_attempts": 5},
                "breaker": {"cooldown": 3},
                "context_fallback": fallback["model"],
                "tenant_ids": [tenants[1]["id"], tenants[0]["id"], tenants[1]["id"]],
            },
            headers={"if-match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
        assert changed.headers["etag"] == '"2"'
        now = changed.json()
        assert now["version"] == 2
        assert now["strategy"] == "lowest_latency"
        assert now["retry"]["max_attempts"] == 5
        assert now["retry"]["deadline"] == 9  # left out: kept
        assert now["breaker"]["cooldown"] == 3
        assert now["context_fallback"] == fallback["model"]
        assert now["tenant_ids"] == sorted(t["id"] for t in tenants)
        assert now["deployments"] == route["deployments"]
        assert now["created_at"] == route["created_at"]
        async with nothing_appended(control_plane):
            stale = await admin.patch(
                path, json={"continuation": True}, headers={"if-match": '"1"'}
            )
            assert_refused(stale, 409)
            assert "version 2" in stale.json()["detail"]
            same = await admin.patch(path, json={"strategy": "lowest_latency"})
            assert same.status_code == 200
            assert same.json()["version"] == 2  # nothing changed: no event
        cleared = await admin.patch(
            path, json={"tenant_ids": None, "context_fallback": None}, headers={"if-match": '"2"'}
        )
        assert cleared.status_code == 200
        assert (cleared.json()["tenant_ids"], cleared.json()["context_fallback"]) == (None, None)
        events = (await admin.get("/events", params={"stream": f"route:{route['id']}"})).json()
        assert [e["type"] for e in events["data"]] == [
            "route.changed",
            "route.changed",
            "route.created",
        ]
        full = events["data"][1]["data"]  # the whole settings, not just what changed
        assert full["retry"]["deadline"] == 9
        assert full["strategy"] == "lowest_latency"
        unknown = await admin.patch(f"/routes/{uuid.uuid4()}", json={"strategy": "weighted"})
        assert_refused(unknown, 404)


async def test_deployments_one_at_a_time(
    control_plane: Stack, provider: Body, other_provider: Body
) -> None:
    route, _ = await create_route(
        control_plane, {"model": new_model(), "deployments": [deployment_body(provider["id"])]}
    )
    [first] = route["deployments"]
    base = f"/routes/{route['id']}/deployments"
    async with control_plane.admin() as admin:
        added = await admin.post(
            base,
            json=deployment_body(other_provider["id"], "second", weight=2, timeouts={"idle": 4}),
            headers={"if-match": '"1"'},
        )
        assert added.status_code == 201, added.text
        assert added.headers["etag"] == '"2"'
        second = added.json()
        assert second["upstream_model"] == "second"
        assert second["timeouts"]["idle"] == 4
        assert second["timeouts"]["total"] == 600
        read = await admin.get(f"{base}/{second['id']}")
        assert (read.json(), read.headers["etag"]) == (second, '"2"')
        whole = (await admin.get(f"/routes/{route['id']}")).json()
        assert [d["id"] for d in whole["deployments"]] == [first["id"], second["id"]]
        assert whole["version"] == 2
        changed = await admin.patch(
            f"{base}/{second['id']}",
            json={"priority": 2, "rpm": 60, "timeouts": {"total": 30}, "continuation": False},
            headers={"if-match": '"2"'},
        )
        assert changed.status_code == 200, changed.text
        assert changed.headers["etag"] == '"3"'
        assert changed.json() == {
            **second,
            "priority": 2,
            "rpm": 60,
            "timeouts": {**second["timeouts"], "total": 30},
            "continuation": False,
        }
        cleared = await admin.patch(f"{base}/{second['id']}", json={"rpm": None})
        assert cleared.json()["rpm"] is None
        moved = await admin.patch(
            f"{base}/{second['id']}", json={"provider_id": provider["id"], "upstream_model": "m2"}
        )
        assert (moved.json()["provider_id"], moved.json()["upstream_model"]) == (
            provider["id"],
            "m2",
        )
        assert moved.headers["etag"] == '"5"'
        async with nothing_appended(control_plane):
            stale = await admin.patch(
                f"{base}/{second['id']}", json={"weight": 9}, headers={"if-match": '"3"'}
            )
            assert_refused(stale, 409)
            stale_delete = await admin.delete(f"{base}/{first['id']}", headers={"if-match": '"1"'})
            assert_refused(stale_delete, 409)
            assert_refused(await admin.get(f"{base}/{uuid.uuid4()}"), 404)
            assert_refused(await admin.patch(f"{base}/{uuid.uuid4()}", json={"weight": 2}), 404)
            assert_refused(await admin.delete(f"{base}/{uuid.uuid4()}"), 404)
            elsewhere = f"/routes/{uuid.uuid4()}/deployments"
            assert_refused(await admin.post(elsewhere, json=deployment_body(provider["id"])), 404)
        removed = await admin.delete(f"{base}/{first['id']}", headers={"if-match": '"5"'})
        assert removed.status_code == 204
        assert removed.headers["etag"] == '"6"'
        assert_refused(await admin.get(f"{base}/{first['id']}"), 404)
        async with nothing_appended(control_plane):
            last = await admin.delete(f"{base}/{second['id']}")
            assert_refused(last, 409)
            assert "last" in last.json()["detail"]
        whole = (await admin.get(f"/routes/{route['id']}")).json()
        assert [d["id"] for d in whole["deployments"]] == [second["id"]]
        events = (await admin.get("/events", params={"stream": f"route:{route['id']}"})).json()
        assert [e["type"] for e in events["data"]][:4] == [
            "deployment.removed",
            "deployment.changed",
            "deployment.changed",
            "deployment.changed",
        ]
        assert events["data"][1]["data"]["deployment"]["upstream_model"] == "m2"


async def test_concurrent_deployment_adds_with_one_version_one_wins(
    control_plane: Stack, provider: Body
) -> None:
    route, _ = await create_route(
        control_plane, {"model": new_model(), "deployments": [deployment_body(provider["id"])]}
    )
    async with control_plane.admin() as admin:
        results = await asyncio.gather(
            *(
                admin.post(
                    f"/routes/{route['id']}/deployments",
                    json=deployment_body(provider["id"], f"racer-{i}"),
                    headers={"if-match": '"1"'},
                )
                for i in range(4)
            )
        )
        assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
        whole = (await admin.get(f"/routes/{route['id']}")).json()
    assert len(whole["deployments"]) == 2


async def test_a_route_holds_at_most_64_deployments(control_plane: Stack, provider: Body) -> None:
    full = [deployment_body(provider["id"], f"up-{i}") for i in range(64)]
    route, _ = await create_route(control_plane, {"model": new_model(), "deployments": full})
    assert len(route["deployments"]) == 64
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        one_more = await admin.post(
            f"/routes/{route['id']}/deployments", json=deployment_body(provider["id"])
        )
        assert_refused(one_more, 409)


async def test_deleting_a_route(control_plane: Stack, provider: Body) -> None:
    route, _ = await create_route(
        control_plane, {"model": new_model(), "deployments": [deployment_body(provider["id"])]}
    )
    deployment = route["deployments"][0]
    async with control_plane.admin() as admin:
        assert_refused(
            await admin.delete(f"/routes/{route['id']}", headers={"if-match": '"7"'}), 409
        )
        assert (await admin.get(f"/deployments/{deployment['id']}/health")).status_code == 200
        assert (await admin.delete(f"/routes/{route['id']}")).status_code == 204
        assert_refused(await admin.get(f"/routes/{route['id']}"), 404)
        assert_refused(await admin.delete(f"/routes/{route['id']}"), 404)
        assert_refused(await admin.get(f"/deployments/{deployment['id']}/health"), 404)
        assert route["model"] not in {r["model"] for r in (await admin.get("/routes")).json()}
        # the model is free again
        again = await admin.post(
            "/routes", json={"model": route["model"], "provider_id": provider["id"]}
        )
        assert again.status_code == 201


async def test_deployment_health_from_the_replicas_reports(
    control_plane: Stack, provider: Body
) -> None:
    route, _ = await create_route(
        control_plane,
        {
            "model": new_model(),
            "deployments": [deployment_body(provider["id"]), deployment_body(provider["id"])],
        },
    )
    first, second = (d["id"] for d in route["deployments"])
    now = datetime.now(UTC)
    replicas = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    rows = [
        (first, replicas[0], "closed", 2, 310.5, 0, 120, 3, None, None, now),
        (
            first,
            replicas[1],
            "open",
            0,
            None,
            5,
            40,
            9,
            "upstream 503",
            now - timedelta(seconds=2),
            now,
        ),
        (
            first,
            replicas[2],
            "half_open",
            0,
            800.0,
            1,
            7,
            1,
            "timeout",
            now,
            now - timedelta(minutes=5),
        ),
        (second, replicas[0], "closed", 1, 90.0, 0, 10, 0, None, None, now),
    ]
    conn = await asyncpg.connect(control_plane.database_url)
    try:
        await conn.executemany(
            "INSERT INTO deployment_health (deployment_id, replica, route_id, state, in_flight,"
            " ttft_ms, consecutive_failures, requests, failures, last_error, last_error_at,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [(uuid.UUID(r[0]), r[1], uuid.UUID(route["id"]), *r[2:]) for r in rows],
        )
    finally:
        await conn.close()
    async with control_plane.admin() as admin:
        resp = await admin.get(f"/deployments/{first}/health")
        assert resp.status_code == 200, resp.text
        health = resp.json()
        assert (health["deployment_id"], health["route_id"]) == (first, route["id"])
        by_replica = {h["replica"]: h for h in health["replicas"]}
        # the third replica last reported five minutes ago: left out
        assert set(by_replica) == {str(replicas[0]), str(replicas[1])}
        closed, opened = by_replica[str(replicas[0])], by_replica[str(replicas[1])]
        assert (closed["state"], closed["in_flight"], closed["ttft_ms"]) == ("closed", 2, 310.5)
        assert (closed["requests"], closed["failures"], closed["last_error"]) == (120, 3, None)
        assert (opened["state"], opened["consecutive_failures"], opened["ttft_ms"]) == (
            "open",
            5,
            None,
        )
        assert opened["last_error"] == "upstream 503"
        assert datetime.fromisoformat(opened["last_error_at"]) == rows[1][9]
        assert datetime.fromisoformat(opened["updated_at"]) == now
        other = (await admin.get(f"/deployments/{second}/health")).json()
        assert [h["replica"] for h in other["replicas"]] == [str(replicas[0])]
        assert_refused(await admin.get(f"/deployments/{uuid.uuid4()}/health"), 404)
        removed = await admin.delete(f"/routes/{route['id']}/deployments/{second}")
        assert removed.status_code == 204
        assert_refused(await admin.get(f"/deployments/{second}/health"), 404)
