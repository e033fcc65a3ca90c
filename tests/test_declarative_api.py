"""The configuration as one document through the admin API: the plan of creations,
changes and removals; an apply that makes it so in one transaction, and a second that
finds nothing to do; a plan made stale by another change is not applied."""

from __future__ import annotations

from typing import Any

from tests.support import declarative
from tests.support.declarative import Doc, apply, event_count, fields, minimal, names, plan
from tests.support.stack import NOWHERE, Stack

fresh = declarative.fresh


async def _export(stack: Stack) -> Doc:
    async with stack.admin() as admin:
        resp = await admin.get("/config")
    assert resp.status_code == 200, resp.text
    exported: Doc = resp.json()
    return exported


async def _applied(stack: Stack, doc: Doc) -> dict[str, Any]:
    resp = await apply(stack, doc)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def test_a_plan_on_an_empty_database_creates_everything_and_writes_nothing(
    fresh: Stack,
) -> None:
    planned = await plan(fresh, minimal())
    assert planned.status_code == 200, planned.text
    changes = planned.json()["changes"]
    assert names(changes) == [
        ("create", "tenant", "acme"),
        ("create", "provider", "primary"),
        ("create", "provider", "backup"),
        ("create", "route", "chat"),
        ("create", "deployment", "chat: primary/gpt-a"),
        ("create", "deployment", "chat: backup/gpt-b"),
        ("create", "price", "chat"),
    ]
    assert fields(changes, "tenant", "acme") == {
        "policy.rpm": (None, 60),
        "policy.models": (None, ["chat"]),
    }
    assert fields(changes, "provider", "primary") == {
        "kind": (None, "openai"),
        "base_url": (None, NOWHERE + "/v1"),
        "api_key": (None, "(secret)"),
    }
    assert fields(changes, "deployment", "chat: primary/gpt-a") == {"weight": (None, 3)}
    # tenant + its policy, two providers, the route (with its deployments), the price
    assert planned.json()["events"] == 6
    assert await event_count(fresh) == 0

    applied = await apply(fresh, minimal(), planned.json()["digest"])
    assert applied.status_code == 200, applied.text
    assert applied.json()["changes"] == changes
    assert applied.json()["events"] == 6
    assert await event_count(fresh) == 6
    async with fresh.admin() as admin:
        (route,) = (await admin.get("/routes")).json()
        (tenant,) = (await admin.get("/tenants")).json()
        providers = {p["name"]: p for p in (await admin.get("/providers")).json()}
        policy = (await admin.get(f"/tenants/{tenant['id']}/policy")).json()
    assert route["tenant_ids"] == [tenant["id"]]
    assert [(d["provider_id"], d["upstream_model"], d["weight"]) for d in route["deployments"]] == [
        (providers["primary"]["id"], "gpt-a", 3),
        (providers["backup"]["id"], "gpt-b", 1),
    ]
    assert providers["primary"]["has_api_key"]
    assert not providers["backup"]["has_api_key"]
    assert (policy["rpm"], policy["models"]) == (60, ["chat"])


async def test_a_second_apply_appends_no_event(fresh: Stack) -> None:
    first = await _applied(fresh, minimal())
    written = await event_count(fresh)
    assert written == first["events"] > 0
    again = await _applied(fresh, minimal())  # the same key given again: not a change
    assert (again["changes"], again["events"], again["position"]) == ([], 0, None)
    assert await event_count(fresh) == written
    # nor does the document the state exports, though it leaves defaults out
    exported = await _export(fresh)
    exported["providers"][1]["api_key"] = "sk-one"  # what apply reads from the variable
    assert (await _applied(fresh, exported))["events"] == 0
    assert await event_count(fresh) == written


