"""The state of the world: an immutable value built by folding events.

Maps are `immutables.Map` (a persistent hash map), so applying one event
copies only the path it changes, and a snapshot held by an in-flight request
never changes under it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from immutables import Map

__all__ = ["SCHEMA_VERSION", "ApiKey", "Provider", "Route", "State", "Tenant"]

SCHEMA_VERSION = 1

# The records below are encoded as arrays (array_like), not maps: snapshots of
# 100,000 keys are a few times smaller and faster to write that way. They hold
# only strings, so they cannot be part of a reference cycle: gc=False keeps the
# garbage collector from walking hundreds of thousands of them.


class Tenant(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: str
    name: str


class ApiKey(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: str
    tenant_id: str
    name: str
    prefix: str
    hash: str


class Provider(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: str
    name: str
    kind: str
    base_url: str
    api_key_ciphertext: str | None


class Route(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: str
    model: str
    provider_id: str
    upstream_model: str
    tenant_ids: frozenset[str] | None  # None: every tenant

    def allows(self, tenant_id: str) -> bool:
        return self.tenant_ids is None or tenant_id in self.tenant_ids


def _empty() -> Map[Any, Any]:
    return Map()


class State(msgspec.Struct, frozen=True):
    """Everything the planes know, as of event `position` (after `event_count` events)."""

    position: int = 0
    event_count: int = 0
    tenants: Map[str, Tenant] = msgspec.field(default_factory=_empty)
    keys: Map[str, ApiKey] = msgspec.field(default_factory=_empty)
    key_ids_by_hash: Map[str, str] = msgspec.field(default_factory=_empty)
    providers: Map[str, Provider] = msgspec.field(default_factory=_empty)
    routes: Map[str, Route] = msgspec.field(default_factory=_empty)
    route_ids_by_model: Map[str, str] = msgspec.field(default_factory=_empty)

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        key_id = self.key_ids_by_hash.get(key_hash)
        return None if key_id is None else self.keys.get(key_id)

    def route_for_model(self, model: str) -> Route | None:
        route_id = self.route_ids_by_model.get(model)
        return None if route_id is None else self.routes.get(route_id)

    def routes_for_tenant(self, tenant_id: str) -> list[Route]:
        return sorted(
            (r for r in self.routes.values() if r.allows(tenant_id)), key=lambda r: r.model
        )
