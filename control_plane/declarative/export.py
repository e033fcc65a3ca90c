"""The state as a configuration document, without a secret: the same state gives the
same document, everything in a stable order and every default left out."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from control_plane.api.provider_kinds import OPTION_FIELDS
from control_plane.api.route_inputs import BreakerIn, RetryIn, TimeoutsIn
from control_plane.declarative.document import (
    DeploymentDoc,
    Document,
    ModelPriceDoc,
    PolicyDoc,
    PricesDoc,
    ProviderDoc,
    ProviderPriceDoc,
    RouteDoc,
    TenantDoc,
)
from control_plane.declarative.secret_env import SECRET_ENV, env_names
from shared.routing import BreakerPolicy, Deployment, RetryPolicy, Timeouts
from shared.secrets import SecretBox, SecretKeyError
from shared.state import AwsCredentials, Policy, Provider, Route, State

__all__ = ["export", "policy_doc", "secret_fields"]

_IN_TYPES: dict[type, type] = {RetryPolicy: RetryIn, BreakerPolicy: BreakerIn, Timeouts: TimeoutsIn}


def export(state: State, box: SecretBox) -> Document:
    providers = {p.id: p.name for p in state.providers.values()}
    tenants = {t.id: t.name for t in state.tenants.values()}
    variables = env_names(providers.values())
    return Document(
        tenants=[
            TenantDoc(name=t.name, policy=policy_doc(state.tenant_policies.get(t.id)))
            for t in sorted(state.tenants.values(), key=lambda t: t.name)
        ],
        providers=[
            _provider(p, box, variables)
            for p in sorted(state.providers.values(), key=lambda p: p.name)
        ],
        routes=[
            _route(r, tenants, providers)
            for r in sorted(state.routes.values(), key=lambda r: r.model)
        ],
        prices=PricesDoc(
            models=[
                ModelPriceDoc(model, p.input_per_million, p.output_per_million)
                for model, p in sorted(state.prices.items())
            ],
            providers=sorted(
                (
                    ProviderPriceDoc(providers[pid], p.input_per_million, p.output_per_million)
                    for pid, p in state.provider_prices.items()
                    if pid in providers
                ),
                key=lambda p: p.provider,
            ),
        ),
    )


def policy_doc(policy: Policy | None) -> PolicyDoc | None:
    if policy is None:
        return None
    fields: dict[str, Any] = msgspec.structs.asdict(policy)
    if policy.models is not None:
        fields["models"] = sorted(policy.models)
    return PolicyDoc(**fields)


def secret_fields(provider: Provider, box: SecretBox) -> tuple[str, ...]:
    """The secret fields the provider has (for `bedrock`, its AWS credentials' parts)."""
    ciphertext = provider.api_key_ciphertext
    if ciphertext is None:
        return ()
    if provider.kind != "bedrock":
        return ("api_key",)
    fields: tuple[str, ...] = ("aws_access_key_id", "aws_secret_access_key")
    try:
        if AwsCredentials.from_secret(box.decrypt(ciphertext)).session_token is not None:
            fields += ("aws_session_token",)
    except (SecretKeyError, msgspec.DecodeError):
        pass  # unreadable here: it cannot be sent upstream either
    return fields


def _provider(
    provider: Provider, box: SecretBox, variables: dict[tuple[str, str], str]
) -> ProviderDoc:
    options = {name: value for name, value in provider.options if name in OPTION_FIELDS}
    envs = {
        SECRET_ENV[field]: variables[provider.name, field] for field in secret_fields(provider, box)
    }
    return ProviderDoc(
        name=provider.name,
        kind=provider.kind,  # type: ignore[arg-type]  # a kind this build knows
        base_url=provider.base_url,
        **options,
        **envs,
    )


def _route(route: Route, tenants: dict[str, str], providers: dict[str, str]) -> RouteDoc:
    allowed = None
    if route.tenant_ids is not None:  # a deleted tenant's id is no longer anyone's
        allowed = sorted(tenants[t] for t in route.tenant_ids if t in tenants)
    deployments = sorted(
        (_deployment(d, providers) for d in route.deployments),
        key=lambda d: (d.priority, d.provider, d.upstream_model),
    )
    return RouteDoc(
        model=route.model,
        tenants=allowed,
        strategy=route.strategy,  # type: ignore[arg-type]  # one of STRATEGIES
        deployments=deployments,
        retry=_changed(route.retry, RetryPolicy()),
        breaker=_changed(route.breaker, BreakerPolicy()),
        continuation=route.continuation,
        context_fallback=route.context_fallback,
    )


def _deployment(deployment: Deployment, providers: dict[str, str]) -> DeploymentDoc:
    return DeploymentDoc(
        provider=providers.get(deployment.provider_id, deployment.provider_id),
        upstream_model=deployment.upstream_model,
        weight=deployment.weight,
        priority=deployment.priority,
        rpm=deployment.rpm,
        tpm=deployment.tpm,
        timeouts=_changed(deployment.timeouts, Timeouts()),
        continuation=deployment.continuation,
    )


def _changed(value: Any, default: Any) -> Any:
    """The fields of `value` that differ from `default`, as the matching `*In` struct of
    the routes API (the document's type for it); UNSET when none does."""
    changed = {
        name: getattr(value, name)
        for name in value.__struct_fields__
        if getattr(value, name) != getattr(default, name)
    }
    if not changed:
        return UNSET
    return msgspec.convert(changed, _IN_TYPES[type(value)])
