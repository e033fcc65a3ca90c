"""The state of the world: an immutable value built by folding events.

Maps are `immutables.Map` (a persistent hash map), so applying one event
copies only the path it changes, and a snapshot held by an in-flight request
never changes under it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from immutables import Map

from shared.routing import BreakerPolicy, Deployment, RetryPolicy

__all__ = [
    "SCHEMA_VERSION",
    "AdminToken",
    "ApiKey",
    "AwsCredentials",
    "Policy",
    "Price",
    "Provider",
    "Route",
    "State",
    "Tenant",
]

# 2: routes own deployments; 3: providers carry options (a build that predates them
# would drop them silently, so snapshots of version 2 are folded again from the log);
# 4: admin tokens
SCHEMA_VERSION = 4

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


class AdminToken(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A named admin API token: only its hash is kept. `tenant_id` binds a
    tenant_admin (always) or a viewer (optionally) to one tenant."""

    id: str
    name: str
    role: str
    tenant_id: str | None
    prefix: str
    hash: str
    expires_at: float  # Unix seconds
    # kept once revoked (or its tenant deleted), so a name is never reused and
    # `token:<name>` in the audit log always means one token
    revoked: bool = False


class Provider(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An upstream. `api_key_ciphertext` is its key, or for `bedrock` its
    `AwsCredentials` as JSON, encrypted; `options` are its kind's settings as sorted
    (name, value) pairs, e.g. `(("region", "us-east-1"),)`."""

    id: str
    name: str
    kind: str
    base_url: str
    api_key_ciphertext: str | None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str) -> str | None:
        for key, value in self.options:
            if key == name:
                return value
        return None


class AwsCredentials(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a `bedrock` provider's ciphertext decrypts to: this struct as JSON."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the secret, even by accident
        return f"AwsCredentials(access_key_id={self.access_key_id[:4]!r}...)"

    def to_secret(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_secret(cls, secret: str) -> AwsCredentials:
        return msgspec.json.decode(secret, type=cls)


class Route(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A public model name, the deployments that serve it and how to choose among them."""

    id: str
    model: str
    tenant_ids: frozenset[str] | None  # None: every tenant
    deployments: tuple[Deployment, ...]
    strategy: str = "weighted"
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    continuation: bool = False
    context_fallback: str | None = None

    def allows(self, tenant_id: str) -> bool:
        return self.tenant_ids is None or tenant_id in self.tenant_ids

    def deployment(self, deployment_id: str) -> Deployment | None:
        for d in self.deployments:
            if d.id == deployment_id:
                return d
        return None


class Policy(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Limits on a tenant or a key; None means no limit. A key's policy narrows its
    tenant's: both are enforced, each on its own counters."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    models: frozenset[str] | None = None
    max_tokens: int | None = None
    budget_usd: float | None = None
    budget_period: str | None = None  # "day" | "month" | "total" (UTC)
    soft_budget_usd: float | None = None  # an alert when spend reaches it


class Price(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """USD per million tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / 1_000_000


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
    tenant_policies: Map[str, Policy] = msgspec.field(default_factory=_empty)
    key_policies: Map[str, Policy] = msgspec.field(default_factory=_empty)
    prices: Map[str, Price] = msgspec.field(default_factory=_empty)  # by public model
    provider_prices: Map[str, Price] = msgspec.field(default_factory=_empty)
    budget_exhausted: Map[str, str] = msgspec.field(default_factory=_empty)  # scope -> period
    budget_alerted: Map[str, str] = msgspec.field(default_factory=_empty)  # scope -> period
    admin_tokens: Map[str, AdminToken] = msgspec.field(default_factory=_empty)

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        key_id = self.key_ids_by_hash.get(key_hash)
        return None if key_id is None else self.keys.get(key_id)

    def route_for_model(self, model: str) -> Route | None:
        route_id = self.route_ids_by_model.get(model)
        return None if route_id is None else self.routes.get(route_id)

    def price_for(self, model: str, provider_id: str) -> Price | None:
        """The public model's price, else the serving provider's default, else none (cost 0)."""
        return self.prices.get(model) or self.provider_prices.get(provider_id)

    def routes_using(self, provider_id: str) -> list[Route]:
        return [
            r
            for r in self.routes.values()
            if any(d.provider_id == provider_id for d in r.deployments)
        ]

    def routes_for_tenant(self, tenant_id: str) -> list[Route]:
        return sorted(
            (r for r in self.routes.values() if r.allows(tenant_id)), key=lambda r: r.model
        )
