"""Time travel: the state of the world as it was after a given event."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter

from control_plane.api.common import get_store
from control_plane.api.route_views import RouteSpec
from control_plane.authz import PLATFORM_READ, needs
from control_plane.errors import Invalid
from shared.event_log import END
from shared.queries import Q as SHARED_Q
from shared.snapshots import load_state
from shared.state import Policy

__all__ = ["StateController"]


class KeyView(msgspec.Struct):
    id: str
    tenant_id: str
    name: str
    prefix: str


class ProviderView(msgspec.Struct):
    id: str
    name: str
    kind: str
    base_url: str
    options: dict[str, str]
    has_api_key: bool


class TenantView(msgspec.Struct):
    id: str
    name: str


class PolicyView(msgspec.Struct):
    scope: str
    id: str
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None
    models: list[str] | None
    max_tokens: int | None
    budget_usd: float | None
    budget_period: str | None
    soft_budget_usd: float | None


class PriceView(msgspec.Struct):
    model: str
    input_per_million: float
    output_per_million: float


class StateView(msgspec.Struct):
    position: int
    event_count: int
    tenants: list[TenantView]
    keys: list[KeyView]
    providers: list[ProviderView]
    routes: list[RouteSpec]
    policies: list[PolicyView]
    prices: list[PriceView]


class StateController(Controller):
    path = "/state"
    tags = ["audit"]

    @get(
        summary="The state as it was after an event position (default: now)",
        opt=needs(PLATFORM_READ),
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        at: Annotated[
            int | None,
            QueryParameter(ge=0, le=2**63 - 1, description="An event position; absent: now."),
        ] = None,
    ) -> StateView:
        """Folded from the newest snapshot at or before `at`, plus the events up to it.
        Key secrets and hashes and provider keys are never part of it."""
        async with get_store(request).pool.acquire() as conn:
            newest: int = await conn.fetchval(SHARED_Q.latest_position)
            if at is not None and at > newest:
                raise Invalid(
                    f"position {at} is past the newest event ({newest})", field="at", source="query"
                )
            state, _ = await load_state(conn, END if at is None else at)
        return StateView(
            position=state.position,
            event_count=state.event_count,
            tenants=sorted(
                (TenantView(t.id, t.name) for t in state.tenants.values()), key=lambda t: t.id
            ),
            keys=sorted(
                (KeyView(k.id, k.tenant_id, k.name, k.prefix) for k in state.keys.values()),
                key=lambda k: k.id,
            ),
            providers=sorted(
                (
                    ProviderView(
                        p.id,
                        p.name,
                        p.kind,
                        p.base_url,
                        dict(p.options),
                        p.api_key_ciphertext is not None,
                    )
                    for p in state.providers.values()
                ),
                key=lambda p: p.id,
            ),
            routes=sorted(
                (RouteSpec.from_state(r) for r in state.routes.values()), key=lambda r: r.model
            ),
            policies=[
                _policy_view(scope, owner, policy)
                for scope, policies in (
                    ("tenant", state.tenant_policies),
                    ("key", state.key_policies),
                )
                for owner, policy in sorted(policies.items())
            ],
            prices=[
                PriceView(model, p.input_per_million, p.output_per_million)
                for model, p in sorted(state.prices.items())
            ],
        )


def _policy_view(scope: str, owner: str, policy: Policy) -> PolicyView:
    fields = msgspec.structs.asdict(policy)
    models = fields.pop("models")
    return PolicyView(
        scope=scope, id=owner, models=None if models is None else sorted(models), **fields
    )
