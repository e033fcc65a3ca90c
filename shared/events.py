"""Event types: what the control plane appends and every plane folds.

An event is stored as a row of `events`; its payload (`data`) is one of the
structs below, chosen by `type`. Payloads carry no secret in clear: client keys
appear only as hashes, provider keys only as ciphertext.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = [
    "PAYLOAD_TYPES",
    "BudgetAlert",
    "BudgetExhausted",
    "Event",
    "KeyCreated",
    "KeyRevoked",
    "NewEvent",
    "Payload",
    "PolicyCleared",
    "PolicySet",
    "PriceCleared",
    "PriceSet",
    "ProviderCreated",
    "ProviderPriceSet",
    "RouteCreated",
    "RouteDeleted",
    "TenantCreated",
    "TenantDeleted",
    "TenantRenamed",
    "decode_payload",
    "encode_payload",
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


class ProviderCreated(msgspec.Struct, frozen=True, tag="provider.created"):
    id: str
    name: str
    kind: str
    base_url: str
    api_key_ciphertext: str | None


class RouteCreated(msgspec.Struct, frozen=True, tag="route.created"):
    id: str
    model: str
    provider_id: str
    upstream_model: str
    tenant_ids: tuple[str, ...] | None = None  # None: every tenant may use it


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
    | RouteCreated
    | RouteDeleted
    | PolicySet
    | PolicyCleared
    | PriceSet
    | PriceCleared
    | ProviderPriceSet
    | BudgetExhausted
    | BudgetAlert
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
        RouteCreated,
        RouteDeleted,
        PolicySet,
        PolicyCleared,
        PriceSet,
        PriceCleared,
        ProviderPriceSet,
        BudgetExhausted,
        BudgetAlert,
    )
}


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
