"""A valid request for each operation of the admin API, on a world's objects: the
request an authorized caller makes succeed, so that a refusal can only be the
authorization's. Keyed by (method, path) as the OpenAPI document writes them,
without the `/admin/v1` prefix."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from tests.support.authz import PROVIDER_URL, World

__all__ = ["CALLS", "Call", "call_for", "random_id", "without_ids"]

Body = dict[str, Any]
Builder = Callable[[World, str | None], "Call"]
_PRICE = {"input_per_million": 1, "output_per_million": 2}


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # under /admin/v1
    subject: str | None = None  # the id of the tenant's object the path names
    json: Any = None
    params: dict[str, str | int] | None = None

    def naming(self, other: str) -> Call:
        """The same request, for the object `other` instead of `subject`."""
        assert self.subject is not None
        return replace(self, path=self.path.replace(self.subject, other), subject=other)

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.request(self.method, self.path, json=self.json, params=self.params)


def _fresh(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(5)}"


def _tenant(method: str, tail: str = "", body: Callable[[], Body] | None = None) -> Builder:
    def build(world: World, owner: str | None) -> Call:
        assert owner is not None
        tid = world.tenants[owner]
        json = None if body is None else body()
        return Call(method, f"/tenants/{tid}{tail}", subject=tid, json=json)

    return build


def _key(method: str, tail: str = "", body: Callable[[], Body] | None = None) -> Builder:
    def build(world: World, owner: str | None) -> Call:
        assert owner is not None
        kid = world.keys[owner]
        return Call(
            method, f"/keys/{kid}{tail}", subject=kid, json=None if body is None else body()
        )

    return build


def _plain(method: str, path: str, **fields: Any) -> Builder:
    return lambda world, owner: Call(method, path, **fields)


def _provider_body() -> Body:
    return {"name": _fresh("provider"), "kind": "openai", "base_url": PROVIDER_URL}


CALLS: dict[tuple[str, str], Builder] = {
    ("GET", "/me"): _plain("GET", "/me"),
    ("GET", "/tenants"): _plain("GET", "/tenants", params={"limit": 1000}),
    ("POST", "/tenants"): lambda w, o: Call("POST", "/tenants", json={"name": _fresh("tenant")}),
    ("GET", "/tenants/{tenant_id}"): _tenant("GET"),
    ("PATCH", "/tenants/{tenant_id}"): _tenant("PATCH", body=lambda: {"name": _fresh("renamed")}),
    ("DELETE", "/tenants/{tenant_id}"): _tenant("DELETE"),
    ("GET", "/tenants/{tenant_id}/keys"): _tenant("GET", "/keys"),
    ("POST", "/tenants/{tenant_id}/keys"): _tenant("POST", "/keys", lambda: {"name": "matrix"}),
    ("GET", "/tenants/{tenant_id}/policy"): _tenant("GET", "/policy"),
    ("PUT", "/tenants/{tenant_id}/policy"): _tenant("PUT", "/policy", lambda: {"rpm": 5000}),
    ("DELETE", "/tenants/{tenant_id}/policy"): _tenant("DELETE", "/policy"),
    ("GET", "/keys/{key_id}"): _key("GET"),
    ("DELETE", "/keys/{key_id}"): _key("DELETE"),
    ("GET", "/keys/{key_id}/policy"): _key("GET", "/policy"),
    ("PUT", "/keys/{key_id}/policy"): _key("PUT", "/policy", lambda: {"rpm": 7}),
    ("DELETE", "/keys/{key_id}/policy"): _key("DELETE", "/policy"),
    ("GET", "/providers"): _plain("GET", "/providers"),
    ("POST", "/providers"): lambda w, o: Call("POST", "/providers", json=_provider_body()),
    ("GET", "/providers/{provider_id}"): lambda w, o: Call("GET", f"/providers/{w.provider}"),
    ("PATCH", "/providers/{provider_id}"): lambda w, o: Call(
        "PATCH", f"/providers/{w.provider}", json={"name": _fresh("provider")}
    ),
    ("DELETE", "/providers/{provider_id}"): lambda w, o: Call(
        "DELETE", f"/providers/{w.spare_provider}"
    ),
    ("PUT", "/providers/{provider_id}/price"): lambda w, o: Call(
        "PUT", f"/providers/{w.provider}/price", json=_PRICE
    ),
    ("GET", "/routes"): _plain("GET", "/routes"),
    ("POST", "/routes"): lambda w, o: Call(
        "POST",
        "/routes",
        json={"model": _fresh("model"), "provider_id": w.provider, "upstream_model": "up"},
    ),
    ("GET", "/routes/{route_id}"): lambda w, o: Call("GET", f"/routes/{w.route}"),
    ("PATCH", "/routes/{route_id}"): lambda w, o: Call(
        "PATCH", f"/routes/{w.route}", json={"strategy": "least_in_flight"}
    ),
    ("DELETE", "/routes/{route_id}"): lambda w, o: Call("DELETE", f"/routes/{w.spare_route}"),
    ("POST", "/routes/{route_id}/deployments"): lambda w, o: Call(
        "POST",
        f"/routes/{w.route}/deployments",
        json={"provider_id": w.provider, "upstream_model": _fresh("up")},
    ),
    ("GET", "/routes/{route_id}/deployments/{deployment_id}"): lambda w, o: Call(
        "GET", f"/routes/{w.route}/deployments/{w.deployment}"
    ),
    ("PATCH", "/routes/{route_id}/deployments/{deployment_id}"): lambda w, o: Call(
        "PATCH", f"/routes/{w.route}/deployments/{w.deployment}", json={"weight": 3}
    ),
    ("DELETE", "/routes/{route_id}/deployments/{deployment_id}"): lambda w, o: Call(
        "DELETE", f"/routes/{w.route}/deployments/{w.spare_deployment}"
    ),
    ("GET", "/deployments/{deployment_id}/health"): lambda w, o: Call(
        "GET", f"/deployments/{w.deployment}/health"
    ),
    ("GET", "/events"): _plain("GET", "/events", params={"limit": 1000}),
    ("GET", "/state"): _plain("GET", "/state"),
    ("GET", "/usage"): _plain("GET", "/usage", params={"group_by": "tenant"}),
    ("GET", "/prices"): _plain("GET", "/prices"),
    ("GET", "/prices/{model}"): lambda w, o: Call("GET", f"/prices/{w.model}"),
    ("PUT", "/prices/{model}"): lambda w, o: Call("PUT", f"/prices/{w.model}", json=_PRICE),
    ("DELETE", "/prices/{model}"): lambda w, o: Call("DELETE", f"/prices/{w.model}"),
    ("GET", "/admin-tokens"): _plain("GET", "/admin-tokens"),
    ("POST", "/admin-tokens"): lambda w, o: Call(
        "POST", "/admin-tokens", json={"name": _fresh("token"), "role": "viewer"}
    ),
    ("GET", "/admin-tokens/{token_id}"): lambda w, o: Call("GET", f"/admin-tokens/{w.spare_token}"),
    ("DELETE", "/admin-tokens/{token_id}"): lambda w, o: Call(
        "DELETE", f"/admin-tokens/{w.spare_token}"
    ),
    ("GET", "/config"): _plain("GET", "/config"),
    ("GET", "/replicas"): _plain("GET", "/replicas"),
}
# The declarative configuration: a plan or an apply of the configuration in force
# (exported just before, by the bootstrap token) is valid and changes nothing.
_WITH_CURRENT_CONFIG = ("/config/plan", "/config/apply")


async def call_for(method: str, path: str, world: World, owner: str | None) -> Call:
    if method == "POST" and path in _WITH_CURRENT_CONFIG:
        return Call(method, path, json=await _current_config(world))
    return CALLS[method, path](world, owner)


async def _current_config(world: World) -> Body:
    """The exported document with its providers' API keys put in, as `sluice apply`
    does from its environment (every provider of the tests has the stack's key)."""
    async with world.stack.admin() as admin:
        current = await admin.get("/config")
    assert current.status_code == 200, current.text
    document: Body = current.json()
    for provider in document["providers"]:
        if "api_key_env" in provider:
            provider["api_key"] = world.stack.upstream_key
    return document


def without_ids(problem: Body, *ids: str) -> Body:
    """A problem without its `instance`, each of `ids` written `<id>`: what must not
    differ between a refusal of another tenant's object and of one that does not exist."""
    shown: Body = {}
    for name, value in problem.items():
        if name == "instance":
            continue
        if isinstance(value, str):
            for id_ in ids:
                value = value.replace(id_, "<id>")
        shown[name] = value
    return shown


def random_id() -> str:
    return str(uuid.uuid4())