async def test_changes_and_removals_are_planned_with_their_fields(fresh: Stack) -> None:
    before = minimal()
    before["tenants"].append({"name": "leaving"})
    before["providers"].append({"name": "old", "kind": "openai", "base_url": NOWHERE})
    before["routes"].append(
        {"model": "old-chat", "deployments": [{"provider": "old", "upstream_model": "x"}]}
    )
    await _applied(fresh, before)
    async with fresh.admin() as admin:
        tenants = {t["name"]: t["id"] for t in (await admin.get("/tenants")).json()}
        key = await admin.post(f"/tenants/{tenants['leaving']}/keys", json={"name": "ci"})
        assert key.status_code == 201, key.text
    fresh.handed_out.append(key.json()["key"])

    after = minimal()
    after["tenants"][0]["policy"] = {"rpm": 120, "models": ["chat"], "budget_usd": 5}
    after["providers"][0]["api_key"] = "sk-rotated"
    after["providers"][1]["base_url"] = NOWHERE + "/v3"
    route = after["routes"][0]
    route["strategy"] = "least_in_flight"
    route["retry"] = {"max_attempts": 2}
    route["deployments"][0]["weight"] = 1
    route["deployments"][1] = {"provider": "primary", "upstream_model": "gpt-c"}
    after["prices"]["models"][0]["output_per_million"] = 3
    position = await fresh.last_position()
    planned = await plan(fresh, after)
    assert planned.status_code == 200, planned.text
    changes = planned.json()["changes"]
    assert names(changes) == [
        ("change", "tenant", "acme"),
        ("change", "provider", "primary"),
        ("change", "provider", "backup"),
        ("remove", "route", "old-chat"),  # before the provider it uses
        ("change", "route", "chat"),
        ("remove", "deployment", "chat: backup/gpt-b"),
        ("change", "deployment", "chat: primary/gpt-a"),
        ("create", "deployment", "chat: primary/gpt-c"),
        ("remove", "provider", "old"),
        ("remove", "tenant", "leaving"),
        ("change", "price", "chat"),
    ]
    assert fields(changes, "tenant", "acme") == {
        "policy.rpm": (60, 120),
        "policy.budget_usd": (None, 5.0),
        "policy.budget_period": (None, "month"),
    }
    assert fields(changes, "provider", "primary") == {"api_key": ("(secret)", "(new secret)")}
    assert fields(changes, "provider", "backup") == {"base_url": (NOWHERE + "/v2", NOWHERE + "/v3")}
    assert fields(changes, "route", "chat") == {
        "strategy": ("weighted", "least_in_flight"),
        "retry.max_attempts": (3, 2),
    }
    assert fields(changes, "deployment", "chat: primary/gpt-a") == {"weight": (3, 1)}
    assert fields(changes, "tenant", "leaving") == {"keys": (1, None)}
    assert fields(changes, "price", "chat") == {"output_per_million": (2.0, 3.0)}
    assert await fresh.last_position() == position

    applied = await _applied(fresh, after)
    assert applied["changes"] == changes
    exported = await _export(fresh)
    assert [t["name"] for t in exported["tenants"]] == ["acme"]
    assert [p["name"] for p in exported["providers"]] == ["backup", "primary"]
    (chat,) = exported["routes"]
    assert chat["strategy"] == "least_in_flight"
    assert chat["retry"] == {"max_attempts": 2}
    assert chat["deployments"] == [
        {"provider": "primary", "upstream_model": "gpt-a"},
        {"provider": "primary", "upstream_model": "gpt-c"},
    ]
    assert (await _applied(fresh, after))["events"] == 0


async def test_an_existing_provider_given_no_secret_keeps_its_own(fresh: Stack) -> None:
    await _applied(fresh, minimal())
    doc = minimal()
    del doc["providers"][0]["api_key"]
    planned = await plan(fresh, doc)
    assert planned.json()["changes"] == [], planned.text
    async with fresh.admin() as admin:
        providers = {p["name"]: p for p in (await admin.get("/providers")).json()}
    assert providers["primary"]["has_api_key"]


async def test_a_stale_plan_is_not_applied(fresh: Stack) -> None:
    await _applied(fresh, minimal())
    doc = minimal()
    doc["routes"][0]["strategy"] = "lowest_latency"
    planned = (await plan(fresh, doc)).json()
    assert names(planned["changes"]) == [("change", "route", "chat")]
    async with fresh.admin() as admin:  # meanwhile, someone adds a tenant
        made = await admin.post("/tenants", json={"name": "meanwhile"})
        assert made.status_code == 201, made.text
    written = await event_count(fresh)

    stale = await apply(fresh, doc, planned["digest"])
    assert stale.status_code == 409, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    assert await event_count(fresh) == written
    replanned = (await plan(fresh, doc)).json()
    assert names(replanned["changes"]) == [
        ("change", "route", "chat"),
        ("remove", "tenant", "meanwhile"),
    ]
    assert (await apply(fresh, doc, replanned["digest"])).status_code == 200
    assert await event_count(fresh) == written + 2
