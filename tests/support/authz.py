"""Identities of the admin API and a world of objects to try them on, for the
authorization tests: tenants A and B (a key, a tenant and a key policy each, usage
of each), a provider serving a route of two deployments, a provider and a route
that nothing depends on, a price, and named admin tokens of every role.

Every world is made by the bootstrap token. An identity that may write gets a world
of its own, so that what it changes or deletes does not disturb the others' cells."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg
import httpx

from tests.support.stack import NOWHERE, Stack

__all__ = [
    "BOUND",
    "PROVIDER_URL",
    "ROLES",
    "UNAUTHENTICATED",
    "Who",
    "World",
    "Worlds",
    "admin_client",
    "all_events",
    "as_token",
    "create_token",
    "tenant_positions",
]

Body = dict[str, Any]


class Who(StrEnum):
    NONE = "no-token"
    WRONG = "wrong-token"
    CLIENT_KEY = "client-key"  # a data-plane key of tenant A: no admin credential
    EXPIRED = "expired-token"
    VIEWER = "viewer"  # platform-wide
    VIEWER_A = "viewer-of-A"
    ADMIN_A = "admin-of-A"
    ADMIN_B = "admin-of-B"
    PLATFORM = "platform-admin"  # a named token, not the bootstrap one


UNAUTHENTICATED = frozenset({Who.NONE, Who.WRONG, Who.CLIENT_KEY, Who.EXPIRED})
# The role of each named token, and the tenant ("A" or "B") it is bound to.
ROLES: dict[Who, tuple[str, str | None]] = {
    Who.EXPIRED: ("platform_admin", None),
    Who.VIEWER: ("viewer", None),
    Who.VIEWER_A: ("viewer", "A"),
    Who.ADMIN_A: ("tenant_admin", "A"),
    Who.ADMIN_B: ("tenant_admin", "B"),
    Who.PLATFORM: ("platform_admin", None),
}
BOUND: dict[Who, str] = {who: t for who, (_, t) in ROLES.items() if t is not None}
_OWN_WORLD = (Who.PLATFORM, Who.ADMIN_A, Who.ADMIN_B)  # those that write
PROVIDER_URL = NOWHERE + "/v1"  # where the tests' providers point: nothing listens there


def admin_client(stack: Stack, headers: dict[str, str]) -> httpx.AsyncClient:
    """A client of the admin API (`/admin/v1`) sending `headers`."""
    return httpx.AsyncClient(
        base_url=stack.control_plane_url + "/admin/v1", headers=headers, timeout=10
    )


def as_token(stack: Stack, secret: str) -> httpx.AsyncClient:
    return admin_client(stack, {"authorization": f"Bearer {secret}"})


def _name(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(5)}"


@dataclass
class World:
    stack: Stack
    tenants: dict[str, str] = field(default_factory=dict)  # "A"/"B" -> tenant id
    keys: dict[str, str] = field(default_factory=dict)  # "A"/"B" -> key id
    client_key: str = ""  # the secret of A's key
    provider: str = ""  # serves `route`
    spare_provider: str = ""  # serves nothing: may be deleted
    route: str = ""
    deployment: str = ""  # one of `route`'s two
    spare_deployment: str = ""  # the other: may be removed
    spare_route: str = ""
    model: str = ""  # has a price
    spare_token: str = ""  # an admin token's id, to read and revoke
    bearer: dict[Who, str] = field(default_factory=dict)
    names: dict[Who, str] = field(default_factory=dict)  # named tokens' names

    def headers(self, who: Who) -> dict[str, str]:
        if who is Who.NONE:
            return {}
        if who is Who.WRONG:
            return {"authorization": "Bearer sluice-admin-" + secrets.token_urlsafe(32)}
        if who is Who.CLIENT_KEY:
            return {"authorization": f"Bearer {self.client_key}"}
        return {"authorization": f"Bearer {self.bearer[who]}"}

    def client(self, who: Who) -> httpx.AsyncClient:
        return admin_client(self.stack, self.headers(who))

    def tenant_of(self, who: Who) -> str | None:
        letter = BOUND.get(who)
        return None if letter is None else self.tenants[letter]


async def create_token(
    stack: Stack,
    role: str,
    tenant_id: str | None = None,
    expires_at: datetime | None = None,
    name: str | None = None,
) -> Body:
    """A named admin token made by the bootstrap token (`token` is its secret)."""
    body: Body = {"name": name or _name("token"), "role": role}
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    async with stack.admin() as admin:
        resp = await admin.post("/admin-tokens", json=body)
    assert resp.status_code == 201, resp.text
    token: Body = resp.json()
    stack.handed_out.append(token["token"])
    return token


async def _ok(resp: httpx.Response, status: int = 200) -> Body:
    assert resp.status_code == status, f"{resp.request.url}: {resp.status_code} {resp.text}"
    body: Body = resp.json()
    return body


async def _build(stack: Stack, users: list[Who]) -> World:
    world = World(stack)
    async with stack.admin() as admin:
        for letter, rpm in (("A", 1000), ("B", 2000)):
            tenant = await stack.create_tenant(_name(f"tenant-{letter}"))
            key = await stack.create_key(tenant["id"])
            world.tenants[letter], world.keys[letter] = tenant["id"], key["id"]
            if letter == "A":
                world.client_key = key["key"]
            await _ok(await admin.put(f"/tenants/{tenant['id']}/policy", json={"rpm": rpm}))
            await _ok(await admin.put(f"/keys/{key['id']}/policy", json={"rpm": rpm // 10}))
        world.provider = (await stack.create_provider())["id"]
        world.spare_provider = (await stack.create_provider())["id"]
        world.model = _name("model")
        deployments = [{"provider_id": world.provider, "upstream_model": f"up-{i}"} for i in (1, 2)]
        route = await _ok(
            await admin.post("/routes", json={"model": world.model, "deployments": deployments}),
            201,
        )
        world.route = route["id"]
        world.deployment, world.spare_deployment = (d["id"] for d in route["deployments"])
        spare = {"model": _name("model"), "provider_id": world.provider, "upstream_model": "up"}
        world.spare_route = (await _ok(await admin.post("/routes", json=spare), 201))["id"]
        price = {"input_per_million": 1, "output_per_million": 2}
        await _ok(await admin.put(f"/prices/{world.model}", json=price))
    world.spare_token = (await create_token(stack, "viewer"))["id"]
    for who in users:
        await _issue(world, who)
    await _record_usage(world)
    return world


async def _issue(world: World, who: Who) -> None:
    if who not in ROLES:
        return
    role, letter = ROLES[who]
    tenant_id = None if letter is None else world.tenants[letter]
    expires_at = datetime.now(UTC) + timedelta(seconds=2) if who is Who.EXPIRED else None
    token = await create_token(world.stack, role, tenant_id, expires_at)
    world.bearer[who], world.names[who] = token["token"], token["name"]
    if who is Who.EXPIRED:
        await _until_refused(world, who, expires_at)


async def _until_refused(world: World, who: Who, expires_at: datetime | None) -> None:
    """Wait out a token's expiry: until the admin API refuses it (or 30 s past it)."""
    assert expires_at is not None
    deadline = expires_at.timestamp() + 30
    await asyncio.sleep(max(0.0, expires_at.timestamp() - time.time()))
    async with world.client(who) as client:
        while (await client.get("/me")).status_code != 401:
            assert time.time() < deadline, "an expired admin token is still accepted"
            await asyncio.sleep(0.1)


