"""What a document must be on its own, whatever the database holds: names stored as
they would be (see `clean_name`), each at most once, every reference to a name that
the document has, each policy as the policies API would store it, and each variable
named for a secret named for that one secret only. A refusal names the field by its
path in the document."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from control_plane.api.common import clean_name
from control_plane.api.policies import checked_policy
from control_plane.declarative.document import (
    DeploymentDoc,
    Document,
    PricesDoc,
    ProviderDoc,
    RouteDoc,
    TenantDoc,
)
from control_plane.declarative.located import at
from control_plane.declarative.secret_env import SECRET_ENV
from control_plane.errors import BadRequest, Invalid

__all__ = ["checked"]


def checked(doc: Document) -> Document:
    """`doc` with its names cleaned and its policies completed; 400 or 422 naming the
    field at fault."""
    tenants = [_tenant(t, f"tenants[{i}]") for i, t in enumerate(doc.tenants)]
    _unique((t.name for t in tenants), "tenants[{}].name", "tenant")
    providers = [_provider(p, f"providers[{i}]") for i, p in enumerate(doc.providers)]
    _unique((p.name for p in providers), "providers[{}].name", "provider")
    _own_variables(providers)
    tenant_names = {t.name for t in tenants}
    provider_names = {p.name for p in providers}
    routes = [
        _route(r, f"routes[{i}]", tenant_names, provider_names) for i, r in enumerate(doc.routes)
    ]
    _unique((r.model for r in routes), "routes[{}].model", "route for model")
    _fallbacks(routes)
    prices = PricesDoc(
        models=doc.prices.models,
        providers=[
            msgspec.structs.replace(
                p,
                provider=_reference(p.provider, f"prices.providers[{i}].provider", provider_names),
            )
            for i, p in enumerate(doc.prices.providers)
        ],
    )
    _unique((p.model for p in prices.models), "prices.models[{}].model", "price for model")
    _unique((p.provider for p in prices.providers), "prices.providers[{}].provider", "price of")
    return Document(tenants=tenants, providers=providers, routes=routes, prices=prices)


def _tenant(tenant: TenantDoc, path: str) -> TenantDoc:
    name = clean_name(tenant.name, f"{path}.name")
    policy = tenant.policy
    if policy is not None:
        with at(f"{path}.policy"):
            policy = checked_policy(policy)
        if policy.models is not None:
            policy = msgspec.structs.replace(policy, models=sorted(set(policy.models)))
    return msgspec.structs.replace(tenant, name=name, policy=policy)


def _provider(provider: ProviderDoc, path: str) -> ProviderDoc:
    for secret, env in SECRET_ENV.items():
        variable = getattr(provider, env)
        if variable is not None and getattr(provider, secret) is None:
            raise BadRequest(
                f"{env} names ${variable}, whose value the client sends as {secret}"
                " (sluice apply reads it from its environment)",
                field=f"{path}.{secret}",
            )
    return msgspec.structs.replace(provider, name=clean_name(provider.name, f"{path}.name"))


def _own_variables(providers: list[ProviderDoc]) -> None:
    """No variable is named for two secrets (of two providers, or two of one): `sluice
    apply` would send its one value as both, and one provider would silently take the
    other's key. Compared without case, as some systems read variables."""
    named: dict[str, str] = {}
    for i, provider in enumerate(providers):
        for env in SECRET_ENV.values():
            variable = getattr(provider, env)
            if variable is None:
                continue
            field = f"providers[{i}].{env}"
            first = named.setdefault(variable.upper(), field)
            if first != field:
                raise Invalid(
                    f"{field} names ${variable}, which {first} names too: each secret needs a"
                    " variable of its own (two variables may hold the same value)",
                    field=field,
                )


def _route(route: RouteDoc, path: str, tenants: set[str], providers: set[str]) -> RouteDoc:
    allowed = route.tenants
    if allowed is not None:
        refs = (_reference(t, f"{path}.tenants[{j}]", tenants) for j, t in enumerate(allowed))
        allowed = sorted(set(refs))
    deployments = [
        _deployment(d, f"{path}.deployments[{j}]", providers)
        for j, d in enumerate(route.deployments)
    ]
    if route.context_fallback == route.model:
        raise Invalid(
            "context_fallback must name another model than the route's own",
            field=f"{path}.context_fallback",
        )
    return msgspec.structs.replace(route, tenants=allowed, deployments=deployments)


def _deployment(deployment: DeploymentDoc, path: str, providers: set[str]) -> DeploymentDoc:
    provider = _reference(deployment.provider, f"{path}.provider", providers)
    return msgspec.structs.replace(deployment, provider=provider)


def _reference(name: str, field: str, known: set[str]) -> str:
    """A name that must be one of the document's (`field` names a tenant or a provider)."""
    cleaned = clean_name(name, field)
    if cleaned not in known:
        what = "tenant" if ".tenants[" in field else "provider"
        raise Invalid(f"the document has no {what} named {cleaned!r}", field=field)
    return cleaned


def _unique(names: Iterable[str], field: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise Invalid(f"{what} {name!r} is given twice", field=field.format(i))
        seen.add(name)


def _fallbacks(routes: list[RouteDoc]) -> None:
    """Each context fallback names a route of the document, and following them never
    comes back to where it started."""
    index = {r.model: i for i, r in enumerate(routes)}
    for i, route in enumerate(routes):
        field = f"routes[{i}].context_fallback"
        if route.context_fallback is not None and route.context_fallback not in index:
            raise Invalid(
                f"context_fallback: the document has no route for {route.context_fallback!r}",
                field=field,
            )
        seen, model = {route.model}, route.context_fallback
        while model is not None:
            if model in seen:
                raise Invalid(
                    f"context_fallback: following it from {route.model!r} goes round in a circle",
                    field=field,
                )
            seen.add(model)
            model = routes[index[model]].context_fallback
