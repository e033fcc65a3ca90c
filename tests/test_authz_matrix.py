"""Who may do what on the admin API, cell by cell: every operation of the OpenAPI
document, for every kind of caller, on objects of tenant A and of tenant B.

The policy is stated here, on its own (not read from the server): each operation's
permission class and success status. A cell's expected status follows from it:
1. no token, an unknown, expired or revoked one, or a data-plane key: 401;
2. a platform admin: the operation's success;
3. platform objects: a platform-wide viewer reads them; all others 403;
4. lists (tenants, usage, events, /me): anyone, filtered to a tenant-bound caller's tenant;
5. a tenant's objects: 404 for a caller bound to another tenant (the same 404 as for
   an object that does not exist); reads allowed; a tenant admin changes its keys and
   key policies, nobody but the platform its name, policy or existence;
6. viewers never change anything."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import httpx
import pytest

from tests.support.authz import (
    ROLES,
    UNAUTHENTICATED,
    Who,
    World,
    Worlds,
    all_events,
    tenant_positions,
)
from tests.support.authz_calls import call_for, random_id, without_ids
from tests.support.problems import assert_refused, nothing_appended
from tests.support.stack import Stack


class Perm(StrEnum):
    PLATFORM_READ = "platform-read"
    PLATFORM_WRITE = "platform-write"
    LISTING = "listing"
    TENANT_READ = "tenant-read"
    TENANT_WRITE = "tenant-write"  # a tenant admin may, on its own tenant
    TENANT_PLATFORM_WRITE = "tenant-platform-write"  # only the platform may
    KEY_READ = "key-read"
    KEY_WRITE = "key-write"  # a tenant admin may, on its own tenant's keys


R, W, L = Perm.PLATFORM_READ, Perm.PLATFORM_WRITE, Perm.LISTING
TENANT_OWNED = frozenset(
    {Perm.TENANT_READ, Perm.TENANT_WRITE, Perm.TENANT_PLATFORM_WRITE, Perm.KEY_READ, Perm.KEY_WRITE}
)

# (method, path under /admin/v1, permission, success status), in the order the cells
# run: reads, then changes that keep every object, then deletes, each before what it
# depends on is deleted.
POLICY: list[tuple[str, str, Perm, int]] = [
    ("GET", "/me", L, 200),
    ("GET", "/tenants", L, 200),
    ("GET", "/usage", L, 200),
    ("GET", "/events", L, 200),
    ("GET", "/tenants/{tenant_id}", Perm.TENANT_READ, 200),
    ("GET", "/tenants/{tenant_id}/keys", Perm.TENANT_READ, 200),
    ("GET", "/tenants/{tenant_id}/policy", Perm.TENANT_READ, 200),
    ("GET", "/keys/{key_id}", Perm.KEY_READ, 200),
    ("GET", "/keys/{key_id}/policy", Perm.KEY_READ, 200),
    ("GET", "/providers", R, 200),
    ("GET", "/providers/{provider_id}", R, 200),
    ("GET", "/routes", R, 200),
    ("GET", "/routes/{route_id}", R, 200),
    ("GET", "/routes/{route_id}/deployments/{deployment_id}", R, 200),
    ("GET", "/deployments/{deployment_id}/health", R, 200),
    ("GET", "/state", R, 200),
    ("GET", "/prices", R, 200),
    ("GET", "/prices/{model}", R, 200),
    ("GET", "/admin-tokens", R, 200),
    ("GET", "/admin-tokens/{token_id}", R, 200),
    ("GET", "/config", R, 200),
    ("GET", "/replicas", R, 200),
    ("POST", "/tenants", W, 201),
    ("PATCH", "/tenants/{tenant_id}", Perm.TENANT_PLATFORM_WRITE, 200),
    ("POST", "/tenants/{tenant_id}/keys", Perm.TENANT_WRITE, 201),
    ("PUT", "/tenants/{tenant_id}/policy", Perm.TENANT_PLATFORM_WRITE, 200),
    ("PUT", "/keys/{key_id}/policy", Perm.KEY_WRITE, 200),
    ("POST", "/providers", W, 201),
    ("PATCH", "/providers/{provider_id}", W, 200),
    ("PUT", "/providers/{provider_id}/price", W, 200),
    ("POST", "/routes", W, 201),
    ("PATCH", "/routes/{route_id}", W, 200),
    ("POST", "/routes/{route_id}/deployments", W, 201),
    ("PATCH", "/routes/{route_id}/deployments/{deployment_id}", W, 200),
    ("PUT", "/prices/{model}", W, 200),
    ("POST", "/admin-tokens", W, 201),
    ("POST", "/config/plan", W, 200),
    ("POST", "/config/apply", W, 200),
    ("DELETE", "/keys/{key_id}/policy", Perm.KEY_WRITE, 204),
    ("DELETE", "/tenants/{tenant_id}/policy", Perm.TENANT_PLATFORM_WRITE, 204),
    ("DELETE", "/routes/{route_id}/deployments/{deployment_id}", W, 204),
    ("DELETE", "/routes/{route_id}", W, 204),
    ("DELETE", "/prices/{model}", W, 204),
    ("DELETE", "/providers/{provider_id}", W, 204),
    ("DELETE", "/admin-tokens/{token_id}", W, 204),
    ("DELETE", "/keys/{key_id}", Perm.KEY_WRITE, 204),
    ("DELETE", "/tenants/{tenant_id}", Perm.TENANT_PLATFORM_WRITE, 204),
]
PREFIX = "/admin/v1"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Cell:
    method: str
    path: str
    perm: Perm
    success: int
    who: Who
    owner: str | None  # "A" or "B" for a tenant's object; None for the platform's

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.who} owner:{self.owner or 'platform'}"

    def expected(self) -> int:
        if self.who in UNAUTHENTICATED:
            return 401
        role, tenant = ROLES[self.who]
        if role == "platform_admin" or self.perm is Perm.LISTING:
            return self.success
        if self.perm is Perm.PLATFORM_READ:
            return self.success if tenant is None else 403
        if self.perm is Perm.PLATFORM_WRITE:
            return 403
        if tenant is not None and tenant != self.owner:
            return 404
        if self.perm in (Perm.TENANT_READ, Perm.KEY_READ):
            return self.success
        if self.perm in (Perm.TENANT_WRITE, Perm.KEY_WRITE) and role == "tenant_admin":
            return self.success
        return 403


CELLS = [
    Cell(method, path, perm, success, who, owner)
    for who in Who
    for method, path, perm, success in POLICY
    for owner in (("A", "B") if perm in TENANT_OWNED else (None,))
]


@pytest.fixture(scope="module")
def worlds(control_plane: Stack) -> Worlds:
    return Worlds(control_plane)


async def test_the_table_has_every_operation_of_the_api_and_no_other(
    control_plane: Stack,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(control_plane.control_plane_url + "/admin/schema/openapi.json")
    assert resp.status_code == 200, resp.text
    documented: dict[tuple[str, str], set[str]] = {
        (method.upper(), path.removeprefix(PREFIX)): set(operation.get("responses", {}))
        for path, item in resp.json()["paths"].items()
        if path.startswith(PREFIX + "/")
        for method, operation in item.items()
        if method in METHODS
    }
    tabled = {(method, path): success for method, path, _, success in POLICY}
    unstated = sorted(set(documented) - set(tabled))
    assert not unstated, f"operations of the API the table does not state: {unstated}"
    absent = sorted(set(tabled) - set(documented))
    assert not absent, f"operations in the table the API does not have: {absent}"
    unlike = {op: (tabled[op], sorted(codes)) for op, codes in documented.items()}
    unlike = {op: v for op, v in unlike.items() if str(v[0]) not in v[1]}
    assert not unlike, f"success statuses the document does not list: {unlike}"


@pytest.mark.parametrize("cell", CELLS, ids=str)
async def test_cell(cell: Cell, worlds: Worlds) -> None:
    world = await worlds.of(cell.who)
    call = await call_for(cell.method, cell.path, world, cell.owner)
    want = cell.expected()
    async with world.client(cell.who) as client:
        if want < 400:
            resp = await call.send(client)
            assert resp.status_code == want, f"{cell}: {resp.status_code} {resp.text}"
            if cell.perm is Perm.LISTING:
                await _only_whats_theirs(cell, world, resp, client)
            return
        async with nothing_appended(world.stack):
            resp = await call.send(client)
            assert resp.status_code == want, f"{cell}: {resp.status_code} {resp.text}"
            assert_refused(resp, want)
            if want != 404:
                return
            assert call.subject is not None
            unknown = random_id()
            nowhere = await call.naming(unknown).send(client)
    assert_refused(nowhere, 404)
    assert without_ids(resp.json(), call.subject) == without_ids(nowhere.json(), unknown), (
        "another tenant's object is told apart from one that does not exist"
    )


async def _only_whats_theirs(
    cell: Cell, world: World, resp: httpx.Response, client: httpx.AsyncClient
) -> None:
    """A tenant-bound caller's list holds its tenant's items only; a platform-wide
    caller's holds both tenants'."""
    tenant = world.tenant_of(cell.who)
    both = {world.tenants["A"], world.tenants["B"]}
    body = resp.json()
    if cell.path == "/me":
        role, _ = ROLES[cell.who]
        actor = f"token:{world.names[cell.who]}"
        assert body == {"actor": actor, "role": role, "tenant_id": tenant}
    elif cell.path == "/tenants":
        _holds({t["id"] for t in body}, tenant, both)
    elif cell.path == "/usage":
        _holds({row["tenant_id"] for row in body["data"]}, tenant, both)
    elif cell.path == "/events":
        seen = await all_events(client)
        if tenant is None:
            assert {f"tenant:{t}" for t in both} <= {e["stream"] for e in seen}
            return
        async with world.stack.admin() as admin:
            owned, tokens = tenant_positions(await all_events(admin), tenant)
        positions = {e["position"] for e in seen}
        assert owned - positions == set(), "events of the tenant left out of its audit log"
        assert positions - owned - tokens == set(), "events of others in a tenant's audit log"
    else:
        raise AssertionError(f"{cell.path} is a list this test does not check")


def _holds(tenants: set[str], bound: str | None, both: set[str]) -> None:
    if bound is not None:
        assert tenants == {bound}
    else:
        assert both <= tenants
