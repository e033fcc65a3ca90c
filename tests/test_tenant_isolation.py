"""Tenants are isolated from each other on the admin API: a tenant's admin reads,
lists, changes and learns of nothing of another tenant's, cannot raise its own
limits or touch the platform's objects; viewers change nothing; and a token stops
working the moment it is revoked or its tenant deleted."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.authz import all_events, as_token, create_token
from tests.support.authz_calls import random_id, without_ids
from tests.support.problems import assert_refused, nothing_appended
from tests.support.stack import Stack

MODEL = "isolation-model"


@dataclass
class Tenants:
    a: str
    b: str
    a_keys: list[str]
    b_keys: list[str]
    admin_a: str  # the secrets of named tokens
    viewer_a: str
    viewer: str  # platform-wide


async def _chat(stack: Stack, key: str) -> None:
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
        resp = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )
    assert resp.status_code == 200, resp.text


async def _until_usage_of(stack: Stack, tenant_ids: set[str], within: float = 20) -> None:
    deadline = time.monotonic() + within
    async with stack.admin() as admin:
        while True:
            report = await admin.get("/usage", params={"group_by": "tenant"})
            seen = {row["tenant_id"] for row in report.json()["data"]}
            if tenant_ids <= seen:
                return
            assert time.monotonic() < deadline, f"no usage of {tenant_ids - seen} recorded"
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def tenants(stack: Stack) -> Tenants:
    """Tenants A and B, with keys, policies and usage (real requests through a data plane)."""
    provider = await stack.create_provider()
    await stack.create_route(MODEL, provider["id"], "fake-1")
    ids, keys = {}, {}
    async with stack.admin() as admin:
        for letter in "AB":
            tenant = await stack.create_tenant()
            created = [await stack.create_key(tenant["id"]) for _ in range(2)]
            ids[letter], keys[letter] = tenant["id"], [k["id"] for k in created]
            put = await admin.put(f"/tenants/{tenant['id']}/policy", json={"rpm": 100})
            assert put.status_code == 200, put.text
            put = await admin.put(f"/keys/{created[0]['id']}/policy", json={"rpm": 10})
            assert put.status_code == 200, put.text
            await stack.until_model(created[0]["key"], MODEL)
            await _chat(stack, created[0]["key"])
    await _until_usage_of(stack, set(ids.values()))
    admin_a = await create_token(stack, "tenant_admin", ids["A"])
    viewer_a = await create_token(stack, "viewer", ids["A"])
    viewer = await create_token(stack, "viewer")
    return Tenants(
        ids["A"],
        ids["B"],
        keys["A"],
        keys["B"],
        admin_a["token"],
        viewer_a["token"],
        viewer["token"],
    )


def _mentions(item: Any, ids: list[str]) -> list[str]:
    text = json.dumps(item)
    return [i for i in ids if i in text]


async def _not_found_like_nothing(
    client: httpx.AsyncClient, method: str, path: str, hidden: str, body: Any = None
) -> None:
    """`path` (naming `hidden`) answers exactly as the same path naming nothing."""
    seen = await client.request(method, path, json=body)
    unknown = random_id()
    nothing = await client.request(method, path.replace(hidden, unknown), json=body)
    assert_refused(seen, 404)
    assert_refused(nothing, 404)
    assert without_ids(seen.json(), hidden) == without_ids(nothing.json(), unknown)


async def test_a_tenant_admin_cannot_see_or_change_another_tenants_things(
    stack: Stack, tenants: Tenants
) -> None:
    b, kb = tenants.b, tenants.b_keys[0]
    async with as_token(stack, tenants.admin_a) as client, nothing_appended(stack):
        for path, hidden in (
            (f"/tenants/{b}", b),
            (f"/tenants/{b}/keys", b),
            (f"/tenants/{b}/policy", b),
            (f"/keys/{kb}", kb),
            (f"/keys/{kb}/policy", kb),
        ):
            await _not_found_like_nothing(client, "GET", path, hidden)
        await _not_found_like_nothing(client, "POST", f"/tenants/{b}/keys", b, {"name": "x"})
        await _not_found_like_nothing(client, "PUT", f"/keys/{kb}/policy", kb, {"rpm": 1000})
        await _not_found_like_nothing(client, "DELETE", f"/keys/{kb}/policy", kb)
        await _not_found_like_nothing(client, "DELETE", f"/keys/{kb}", kb)
        await _not_found_like_nothing(client, "PATCH", f"/tenants/{b}", b, {"name": "mine"})
        await _not_found_like_nothing(client, "DELETE", f"/tenants/{b}", b)
    async with stack.admin() as admin:
        key = (await admin.get(f"/keys/{kb}")).json()
        assert key["revoked_at"] is None
        assert (await admin.get(f"/keys/{kb}/policy")).json()["rpm"] == 10


async def test_a_tenant_admin_lists_only_its_own(stack: Stack, tenants: Tenants) -> None:
    async with as_token(stack, tenants.admin_a) as client:
        listed = (await client.get("/tenants", params={"limit": 1000})).json()
        assert [t["id"] for t in listed] == [tenants.a]
        usage = await client.get("/usage", params={"group_by": "tenant,key"})
        assert usage.status_code == 200, usage.text
        rows = usage.json()["data"]
        assert {r["tenant_id"] for r in rows} == {tenants.a}
        assert {r["key_id"] for r in rows} <= set(tenants.a_keys)
        for params in ({"tenant_id": tenants.b}, {"key_id": tenants.b_keys[0]}):
            asked = await client.get("/usage", params={"group_by": "tenant,key", **params})
            assert asked.status_code == 200, asked.text
            assert asked.json()["data"] == []


async def test_another_tenants_events_are_not_in_the_audit_log(
    stack: Stack, tenants: Tenants
) -> None:
    b_ids = [tenants.b, *tenants.b_keys]
    async with stack.admin() as admin:
        everything = await all_events(admin)
    b_positions = [e["position"] for e in everything if _mentions(e, b_ids)]
    assert b_positions, "the log holds events of B to hide"
    async with as_token(stack, tenants.admin_a) as client:
        mine = await all_events(client)
        assert mine
        assert not [e for e in mine if _mentions(e, b_ids)]
        assert any(e["type"] == "key.created" for e in mine)
        for stream in (f"tenant:{tenants.b}", f"key:{tenants.b_keys[0]}"):
            assert await all_events(client, stream=stream) == []
        for type_ in ("tenant.created", "key.created", "policy.set"):
            typed = await all_events(client, type=type_)
            assert typed
            assert not [e for e in typed if _mentions(e, b_ids)]
        # a page at a time, and pages that start at or just after B's events
        paged = await _page_by_page(client)
        assert [e["position"] for e in paged] == [e["position"] for e in mine]
        for position in b_positions:
            for before in (position, position + 1):
                page = await client.get("/events", params={"before": before, "limit": 5})
                assert page.status_code == 200, page.text
                shown = page.json()["data"]
                assert not [e for e in shown if _mentions(e, b_ids)]
                assert all(e["position"] < before for e in shown)


async def _page_by_page(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    params: dict[str, int] = {"limit": 2}
    while True:
        page = (await client.get("/events", params=params)).json()
        events += page["data"]
        if page["next_before"] is None:
            return events
        params["before"] = page["next_before"]


async def test_a_tenant_admin_cannot_raise_its_own_limits(stack: Stack, tenants: Tenants) -> None:
    a = tenants.a
    async with as_token(stack, tenants.admin_a) as client, nothing_appended(stack):
        assert (await client.get(f"/tenants/{a}/policy")).json()["rpm"] == 100
        assert_refused(await client.put(f"/tenants/{a}/policy", json={"rpm": 10**6}), 403)
        assert_refused(await client.delete(f"/tenants/{a}/policy"), 403)
        assert_refused(await client.patch(f"/tenants/{a}", json={"name": "renamed"}), 403)
        assert_refused(await client.delete(f"/tenants/{a}"), 403)
    async with stack.admin() as admin:
        assert (await admin.get(f"/tenants/{a}/policy")).json()["rpm"] == 100


PLATFORM_WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/providers", {"name": "p", "base_url": "http://127.0.0.1:9/v1"}),
    ("POST", "/routes", {"model": "m", "provider_id": random_id(), "upstream_model": "u"}),
    ("PUT", f"/prices/{MODEL}", {"input_per_million": 0, "output_per_million": 0}),
    ("DELETE", f"/prices/{MODEL}", None),
    ("POST", "/admin-tokens", {"name": "mine", "role": "platform_admin"}),
    ("POST", "/tenants", {"name": "another"}),
]


async def _platform_objects(stack: Stack) -> list[tuple[str, str, Any]]:
    """Writes on the platform's objects, and reads of them."""
    async with stack.admin() as admin:
        provider = (await admin.get("/providers")).json()[0]["id"]
        route = next(r for r in (await admin.get("/routes")).json() if r["model"] == MODEL)
        token = (await admin.get("/admin-tokens")).json()[0]["id"]
    return [
        *PLATFORM_WRITES,
        ("PATCH", f"/providers/{provider}", {"name": "mine"}),
        ("DELETE", f"/providers/{provider}", None),
        ("PUT", f"/providers/{provider}/price", {"input_per_million": 0, "output_per_million": 0}),
        ("PATCH", f"/routes/{route['id']}", {"strategy": "least_in_flight"}),
        ("DELETE", f"/routes/{route['id']}", None),
        ("DELETE", f"/admin-tokens/{token}", None),
    ]


