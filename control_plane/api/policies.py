"""Policies on tenants and keys: rate, token, concurrency, model, max_tokens and
budget limits. A key's policy narrows its tenant's: both are enforced, each on
its own counters, so a key can never get more than its tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from control_plane.api.common import ModelName, actor_of, get_store
from control_plane.authz import KEY_READ, KEY_WRITE, TENANT_PLATFORM_WRITE, TENANT_READ, needs
from control_plane.errors import Invalid, NotFound
from control_plane.queries import Q
from control_plane.store import Decide
from shared.events import Payload, PolicyCleared, PolicySet
from shared.state import State

__all__ = [
    "KeyPolicyController",
    "PolicyIn",
    "TenantPolicyController",
    "checked_policy",
    "clear_policy",
    "set_policy",
]

Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
Usd = Annotated[float, msgspec.Meta(ge=0, le=1_000_000_000)]
Period = Literal["day", "month", "total"]
Scope = Literal["tenant", "key"]


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    """Every field is optional; an absent one means no limit of that kind."""

    rpm: Count | None = None
    tpm: Count | None = None
    max_concurrent: Count | None = None
    models: Annotated[list[ModelName], msgspec.Meta(max_length=1000)] | None = None
    max_tokens: Count | None = None
    budget_usd: Usd | None = None
    budget_period: Period | None = None  # UTC calendar day or month, or all time
    soft_budget_usd: Usd | None = None  # an alert (an event in the audit log) at this spend


P = TypeVar("P", bound=PolicyIn)


class Policy(PolicyIn):
    updated_at: datetime | None = None


def checked_policy(data: P) -> P:
    """`data` as it is stored (a budget's period defaults to the month); 422 naming the
    field when its budgets do not go together."""
    has_budget = data.budget_usd is not None or data.soft_budget_usd is not None
    if data.budget_period is not None and not has_budget:
        raise Invalid("budget_period needs budget_usd or soft_budget_usd", field="budget_period")
    if (
        data.budget_usd is not None
        and data.soft_budget_usd is not None
        and data.soft_budget_usd > data.budget_usd
    ):
        raise Invalid("soft_budget_usd must not exceed budget_usd", field="soft_budget_usd")
    if has_budget and data.budget_period is None:
        return msgspec.structs.replace(data, budget_period="month")
    return data


def _owner_exists(state: State, scope: Scope, owner: str) -> None:
    owners = state.tenants if scope == "tenant" else state.keys
    if owner not in owners:
        raise NotFound(f"{scope} {owner} does not exist")


async def _read(request: Request[Any, Any, Any], scope: Scope, owner: uuid.UUID) -> Policy:
    row = await get_store(request).pool.fetchrow(Q.get_policy, scope, owner)
    if row is None:
        raise NotFound(f"{scope} {owner} has no policy")
    return msgspec.convert(
        {**msgspec.json.decode(row["policy"]), "updated_at": row["updated_at"]}, Policy
    )


def set_policy(scope: Scope, owner: str, data: PolicyIn) -> Decide:
    """Replace the policy of the tenant or key `owner` with `data` (see `checked_policy`);
    the events go on the owner's stream, `tenant:<id>` or `key:<id>`."""

    def decide(state: State) -> list[Payload]:
        _owner_exists(state, scope, owner)
        fields = msgspec.structs.asdict(data)
        if fields["models"] is not None:
            fields["models"] = tuple(fields["models"])
        return [PolicySet(scope=scope, id=owner, **fields)]

    return decide


def clear_policy(scope: Scope, owner: str) -> Decide:
    def decide(state: State) -> list[Payload]:
        _owner_exists(state, scope, owner)
        policies = state.tenant_policies if scope == "tenant" else state.key_policies
        if owner not in policies:
            raise NotFound(f"{scope} {owner} has no policy")
        return [PolicyCleared(scope=scope, id=owner)]

    return decide


async def _put(
    request: Request[Any, Any, Any], scope: Scope, owner: uuid.UUID, data: PolicyIn
) -> Policy:
    decide, oid = set_policy(scope, str(owner), checked_policy(data)), str(owner)
    await get_store(request).append(f"{scope}:{oid}", decide, actor=actor_of(request))
    return await _read(request, scope, owner)


async def _delete(request: Request[Any, Any, Any], scope: Scope, owner: uuid.UUID) -> None:
    oid = str(owner)
    decide = clear_policy(scope, oid)
    await get_store(request).append(f"{scope}:{oid}", decide, actor=actor_of(request))


class TenantPolicyController(Controller):
    path = "/tenants/{tenant_id:uuid}/policy"
    tags = ["policies"]

    @put(
        summary="Set a tenant's policy (replaces the whole policy)",
        opt=needs(TENANT_PLATFORM_WRITE),
    )
    async def set(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[PolicyIn],
    ) -> Policy:
        return await _put(request, "tenant", tenant_id, data)

    @get(summary="Get a tenant's policy", opt=needs(TENANT_READ))
    async def read(self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID]) -> Policy:
        return await _read(request, "tenant", tenant_id)

    @delete(
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove a tenant's policy (no limits)",
        opt=needs(TENANT_PLATFORM_WRITE),
    )
    async def remove(self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID]) -> None:
        await _delete(request, "tenant", tenant_id)


class KeyPolicyController(Controller):
    path = "/keys/{key_id:uuid}/policy"
    tags = ["policies"]

    @put(summary="Set a key's policy (within its tenant's: both apply)", opt=needs(KEY_WRITE))
    async def set(
        self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID], data: JSONBody[PolicyIn]
    ) -> Policy:
        return await _put(request, "key", key_id, data)

    @get(summary="Get a key's policy", opt=needs(KEY_READ))
    async def read(self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID]) -> Policy:
        return await _read(request, "key", key_id)

    @delete(status_code=HTTP_204_NO_CONTENT, summary="Remove a key's policy", opt=needs(KEY_WRITE))
    async def remove(self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID]) -> None:
        await _delete(request, "key", key_id)
