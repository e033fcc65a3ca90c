"""The audit log's filters and pages, and time travel through `/admin/v1/state`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.stack import Stack


async def _events(admin: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    resp = await admin.get("/events", params=params)
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


async def test_filters_combine_and_pages_follow_them(stack: Stack) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    tenants = [await stack.create_tenant() for _ in range(3)]
    for tenant in tenants:
        await stack.create_key(tenant["id"])
    async with stack.admin() as admin:
        keys = await _events(admin, type="key.created", since=start.isoformat())
        assert [e["data"]["tenant_id"] for e in keys["data"]] == [t["id"] for t in tenants[::-1]]
        assert {e["actor"] for e in keys["data"]} == {"admin:bootstrap"}
        assert (await _events(admin, actor="someone-else"))["data"] == []
        one = await _events(admin, stream=f"tenant:{tenants[1]['id']}", type="tenant.created")
        assert [e["data"]["name"] for e in one["data"]] == [tenants[1]["name"]]
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await _events(admin, since=future))["data"] == []
        middle = keys["data"][1]["created_at"]
        window = await _events(admin, type="key.created", since=start.isoformat(), until=middle)
        assert [e["position"] for e in window["data"]] == [keys["data"][2]["position"]]
        seen, before = [], None
        while True:
            params: dict[str, Any] = {"type": "key.created", "since": start.isoformat(), "limit": 2}
            if before is not None:
                params["before"] = before
            page = await _events(admin, **params)
            seen += [e["position"] for e in page["data"]]
            before = page["next_before"]
            if before is None:
                break
        assert seen == [e["position"] for e in keys["data"]]
        assert (
            await admin.get("/events", params={"since": "2026-01-01T00:00:00"})
        ).status_code == 400


async def test_state_shows_routes_and_providers_without_keys(stack: Stack) -> None:
    provider = await stack.create_provider()
    tenant = await stack.create_tenant()
    route = await stack.create_route("travel-model", provider["id"], "up-1", [tenant["id"]])
    async with stack.admin() as admin:
        position = (await _events(admin, limit=1))["data"][0]["position"]
        assert (await admin.delete(f"/routes/{route['id']}")).status_code == 204
        then = (await admin.get("/state", params={"at": position})).json()
        now = (await admin.get("/state")).json()
    routes = {r["model"]: r for r in then["routes"]}
    assert routes["travel-model"]["tenant_ids"] == [tenant["id"]]
    [deployment] = routes["travel-model"]["deployments"]
    assert (deployment["provider_id"], deployment["upstream_model"]) == (provider["id"], "up-1")
    assert deployment == route["deployments"][0]
    assert "travel-model" not in {r["model"] for r in now["routes"]}
    providers = {p["id"]: p for p in then["providers"]}
    assert providers[provider["id"]]["has_api_key"] is True
    assert stack.upstream_key not in str(then)
    assert "api_key_ciphertext" not in str(then)


async def test_state_at_a_position(stack: Stack) -> None:
    tenant = await stack.create_tenant("time-traveller")
    key = await stack.create_key(tenant["id"])
    async with stack.admin() as admin:
        created = await _events(admin, stream=f"key:{key['id']}")
        at_creation = created["data"][0]["position"]
        assert (await admin.delete(f"/keys/{key['id']}")).status_code == 204
        await admin.patch(f"/tenants/{tenant['id']}", json={"name": "renamed-traveller"})
        then = (await admin.get("/state", params={"at": at_creation})).json()
        now = (await admin.get("/state")).json()
        before_tenant = (await admin.get("/state", params={"at": at_creation - 2})).json()
        future = await admin.get("/state", params={"at": now["position"] + 100})
    assert then["position"] == at_creation
    assert key["id"] in [k["id"] for k in then["keys"]]
    assert key["id"] not in [k["id"] for k in now["keys"]]
    names = {t["id"]: t["name"] for t in then["tenants"]}
    assert names[tenant["id"]] == "time-traveller"
    assert {t["id"]: t["name"] for t in now["tenants"]}[tenant["id"]] == "renamed-traveller"
    assert tenant["id"] not in [t["id"] for t in before_tenant["tenants"]]
    assert now["event_count"] >= then["event_count"] + 2
    assert future.status_code == 422
    text = str(then) + str(now)
    assert key["key"] not in text
    assert "hash" not in then["keys"][0]


@pytest.mark.parametrize("at", ["-1", "x", "99999999999999999999"])
async def test_state_refuses_bad_positions(stack: Stack, at: str) -> None:
    async with stack.admin() as admin:
        resp = await admin.get("/state", params={"at": at})
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/problem+json"
