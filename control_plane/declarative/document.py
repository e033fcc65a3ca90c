"""The configuration document: tenants, providers, routes and prices, each known by its
name (a route by its public model name), so that one file applies to any database.

`sluice apply -f` reads it as YAML, puts the secrets it names in (`api_key_env: VAR`
becomes `api_key: <$VAR>`) and sends it as JSON; `GET /admin/v1/config` writes it
without a secret, naming for each provider the variables its secrets are read from.

A field left out takes its default (for a provider's options, its kind's), not the
current value: the document says the whole configuration. Client keys and admin
tokens are not part of it (they are secrets, made one at a time)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from control_plane.api.common import ModelName, Name
from control_plane.api.policies import PolicyIn
from control_plane.api.prices import PerMillion
from control_plane.api.provider_kinds import (
    ApiKeyIn,
    AwsKeyId,
    ProviderKind,
    Region,
    SessionToken,
    Url,
    Version,
    aws_together,
    kind_variants,
)
from control_plane.api.route_inputs import (
    MAX_DEPLOYMENTS,
    BreakerIn,
    Priority,
    Quota,
    RetryIn,
    Strategy,
    TimeoutsIn,
    Weight,
)
from control_plane.declarative.secret_env import ENV_NAME_LENGTH, SECRET_ENV

__all__ = [
    "SECRET_ENV",
    "DeploymentDoc",
    "Document",
    "ModelPriceDoc",
    "PolicyDoc",
    "PricesDoc",
    "ProviderDoc",
    "ProviderPriceDoc",
    "RouteDoc",
    "TenantDoc",
]

# A shell variable's name.
EnvName = Annotated[
    str, msgspec.Meta(max_length=ENV_NAME_LENGTH, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]


class _Item(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Fields at their default are left out of an export."""


class PolicyDoc(PolicyIn, omit_defaults=True):
    """A tenant's policy, as `PUT /tenants/{id}/policy` takes it."""


class TenantDoc(_Item):
    name: Name
    policy: PolicyDoc | None = None  # none: no limits


class ProviderDoc(_Item):
    """A provider and its kind's settings (see `provider_kinds`). Its secrets are named
    by variable (`*_env`); the client sends their values in the secret fields, which an
    export never holds. An existing provider given no secret keeps its own."""

    # for the OpenAPI document: what each kind takes, AWS credentials together, and a
    # variable named only with its value (`check._provider`)
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "allOf": [
            {"anyOf": kind_variants(document=True)},
            {"anyOf": aws_together(document=True)},
            *(
                {
                    "anyOf": [
                        {"properties": {env: {"type": "null"}}},
                        {"required": [secret], "properties": {secret: {"type": "string"}}},
                    ]
                }
                for secret, env in SECRET_ENV.items()
            ),
        ]
    }

    name: Name
    kind: ProviderKind
    base_url: Url | None = None  # none: the kind's default
    api_version: Version | None = None  # azure_openai
    anthropic_version: Version | None = None  # anthropic
    region: Region | None = None  # bedrock
    api_key_env: EnvName | None = None
    aws_access_key_id_env: EnvName | None = None
    aws_secret_access_key_env: EnvName | None = None
    aws_session_token_env: EnvName | None = None
    api_key: ApiKeyIn | None = None
    aws_access_key_id: AwsKeyId | None = None
    aws_secret_access_key: ApiKeyIn | None = None
    aws_session_token: SessionToken | None = None

    def __repr__(self) -> str:  # never print a secret, even by accident
        shown = (
            f"{name}={getattr(self, name)!r}"
            for name in self.__struct_fields__
            if name not in SECRET_ENV and getattr(self, name) is not None
        )
        return f"ProviderDoc({', '.join(shown)})"


class DeploymentDoc(_Item):
    """One upstream of a route: a provider (by name) and its model name there."""

    provider: Name
    upstream_model: ModelName
    weight: Weight = 1
    priority: Priority = 0
    rpm: Quota | None = None
    tpm: Quota | None = None
    timeouts: TimeoutsIn | UnsetType = UNSET
    continuation: bool | None = None


class RouteDoc(_Item, kw_only=True):
    """A public model name and its deployments. `tenants`: the tenants (by name) that
    may use it; left out, every tenant."""

    model: ModelName
    tenants: list[Name] | None = None
    strategy: Strategy = "weighted"
    deployments: Annotated[
        list[DeploymentDoc], msgspec.Meta(min_length=1, max_length=MAX_DEPLOYMENTS)
    ]
    retry: RetryIn | UnsetType = UNSET
    breaker: BreakerIn | UnsetType = UNSET
    continuation: bool = False
    context_fallback: ModelName | None = None


class ModelPriceDoc(msgspec.Struct, forbid_unknown_fields=True):
    model: ModelName
    input_per_million: PerMillion
    output_per_million: PerMillion


class ProviderPriceDoc(msgspec.Struct, forbid_unknown_fields=True):
    """A provider's default price, for the models without one of their own."""

    provider: Name
    input_per_million: PerMillion
    output_per_million: PerMillion


class PricesDoc(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    models: list[ModelPriceDoc] = []
    providers: list[ProviderPriceDoc] = []


class Document(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole configuration. Every section must be given (an empty one as `[]`): what
    the database has and the document has not is removed, so a section left out by
    mistake must not read as "remove them all"."""

    tenants: list[TenantDoc]
    providers: list[ProviderDoc]
    routes: list[RouteDoc]
    prices: PricesDoc
