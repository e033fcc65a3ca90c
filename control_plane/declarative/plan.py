"""Planning a document against the state: what to create, change and remove, and the
events for it, made by the admin API's own commands (so they refuse what it refuses).

The steps run in an order in which each one's references exist: tenants and providers
first, then routes (removed ones first; new ones before the routes that fall back to
them), then what is left of the old providers and tenants, then prices."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from control_plane.api.policies import clear_policy, set_policy
from control_plane.api.prices import (
    PriceIn,
    clear_price,
    price_stream,
    set_price,
    set_provider_price,
)
from control_plane.api.provider_kinds import (
    AWS_FIELDS,
    ProviderChange,
    ProviderIn,
    ProviderSettingsIn,
    Settings,
    declared_settings,
    require_credentials,
    secret_of,
)
from control_plane.api.providers import (
    change_provider,
    create_provider,
    delete_provider,
    provider_stream,
)
from control_plane.api.tenants import create_tenant, delete_tenant, tenant_stream
from control_plane.declarative.changes import (
    HIDDEN,
    Action,
    Change,
    FieldChange,
    Plan,
    added,
    differences,
)
from control_plane.declarative.check import checked
from control_plane.declarative.document import SECRET_ENV, Document, PolicyDoc, ProviderDoc
from control_plane.declarative.export import policy_doc
from control_plane.declarative.located import at, located
from control_plane.declarative.plan_routes import plan_routes
from control_plane.errors import Invalid
from control_plane.store import Step
from shared.secrets import SecretBox, SecretKeyError
from shared.state import AwsCredentials, Provider, State

__all__ = ["plan"]

ROTATED = "(new secret)"


def plan(state: State, document: Document, box: SecretBox) -> Plan:
    """What it takes to make `state` what `document` says; 400 or 422 naming the field of
    the document at fault. Secrets are encrypted with `box` (and the stored ones opened
    with it, to tell whether the document's differ)."""
    doc = checked(document)
    out = Plan()
    tenants = _tenants(out, state, doc)
    providers = _providers(out, state, doc, box)
    _provider_prices(out, state, doc, providers)
    plan_routes(out, state, doc, tenants, providers)
    _removals(out, state, doc)
    _prices(out, state, doc)
    return out


def _tenants(out: Plan, state: State, doc: Document) -> dict[str, str]:
    """The id of each of the document's tenants, by name (made up for new ones)."""
    existing = {t.name: t.id for t in state.tenants.values()}
    ids: dict[str, str] = {}
    for i, tenant in enumerate(doc.tenants):
        path, name = f"tenants[{i}]", tenant.name
        wanted = _policy(tenant.policy)
        tenant_id = existing.get(name)
        if tenant_id is None:
            tenant_id = str(uuid.uuid4())
            steps = [
                Step(tenant_stream(tenant_id), located(create_tenant(tenant_id, name), path), 0)
            ]
            if tenant.policy is not None:
                steps.append(_policy_step(tenant_id, tenant.policy, path))
            fields = added({} if wanted is None else {"policy": wanted})
            out.add(Change("create", "tenant", name, fields), *steps)
        else:
            current = _policy(policy_doc(state.tenant_policies.get(tenant_id)))
            if current != wanted:
                fields = differences({"policy": current}, {"policy": wanted})
                step = _policy_step(tenant_id, tenant.policy, path)
                out.add(Change("change", "tenant", name, fields), step)
        ids[name] = tenant_id
    return ids


def _policy(policy: PolicyDoc | None) -> dict[str, Any] | None:
    return None if policy is None else msgspec.to_builtins(policy)  # limits set, no more


def _policy_step(tenant_id: str, policy: PolicyDoc | None, path: str) -> Step:
    decide = (
        clear_policy("tenant", tenant_id)
        if policy is None
        else set_policy("tenant", tenant_id, policy)
    )
    return Step(tenant_stream(tenant_id), located(decide, f"{path}.policy"))


def _providers(out: Plan, state: State, doc: Document, box: SecretBox) -> dict[str, str]:
    """The id of each of the document's providers, by name (made up for new ones)."""
    existing = {p.name: p for p in state.providers.values()}
    ids: dict[str, str] = {}
    for i, provider in enumerate(doc.providers):
        path, name, kind = f"providers[{i}]", provider.name, provider.kind
        data = _provider_in(provider)
        with at(path):
            secret = secret_of(data)
        current = existing.get(name)
        if current is None:
            provider_id = str(uuid.uuid4())
            with at(path):
                settings = declared_settings(data, kind)
                # a provider the document names keeps its credentials if it exists, so
                # that a new one needs them depends on the state: 422
                require_credentials(data, kind, Invalid)
            sealed = None if isinstance(secret, UnsetType | None) else box.encrypt(secret)
            fields = added(_settings_view(kind, settings))
            fields += [FieldChange(f, None, HIDDEN) for f in SECRET_ENV if getattr(provider, f)]
            decide = create_provider(provider_id, name, kind, settings, sealed)
            step = Step(provider_stream(provider_id), located(decide, path), 0)
            out.add(Change("create", "provider", name, fields), step)
        else:
            provider_id = current.id
            if current.kind != kind:
                raise Invalid(
                    f"provider {name!r} is of kind {current.kind}, and a kind cannot change:"
                    " give the new one another name",
                    field=f"{path}.kind",
                )
            with at(path):
                base_url, options = declared_settings(data, kind)
            before = _settings_view(kind, (current.base_url, current.options))
            fields = differences(before, _settings_view(kind, (base_url, options)))
            ciphertext, rotated = _rotation(current, secret, box)
            if fields or rotated:
                change = msgspec.convert(
                    {"kind": kind, "base_url": base_url, **dict(options)}, ProviderChange
                )
                decide = change_provider(provider_id, change, None, ciphertext)
                step = Step(provider_stream(provider_id), located(decide, path))
                out.add(Change("change", "provider", name, fields + rotated), step)
        ids[name] = provider_id
    return ids


def _provider_in(provider: ProviderDoc) -> ProviderIn:
    """The document's provider as the providers API takes it."""
    given = {
        name: value
        for name in ProviderSettingsIn.__struct_fields__
        if (value := getattr(provider, name)) is not None
    }
    return ProviderIn(name=provider.name, kind=provider.kind, **given)


def _settings_view(kind: str, settings: Settings) -> dict[str, Any]:
    base_url, options = settings
    return {"kind": kind, "base_url": base_url, **dict(options)}


def _rotation(
    current: Provider, secret: str | UnsetType | None, box: SecretBox
) -> tuple[str | UnsetType, list[FieldChange]]:
    """The new ciphertext (UNSET: keep the stored one) and the secret fields it changes."""
    if isinstance(secret, UnsetType | None):
        return UNSET, []
    stored = _opened(current.api_key_ciphertext, box)
    if stored == secret:
        return UNSET, []
    old = None if current.api_key_ciphertext is None else HIDDEN
    names = ["api_key"]
    if current.kind == "bedrock":
        names = _changed_credentials(stored, secret)
    return box.encrypt(secret), [FieldChange(n, old, ROTATED) for n in names]


def _opened(ciphertext: str | None, box: SecretBox) -> str | None:
    if ciphertext is None:
        return None
    try:
        return box.decrypt(ciphertext)
    except SecretKeyError:  # sealed under another secret key: replace it
        return None


def _changed_credentials(stored: str | None, secret: str) -> list[str]:
    new = AwsCredentials.from_secret(secret)
    try:
        old = None if stored is None else AwsCredentials.from_secret(stored)
    except msgspec.DecodeError:
        old = None
    parts = ("access_key_id", "secret_access_key", "session_token")
    return [
        field
        for field, part in zip(AWS_FIELDS, parts, strict=True)
        if getattr(new, part) != (None if old is None else getattr(old, part))
    ]


def _provider_prices(out: Plan, state: State, doc: Document, providers: dict[str, str]) -> None:
    priced = set()
    for i, price in enumerate(doc.prices.providers):
        provider_id, wanted = providers[price.provider], _price(price)
        priced.add(provider_id)
        stored = state.provider_prices.get(provider_id)
        current = None if stored is None else _price(stored)
        if current != wanted:
            action: Action = "create" if current is None else "change"
            fields = differences(current or {}, wanted)
            decide = set_provider_price(provider_id, msgspec.convert(wanted, PriceIn))
            step = Step(provider_stream(provider_id), located(decide, f"prices.providers[{i}]"))
            out.add(Change(action, "provider_price", price.provider, fields), step)
    for name, provider_id in sorted(providers.items()):
        if provider_id in state.provider_prices and provider_id not in priced:
            raise Invalid(
                f"provider {name!r} has a default price, which can be replaced but not"
                " removed: give it in prices.providers, or remove the provider",
                field="prices.providers",
            )


def _price(price: Any) -> dict[str, float]:
    return {
        "input_per_million": price.input_per_million,
        "output_per_million": price.output_per_million,
    }


def _removals(out: Plan, state: State, doc: Document) -> None:
    """Providers, then tenants, that the document does not have (the routes that used
    them are gone or changed by now)."""
    providers = {p.name for p in doc.providers}
    for provider in sorted(state.providers.values(), key=lambda p: p.name):
        if provider.name not in providers:
            step = Step(provider_stream(provider.id), delete_provider(provider.id))
            out.add(Change("remove", "provider", provider.name), step)
    tenants = {t.name for t in doc.tenants}
    leaving = [t for t in state.tenants.values() if t.name not in tenants]
    if not leaving:
        return
    # what ends with each tenant: its keys and its admin tokens
    keys = Counter(k.tenant_id for k in state.keys.values())
    tokens = Counter(t.tenant_id for t in state.admin_tokens.values())
    for tenant in sorted(leaving, key=lambda t: t.name):
        ending = {"keys": keys[tenant.id] or None, "admin_tokens": tokens[tenant.id] or None}
        fields = differences(ending, {})
        step = Step(tenant_stream(tenant.id), delete_tenant(tenant.id))
        out.add(Change("remove", "tenant", tenant.name, fields), step)


def _prices(out: Plan, state: State, doc: Document) -> None:
    models = set()
    for i, price in enumerate(doc.prices.models):
        models.add(price.model)
        stored = state.prices.get(price.model)
        current, wanted = None if stored is None else _price(stored), _price(price)
        if current != wanted:
            action: Action = "create" if current is None else "change"
            decide = set_price(price.model, msgspec.convert(wanted, PriceIn))
            step = Step(price_stream(price.model), located(decide, f"prices.models[{i}]"))
            out.add(Change(action, "price", price.model, differences(current or {}, wanted)), step)
    for model in sorted(state.prices):
        if model not in models:
            fields = differences(_price(state.prices[model]), {})
            step = Step(price_stream(model), clear_price(model))
            out.add(Change("remove", "price", model, fields), step)