async def _record_usage(world: World) -> None:
    """Usage of each tenant this hour, as the data planes record it."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    conn = await asyncpg.connect(world.stack.database_url)
    try:
        for letter in ("A", "B"):
            await conn.execute(
                "INSERT INTO usage_hourly (hour, tenant_id, key_id, model, requests, errors,"
                " prompt_tokens, completion_tokens, cost_usd) VALUES ($1, $2, $3, $4, 3, 0,"
                " 30, 20, 0.5)",
                hour, world.tenants[letter], world.keys[letter], world.model,
            )  # fmt: skip
    finally:
        await conn.close()


class Worlds:
    """One world for each identity that writes, and one shared by all the others; each
    made when first asked for, with the named tokens of the identities that use it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._made: dict[str, World] = {}

    async def of(self, who: Who) -> World:
        group = who.value if who in _OWN_WORLD else "shared"
        if group not in self._made:
            users = [who] if who in _OWN_WORLD else [w for w in Who if w not in _OWN_WORLD]
            self._made[group] = await _build(self.stack, users)
        return self._made[group]


async def all_events(client: httpx.AsyncClient, **filters: str) -> list[Body]:
    """Every event `client` may read (with `filters`), newest first, page by page."""
    events: list[Body] = []
    params: dict[str, str | int] = {"limit": 1000, **filters}
    while True:
        resp = await client.get("/events", params=params)
        page = await _ok(resp)
        events += page["data"]
        if page["next_before"] is None:
            return events
        params["before"] = page["next_before"]


def tenant_positions(events: list[Body], tenant_id: str) -> tuple[set[int], set[int]]:
    """From the whole log: the positions of `tenant_id`'s events (its own stream, its
    keys', their policies and budgets), and those of the admin tokens bound to it,
    which its audit log may also show."""
    keys = {
        e["data"]["id"]
        for e in events
        if e["type"] == "key.created" and e["data"]["tenant_id"] == tenant_id
    }
    tokens = {
        e["data"]["id"]
        for e in events
        if e["type"] == "admin_token.created" and e["data"].get("tenant_id") == tenant_id
    }
    owned = {f"tenant:{tenant_id}"} | {f"key:{k}" for k in keys}
    owned |= {f"budget:{stream}" for stream in owned}
    token_streams = {f"admin_token:{t}" for t in tokens}
    return (
        {e["position"] for e in events if e["stream"] in owned},
        {e["position"] for e in events if e["stream"] in token_streams},
    )