async def test_a_tenant_admin_cannot_touch_the_platform(stack: Stack, tenants: Tenants) -> None:
    writes = await _platform_objects(stack)
    reads = ["/providers", "/routes", "/prices", "/admin-tokens", "/state"]
    async with as_token(stack, tenants.admin_a) as client, nothing_appended(stack):
        for method, path, body in writes:
            assert_refused(await client.request(method, path, json=body), 403)
        for path in reads:
            assert_refused(await client.get(path), 403)


async def test_a_viewer_reads_everything_and_changes_nothing(
    stack: Stack, tenants: Tenants
) -> None:
    writes = await _platform_objects(stack)
    for tenant, keys in ((tenants.a, tenants.a_keys), (tenants.b, tenants.b_keys)):
        writes += [
            ("POST", f"/tenants/{tenant}/keys", {"name": "x"}),
            ("PUT", f"/tenants/{tenant}/policy", {"rpm": 1}),
            ("DELETE", f"/tenants/{tenant}/policy", None),
            ("PATCH", f"/tenants/{tenant}", {"name": "viewed"}),
            ("DELETE", f"/tenants/{tenant}", None),
            ("PUT", f"/keys/{keys[0]}/policy", {"rpm": 1}),
            ("DELETE", f"/keys/{keys[0]}/policy", None),
            ("DELETE", f"/keys/{keys[1]}", None),
        ]
    async with as_token(stack, tenants.viewer) as client:
        async with nothing_appended(stack):
            for method, path, body in writes:
                assert_refused(await client.request(method, path, json=body), 403)
        for path in ("/providers", "/routes", "/prices", "/admin-tokens", "/state", "/usage"):
            assert (await client.get(path)).status_code == 200, path
        for tenant, keys in ((tenants.a, tenants.a_keys), (tenants.b, tenants.b_keys)):
            assert (await client.get(f"/tenants/{tenant}/policy")).json()["rpm"] == 100
            assert {k["id"] for k in (await client.get(f"/tenants/{tenant}/keys")).json()} == set(
                keys
            )
        listed = {t["id"] for t in (await client.get("/tenants", params={"limit": 1000})).json()}
        assert {tenants.a, tenants.b} <= listed
        streams = {e["stream"] for e in await all_events(client)}
        assert {f"tenant:{tenants.a}", f"tenant:{tenants.b}"} <= streams


