"""Policies and prices through the admin API: validation, round trips, the audit
log and time travel."""

from __future__ import annotations

import uuid

import pytest

from tests.support.stack import Stack


async def test_tenant_and_key_policies_round_trip(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    async with stack.admin() as admin:
        assert (await admin.get(f"/tenants/{tenant['id']}/policy")).status_code == 404
        put = await admin.put(
            f"/tenants/{tenant['id']}/policy",
            json={"rpm": 60, "models": ["demo-model"], "budget_usd": 1.5},
        )
        assert put.status_code == 200, put.text
        policy = put.json()
        assert policy["rpm"] == 60
        assert policy["models"] == ["demo-model"]
        assert policy["budget_period"] == "month"  # the default with a budget
        assert policy["tpm"] is None
        assert (await admin.get(f"/tenants/{tenant['id']}/policy")).json() == policy
        key_put = await admin.put(f"/keys/{key['id']}/policy", json={"rpm": 10, "max_tokens": 50})
        assert key_put.status_code == 200
        state = (await admin.get("/state")).json()
        mine = {(p["scope"], p["id"]): p for p in state["policies"]}
        assert mine[("tenant", tenant["id"])]["budget_usd"] == 1.5
        assert mine[("key", key["id"])]["max_tokens"] == 50
        events = (await admin.get("/events", params={"type": "policy.set", "limit": 2})).json()
        assert {e["data"]["id"] for e in events["data"]} == {tenant["id"], key["id"]}
        assert (await admin.delete(f"/keys/{key['id']}/policy")).status_code == 204
        assert (await admin.get(f"/keys/{key['id']}/policy")).status_code == 404
        assert (await admin.delete(f"/keys/{key['id']}/policy")).status_code == 404
        # revoking the key, deleting the tenant: their policies go with them
        assert (await admin.delete(f"/tenants/{tenant['id']}")).status_code == 204
        assert (await admin.get(f"/tenants/{tenant['id']}/policy")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"rpm": 0}, 400),
        ({"rpm": -5}, 400),
        ({"rpm": "many"}, 400),
        ({"budget_usd": -1}, 400),
        ({"budget_period": "week", "budget_usd": 1}, 400),
        ({"budget_period": "day"}, 422),
        ({"budget_usd": 1, "soft_budget_usd": 2}, 422),
        ({"models": ["has space"]}, 400),
        ({"surprise": 1}, 400),
    ],
)
async def test_bad_policies_are_refused(stack: Stack, body: dict[str, object], status: int) -> None:
    tenant = await stack.create_tenant()
    async with stack.admin() as admin:
        resp = await admin.put(f"/tenants/{tenant['id']}/policy", json=body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"


async def test_policies_for_unknown_owners(stack: Stack) -> None:
    async with stack.admin() as admin:
        for path in (f"/tenants/{uuid.uuid4()}/policy", f"/keys/{uuid.uuid4()}/policy"):
            assert (await admin.put(path, json={"rpm": 1})).status_code == 404
            assert (await admin.get(path)).status_code == 404
            assert (await admin.delete(path)).status_code == 404


async def test_prices(stack: Stack) -> None:
    provider = await stack.create_provider()
    async with stack.admin() as admin:
        put = await admin.put(
            "/prices/priced-model", json={"input_per_million": 2.5, "output_per_million": 10}
        )
        assert put.status_code == 200, put.text
        assert put.json()["output_per_million"] == 10
        assert "priced-model" in [p["model"] for p in (await admin.get("/prices")).json()]
        assert (await admin.get("/prices/unpriced")).status_code == 404
        bad = await admin.put("/prices/priced-model", json={"input_per_million": -1})
        assert bad.status_code == 400
        default = await admin.put(
            f"/providers/{provider['id']}/price",
            json={"input_per_million": 1, "output_per_million": 2},
        )
        assert default.status_code == 200
        shown = (await admin.get(f"/providers/{provider['id']}")).json()
        assert (shown["input_per_million"], shown["output_per_million"]) == (1, 2)
        assert (await admin.delete("/prices/priced-model")).status_code == 204
        assert (await admin.get("/prices/priced-model")).status_code == 404
        unknown = await admin.put(
            f"/providers/{uuid.uuid4()}/price",
            json={"input_per_million": 1, "output_per_million": 1},
        )
        assert unknown.status_code == 404


async def test_a_tenant_etag_follows_its_policy_changes(stack: Stack) -> None:
    """A policy change is on the tenant's stream: the tenant's ETag says so, and the
    version it names is the one `If-Match` is checked against."""
    async with stack.admin() as admin:
        tenant = await admin.post("/tenants", json={"name": "etag-" + uuid.uuid4().hex[:6]})
        tid = tenant.json()["id"]
        assert tenant.headers["etag"] == '"1"'
        set_ = await admin.put(f"/tenants/{tid}/policy", json={"rpm": 10})
        assert set_.status_code == 200, set_.text
        read = await admin.get(f"/tenants/{tid}")
        assert read.headers["etag"] == '"2"'
        assert read.json()["version"] == 2
        stale = await admin.patch(
            f"/tenants/{tid}", json={"name": "renamed-" + tid[:6]}, headers={"if-match": '"1"'}
        )
        assert stale.status_code == 409
        cleared = await admin.delete(f"/tenants/{tid}/policy")
        assert cleared.status_code == 204
        read = await admin.get(f"/tenants/{tid}")
        assert read.headers["etag"] == '"3"'
        gone = await admin.delete(f"/tenants/{tid}", headers={"if-match": read.headers["etag"]})
        assert gone.status_code == 204, gone.text
