"""Event types: what the control plane appends and every plane folds.

An event is stored as a row of `events`; its payload (`data`) is one of the
structs below, chosen by `type`. Payloads carry no secret in clear: client keys
appear only as hashes, provider keys (and Bedrock's AWS credentials) only as
ciphertext.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from shared.routing import BreakerPolicy, Deployment, RetryPolicy

__all__ = [
    "EVENT_SCHEMA",
    "EVENT_SCHEMAS",
    "PAYLOAD_TYPES",
    "AdminTokenCreated",
    "AdminTokenRevoked",
    "BudgetAlert",
    "BudgetExhausted",
    "DeploymentAdded",
    "DeploymentChanged",
    "DeploymentRemoved",
    "Event",
    "KeyCreated",
    "KeyRevoked",
    "NewEvent",
    "Payload",
    "PolicyCleared",
    "PolicySet",
    "PriceCleared",
    "PriceSet",
    "ProviderChanged",
    "ProviderCreated",
    "ProviderDeleted",
    "ProviderPriceSet",
    "RouteChanged",
    "RouteCreated",
    "RouteDeleted",
    "TenantCreated",
    "TenantDeleted",
    "TenantRenamed",
    "decode_payload",
    "encode_payload",
    "schema_of",
]


class TenantCreated(msgspec.Struct, frozen=True, tag="tenant.created"):
    id: str
    name: str


class TenantRenamed(msgspec.Struct, frozen=True, tag="tenant.renamed"):
    id: str
    name: str


class TenantDeleted(msgspec.Struct, frozen=True, tag="tenant.deleted"):
    id: str


class KeyCreated(msgspec.Struct, frozen=True, tag="key.created"):
    id: str
    tenant_id: str
    name: str
    prefix: str
    hash: str


class KeyRevoked(msgspec.Struct, frozen=True, tag="key.revoked"):
    id: str


class AdminTokenCreated(msgspec.Struct, frozen=True, tag="admin_token.created"):
    """A named admin token (`hash` of its secret only) with a role, bound to a
    tenant or platform-wide (`tenant_id` None), valid until `expires_at`."""

    id: str
    name: str
    role: str
    tenant_id: str | None
    prefix: str
    hash: str
    expires_at: datetime


class AdminTokenRevoked(msgspec.Struct, frozen=True, tag="admin_token.revoked"):
    id: str


class ProviderCreated(msgspec.Struct, frozen=True, tag="provider.created"):
    """`options`: the kind's settings as sorted (name, value) pairs, defaults filled in
    (absent from events written before kinds had options)."""

    id: str
    name: str
    kind: str
    base_url: str
    api_key_ciphertext: str | None
    options: tuple[tuple[str, str], ...] = ()


class ProviderChanged(msgspec.Struct, frozen=True, tag="provider.changed"):
    """The provider's settings as they are now (a rotated key, a new base URL, its
    options); its kind never changes."""

    id: str
    name: str
    base_url: str
    api_key_ciphertext: str | None
    options: tuple[tuple[str, str], ...] = ()


class ProviderDeleted(msgspec.Struct, frozen=True, tag="provider.deleted"):
    id: str


class RouteCreated(msgspec.Struct, frozen=True, tag="route.created"):
    """A public model name and the deployments that serve it. Routes created before
    deployments existed carry `provider_id` and `upstream_model` and no
    `deployments`: they are read as a route of one deployment whose id is the route's."""

    id: str
    model: str
    provider_id: str | None = None
    upstream_model: str | None = None
    tenant_ids: tuple[str, ...] | None = None  # None: every tenant may use it
    deployments: tuple[Deployment, ...] = ()
    strategy: str = "weighted"
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    continuation: bool = False  # continue a broken stream on another deployment
    context_fallback: str | None = None  # the model to use on context_length_exceeded

    def served_by(self) -> tuple[Deployment, ...]:
        """The route's deployments; for a route created before deployments existed, the
        one deployment its `provider_id` and `upstream_model` name, with the route's id."""
        if self.deployments or self.provider_id is None:
            return self.deployments
        upstream = self.upstream_model or self.model
        return (Deployment(id=self.id, provider_id=self.provider_id, upstream_model=upstream),)


class RouteChanged(msgspec.Struct, frozen=True, tag="route.changed"):
    """The route's settings as they are now (its deployments change by their own events)."""

    id: str
    tenant_ids: tuple[str, ...] | None
    strategy: str
    retry: RetryPolicy
    breaker: BreakerPolicy
    continuation: bool
    context_fallback: str | None


