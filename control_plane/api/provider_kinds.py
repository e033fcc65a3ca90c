"""What the providers API accepts, kind by kind.

Each kind says whether `base_url` has a default, which credentials it takes (an API
key, or for `bedrock` AWS keys) and which options, with their defaults. A body is
checked against its kind: at creation a field the kind needs but lacks, or takes
but does not know, is a `400` naming the field (the shape of the body alone says
so); in a change, where the provider's kind comes from the state, the same is a
`422`. Options are stored with their defaults filled in, so a provider keeps the
API version it was created with."""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, UnsetType

from control_plane.api.common import Name
from control_plane.errors import AdminError, BadRequest, Invalid
from shared.state import AwsCredentials
from shared.state import Provider as StateProvider

__all__ = [
    "AWS_FIELDS",
    "KINDS",
    "OPTION_FIELDS",
    "SECRET_FIELDS",
    "KindSpec",
    "ProviderChange",
    "ProviderIn",
    "ProviderKind",
    "ProviderSettingsIn",
    "changed_settings",
    "checked_base_url",
    "new_settings",
    "secret_of",
]

ProviderKind = Literal["openai", "azure_openai", "anthropic", "gemini", "bedrock"]
Options = tuple[tuple[str, str], ...]

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
ApiKeyIn = Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=r"^[\x21-\x7e]+$")]
# an API version such as 2024-10-21 or 2025-04-01-preview
Version = Annotated[
    str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
# an AWS region such as us-east-1 (it becomes part of a host name)
Region = Annotated[str, msgspec.Meta(max_length=40, pattern=r"^[a-z]{2}(-[a-z0-9]+)+$")]
AwsKeyId = Annotated[str, msgspec.Meta(min_length=16, max_length=128, pattern=r"^[A-Z0-9]+$")]
SessionToken = Annotated[
    str, msgspec.Meta(min_length=1, max_length=8000, pattern=r"^[\x21-\x7e]+$")
]


class KindSpec(NamedTuple):
    base_url: str | None  # the default (`{region}` filled in); None: it must be given
    credentials: Literal["api_key", "optional_api_key", "aws"]
    options: dict[str, str | None]  # option -> its default; None: it must be given


SPECS: dict[str, KindSpec] = {
    "openai": KindSpec(None, "optional_api_key", {}),
    "azure_openai": KindSpec(None, "api_key", {"api_version": "2024-10-21"}),
    "anthropic": KindSpec(
        "https://api.anthropic.com", "api_key", {"anthropic_version": "2023-06-01"}
    ),
    "gemini": KindSpec("https://generativelanguage.googleapis.com/v1beta", "api_key", {}),
    "bedrock": KindSpec("https://bedrock-runtime.{region}.amazonaws.com", "aws", {"region": None}),
}
KINDS = tuple(SPECS)
OPTION_FIELDS = ("anthropic_version", "api_version", "region")
AWS_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
SECRET_FIELDS = frozenset({"api_key", *AWS_FIELDS})


class ProviderSettingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The settings every kind draws from; which ones apply depends on the kind."""

    base_url: Url | UnsetType = UNSET
    api_key: ApiKeyIn | UnsetType | None = UNSET
    api_version: Version | UnsetType = UNSET  # azure_openai
    anthropic_version: Version | UnsetType = UNSET  # anthropic
    region: Region | UnsetType = UNSET  # bedrock
    aws_access_key_id: AwsKeyId | UnsetType = UNSET  # bedrock, with the next two
    aws_secret_access_key: ApiKeyIn | UnsetType = UNSET
    aws_session_token: SessionToken | UnsetType = UNSET

    def __repr__(self) -> str:  # never print a secret, even by accident
        shown = (
            f"{name}={getattr(self, name)!r}"
            for name in self.__struct_fields__
            if name not in SECRET_FIELDS and getattr(self, name) is not UNSET
        )
        return f"{type(self).__name__}({', '.join(shown)})"


class ProviderIn(ProviderSettingsIn, kw_only=True):
    """A new provider: a name, its kind (default `openai`) and that kind's settings."""

    name: Name
    kind: ProviderKind = "openai"


class ProviderChange(ProviderSettingsIn, kw_only=True):
    """Fields left out stay as they are. `api_key` rotates the key (`null` removes it,
    for `openai` only); AWS credentials are replaced as a whole. `kind` cannot change."""

    name: Name | UnsetType = UNSET
    kind: ProviderKind | UnsetType = UNSET


def checked_base_url(url: str) -> str:
    """`url` without its trailing slash, if it is an http(s) URL without credentials,
    query or fragment (else 422)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise Invalid(f"base_url is not a valid URL: {url!r}", field="base_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"base_url must be an http(s) URL, not {url!r}", field="base_url")
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            "base_url must not carry credentials; give the key as api_key", field="base_url"
        )
    if parts.query or parts.fragment:
        raise Invalid("base_url must not carry a query or a fragment", field="base_url")
    return url.rstrip("/")


def secret_of(data: ProviderSettingsIn) -> str | UnsetType | None:
    """The plaintext to encrypt: the API key, or AWS credentials as JSON (see
    `AwsCredentials`); UNSET when the body gives neither, None to remove the key.
    The access key id and the secret key go together (400 naming the one missing)."""
    if all(getattr(data, name) is UNSET for name in AWS_FIELDS):
        return data.api_key
    if data.aws_access_key_id is UNSET:
        raise BadRequest(
            "AWS credentials go together: aws_access_key_id is missing", field="aws_access_key_id"
        )
    if data.aws_secret_access_key is UNSET:
        raise BadRequest(
            "AWS credentials go together: aws_secret_access_key is missing",
            field="aws_secret_access_key",
        )
    if data.api_key is not UNSET:
        raise BadRequest("give either an api_key or AWS credentials, not both", field="api_key")
    token = None if data.aws_session_token is UNSET else data.aws_session_token
    return AwsCredentials(data.aws_access_key_id, data.aws_secret_access_key, token).to_secret()


def _refuse_foreign(data: ProviderSettingsIn, kind: str, error: type[AdminError]) -> None:
    """Refuse the fields that `kind` does not take."""
    spec = SPECS[kind]
    for name in OPTION_FIELDS:
        if getattr(data, name) is not UNSET and name not in spec.options:
            raise error(f"{name} is not a setting of kind {kind}", field=name)
    if spec.credentials == "aws":
        if data.api_key is not UNSET:
            raise error(
                f"kind {kind} takes aws_access_key_id and aws_secret_access_key"
                " (and aws_session_token), not api_key",
                field="api_key",
            )
        return
    for name in AWS_FIELDS:
        if getattr(data, name) is not UNSET:
            raise error(f"{name} is for kind bedrock; kind {kind} takes an api_key", field=name)


def new_settings(data: ProviderIn) -> tuple[str, Options]:
    """The base URL and options of a new provider; 400 naming the field its kind needs
    and lacks, or takes but does not know."""
    kind, spec = data.kind, SPECS[data.kind]
    _refuse_foreign(data, kind, BadRequest)
    options: dict[str, str] = {}
    for name, default in spec.options.items():
        value = getattr(data, name)
        if value is UNSET:
            if default is None:
                raise BadRequest(f"kind {kind} needs {name}", field=name)
            value = default
        options[name] = value
    if spec.credentials == "aws" and data.aws_access_key_id is UNSET:
        raise BadRequest(
            f"kind {kind} needs aws_access_key_id and aws_secret_access_key",
            field="aws_access_key_id",
        )
    if spec.credentials == "api_key" and data.api_key in (UNSET, None):
        raise BadRequest(f"kind {kind} needs an api_key", field="api_key")
    if data.base_url is not UNSET:
        base_url = checked_base_url(data.base_url)
    elif spec.base_url is None:
        raise BadRequest(f"kind {kind} needs a base_url", field="base_url")
    else:
        base_url = spec.base_url.format(**options)
    return base_url, tuple(sorted(options.items()))


def changed_settings(current: StateProvider, data: ProviderChange) -> tuple[str, Options]:
    """The base URL and options of `current` after `data`; 422 naming a field its kind
    does not take, a key it cannot do without, or another kind. A base URL that was
    the default for the old region follows a new `region`."""
    kind = current.kind
    if data.kind is not UNSET and data.kind != kind:
        raise Invalid(
            f"a provider's kind cannot change (this one is {kind}): create another provider",
            field="kind",
        )
    spec = SPECS.get(kind)
    if spec is None:  # a kind this build does not know: only its name and URL change
        spec = KindSpec(None, "optional_api_key", {})
    _refuse_foreign(data, kind, Invalid)
    if spec.credentials == "api_key" and data.api_key is None:
        raise Invalid(f"kind {kind} needs an api_key: rotate it, do not remove it", field="api_key")
    before = {name: default for name, default in spec.options.items() if default is not None}
    before.update(current.options)
    after = dict(before)
    for name in spec.options:
        value = getattr(data, name)
        if value is not UNSET:
            after[name] = value
    if data.base_url is not UNSET:
        base_url = checked_base_url(data.base_url)
    elif spec.base_url is not None and current.base_url == _default_url(spec.base_url, before):
        base_url = _default_url(spec.base_url, after) or current.base_url
    else:
        base_url = current.base_url
    return base_url, tuple(sorted(after.items()))


def _default_url(template: str, options: dict[str, str]) -> str | None:
    try:
        return template.format(**options)
    except KeyError:  # an option the template needs is not set
        return None
