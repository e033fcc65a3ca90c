"""What the routes API accepts: a route's settings and deployments, each field checked
by its type. A field left out keeps its current value (or, on creation, the default
of `shared.routing`); nested objects (`timeouts`, `retry`, `breaker`) merge field by
field the same way. `merged` applies one onto the other."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from control_plane.api.common import ModelName

__all__ = [
    "MAX_DEPLOYMENTS",
    "SETTINGS_FIELDS",
    "BreakerIn",
    "DeploymentChange",
    "DeploymentIn",
    "RetryIn",
    "RouteIn",
    "RouteSettingsIn",
    "Strategy",
    "TimeoutsIn",
    "merged",
]

S = TypeVar("S", bound=msgspec.Struct)

MAX_DEPLOYMENTS = 64
# The names of shared.routing.STRATEGIES (a test keeps the two equal).
Strategy = Literal["weighted", "least_in_flight", "lowest_latency"]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
Pause = Annotated[float, msgspec.Meta(ge=0, le=3_600)]
Weight = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Priority = Annotated[int, msgspec.Meta(ge=0, le=1_000)]
Quota = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
TenantIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=10_000)]


class _Change(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every field optional: absent (UNSET) means unchanged."""


class TimeoutsIn(_Change):
    """Seconds, each > 0 (see `shared.routing.Timeouts`)."""

    connect: Seconds | UnsetType = UNSET
    first_token: Seconds | UnsetType = UNSET
    idle: Seconds | UnsetType = UNSET
    response: Seconds | UnsetType = UNSET
    total: Seconds | UnsetType = UNSET


class RetryIn(_Change):
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] | UnsetType = UNSET
    deadline: Seconds | UnsetType = UNSET
    backoff: Pause | UnsetType = UNSET
    max_backoff: Pause | UnsetType = UNSET
    max_retry_after: Pause | UnsetType = UNSET


class BreakerIn(_Change):
    failures: Count | UnsetType = UNSET
    ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] | UnsetType = UNSET
    window: Seconds | UnsetType = UNSET
    min_requests: Count | UnsetType = UNSET
    cooldown: Seconds | UnsetType = UNSET


class DeploymentChange(_Change):
    """A change to a deployment; `rpm`, `tpm` and `continuation` take null (no quota of
    its own; as the provider kind says)."""

    provider_id: uuid.UUID | UnsetType = UNSET
    upstream_model: ModelName | UnsetType = UNSET
    weight: Weight | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    rpm: Quota | UnsetType | None = UNSET
    tpm: Quota | UnsetType | None = UNSET
    timeouts: TimeoutsIn | UnsetType = UNSET
    continuation: bool | UnsetType | None = UNSET


class DeploymentIn(DeploymentChange, kw_only=True):
    """A new deployment: an upstream model at a provider, and how to use it."""

    provider_id: uuid.UUID
    upstream_model: ModelName


class RouteSettingsIn(_Change):
    """A route's settings (the body of `PATCH /routes/{id}`). `tenant_ids: null`: every
    tenant; `context_fallback: null`: none."""

    strategy: Strategy | UnsetType = UNSET
    tenant_ids: TenantIds | UnsetType | None = UNSET
    retry: RetryIn | UnsetType = UNSET
    breaker: BreakerIn | UnsetType = UNSET
    continuation: bool | UnsetType = UNSET
    context_fallback: ModelName | UnsetType | None = UNSET


SETTINGS_FIELDS = RouteSettingsIn.__struct_fields__


class RouteIn(RouteSettingsIn, kw_only=True):
    """A new route: a public model name, its deployments and its settings. The older
    shape, `provider_id` and `upstream_model` instead of `deployments`, is a route of
    one deployment."""

    model: ModelName
    deployments: (
        Annotated[list[DeploymentIn], msgspec.Meta(min_length=1, max_length=MAX_DEPLOYMENTS)]
        | UnsetType
    ) = UNSET
    provider_id: uuid.UUID | None = None
    upstream_model: ModelName | None = None  # null: the public model name


def merged(base: S, change: msgspec.Struct, fields: Iterable[str] | None = None) -> S:
    """`base` with the fields that `change` sets (all of them, or those in `fields`);
    nested changes merge into the nested value. Ids become strings, lists tuples."""
    updates: dict[str, Any] = {}
    for name in change.__struct_fields__ if fields is None else fields:
        value = getattr(change, name)
        if value is UNSET:
            continue
        if isinstance(value, msgspec.Struct):
            value = merged(getattr(base, name), value)
        updates[name] = _stored(value)
    return msgspec.structs.replace(base, **updates)


def _stored(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return tuple(_stored(v) for v in value)
    return value