class DeploymentAdded(msgspec.Struct, frozen=True, tag="deployment.added"):
    route_id: str
    deployment: Deployment


class DeploymentChanged(msgspec.Struct, frozen=True, tag="deployment.changed"):
    """The deployment as it is now."""

    route_id: str
    deployment: Deployment


class DeploymentRemoved(msgspec.Struct, frozen=True, tag="deployment.removed"):
    route_id: str
    id: str


class RouteDeleted(msgspec.Struct, frozen=True, tag="route.deleted"):
    id: str


class PolicySet(msgspec.Struct, frozen=True, tag="policy.set"):
    scope: str  # "tenant" | "key"
    id: str
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    models: tuple[str, ...] | None = None
    max_tokens: int | None = None
    budget_usd: float | None = None
    budget_period: str | None = None
    soft_budget_usd: float | None = None


class PolicyCleared(msgspec.Struct, frozen=True, tag="policy.cleared"):
    scope: str
    id: str


class PriceSet(msgspec.Struct, frozen=True, tag="price.set"):
    model: str
    input_per_million: float
    output_per_million: float


class PriceCleared(msgspec.Struct, frozen=True, tag="price.cleared"):
    model: str


class ProviderPriceSet(msgspec.Struct, frozen=True, tag="provider.price_set"):
    provider_id: str
    input_per_million: float
    output_per_million: float


class BudgetExhausted(msgspec.Struct, frozen=True, tag="budget.exhausted"):
    """A scope spent its budget for `period` (e.g. "month:2026-11-01"): every replica
    refuses it until the period ends or its policy changes."""

    scope: str
    period: str
    spent_usd: float


class BudgetAlert(msgspec.Struct, frozen=True, tag="budget.alert"):
    """A scope reached its soft budget for `period`."""

    scope: str
    period: str
    spent_usd: float


Payload = (
    TenantCreated
    | TenantRenamed
    | TenantDeleted
    | KeyCreated
    | KeyRevoked
    | ProviderCreated
    | ProviderChanged
    | ProviderDeleted
    | RouteCreated
    | RouteChanged
    | RouteDeleted
    | DeploymentAdded
    | DeploymentChanged
    | DeploymentRemoved
    | PolicySet
    | PolicyCleared
    | PriceSet
    | PriceCleared
    | ProviderPriceSet
    | BudgetExhausted
    | BudgetAlert
    | AdminTokenCreated
    | AdminTokenRevoked
)

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        TenantCreated,
        TenantRenamed,
        TenantDeleted,
        KeyCreated,
        KeyRevoked,
        ProviderCreated,
        ProviderChanged,
        ProviderDeleted,
        RouteCreated,
        RouteChanged,
        RouteDeleted,
        DeploymentAdded,
        DeploymentChanged,
        DeploymentRemoved,
        PolicySet,
        PolicyCleared,
        PriceSet,
        PriceCleared,
        ProviderPriceSet,
        BudgetExhausted,
        BudgetAlert,
        AdminTokenCreated,
        AdminTokenRevoked,
    )
}

# The event schema in which each type appeared, or last changed meaning. A build that
# understands schema N applies every type listed here with a schema <= N; a new type,
# or a new field that changes what an old type means, takes the next number.
EVENT_SCHEMAS: dict[str, int] = dict.fromkeys(PAYLOAD_TYPES, 1)
EVENT_SCHEMA = max(EVENT_SCHEMAS.values())  # the newest schema this build understands


def schema_of(type_: str) -> int:
    """The schema an event of `type_` is written with."""
    return EVENT_SCHEMAS[type_]


def event_type(payload: Payload) -> str:
    tag = payload.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def encode_payload(payload: Payload) -> bytes:
    """The JSON stored in `events.data` (the tag lives in `events.type`, not here)."""
    return msgspec.json.encode(msgspec.structs.asdict(payload))


def decode_payload(type_: str, data: str | bytes) -> Payload:
    """Decode `events.data` for an event of type `type_`; unknown types raise KeyError."""
    cls = PAYLOAD_TYPES[type_]
    return msgspec.json.decode(data, type=cls)


class NewEvent(msgspec.Struct, frozen=True):
    """An event about to be appended to `stream`."""

    stream: str
    payload: Payload

    @property
    def type(self) -> str:
        return event_type(self.payload)


class Event(msgspec.Struct, frozen=True):
    """An event as stored: the payload plus its place in the log."""

    position: int
    stream: str
    stream_version: int
    type: str
    payload: Payload
    actor: str
    created_at: datetime

    def data(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self.payload)