async def test_a_tenant_viewer_reads_only_its_tenant(stack: Stack, tenants: Tenants) -> None:
    a, ka, kb = tenants.a, tenants.a_keys[0], tenants.b_keys[0]
    async with as_token(stack, tenants.viewer_a) as client:
        for path in (f"/tenants/{a}", f"/tenants/{a}/keys", f"/keys/{ka}", f"/keys/{ka}/policy"):
            assert (await client.get(path)).status_code == 200, path
        for path, hidden in ((f"/tenants/{tenants.b}", tenants.b), (f"/keys/{kb}", kb)):
            await _not_found_like_nothing(client, "GET", path, hidden)
        listed = (await client.get("/tenants", params={"limit": 1000})).json()
        assert [t["id"] for t in listed] == [a]
        usage = (await client.get("/usage", params={"group_by": "tenant"})).json()["data"]
        assert {r["tenant_id"] for r in usage} == {a}
        assert not [e for e in await all_events(client) if _mentions(e, [tenants.b, kb])]
        async with nothing_appended(stack):
            assert_refused(await client.post(f"/tenants/{a}/keys", json={"name": "x"}), 403)
            assert_refused(await client.put(f"/keys/{ka}/policy", json={"rpm": 1}), 403)
            assert_refused(await client.delete(f"/keys/{ka}"), 403)
            assert_refused(await client.get("/providers"), 403)


async def test_a_revoked_token_is_refused_at_once(stack: Stack) -> None:
    token = await create_token(stack, "platform_admin")
    async with as_token(stack, token["token"]) as client:
        assert (await client.get("/me")).status_code == 200
        async with stack.admin() as admin:
            assert (await admin.delete(f"/admin-tokens/{token['id']}")).status_code == 204
        assert_refused(await client.get("/me"), 401)
        assert_refused(await client.get("/tenants"), 401)


async def test_deleting_a_tenant_refuses_its_tokens(stack: Stack) -> None:
    tenant = (await stack.create_tenant())["id"]
    bound = [await create_token(stack, role, tenant) for role in ("tenant_admin", "viewer")]
    other = await create_token(stack, "viewer")
    for token in bound:
        async with as_token(stack, token["token"]) as client:
            assert (await client.get(f"/tenants/{tenant}")).status_code == 200
    async with stack.admin() as admin:
        assert (await admin.delete(f"/tenants/{tenant}")).status_code == 204
    for token in bound:
        async with as_token(stack, token["token"]) as client:
            assert_refused(await client.get("/me"), 401)
            assert_refused(await client.get("/tenants"), 401)
    async with as_token(stack, other["token"]) as client:
        assert (await client.get("/me")).status_code == 200
