"""What the providers API accepts, kind by kind.

Each kind says whether `base_url` has a default, which credentials it takes (an API
key, or for `bedrock` AWS keys) and which options, with their defaults. A body is
checked against its kind: at creation a field the kind needs but lacks, or takes
but does not know, is a `400` naming the field (the shape of the body alone says
so); in a change, where the provider's kind comes from the state, the same is a
`422`. Options are stored with their defaults filled in, so a provider keeps the
API version it was created with."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal, NamedTuple
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, UnsetType

from control_plane.api.common import END, SPACE, Name
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
    "Settings",
    "aws_together",
    "changed_settings",
    "checked_base_url",
    "declared_settings",
    "kind_variants",
    "new_settings",
    "require_credentials",
    "secret_of",
]

ProviderKind = Literal["openai", "azure_openai", "anthropic", "gemini", "bedrock"]
Options = tuple[tuple[str, str], ...]
Settings = tuple[str, Options]  # a provider's base URL and options

# An http(s) URL without credentials, query or fragment: a host (a name, or an IPv6
# address in brackets), a port if any, a path if any. `checked_base_url` parses it.
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
URL = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:\[[0-9A-Fa-f:.]+\]|[^{SPACE}\x00-\x1f\x7f/?#@:\[\]\\]+)"
    + _PORT
    + rf"(?:/[^{SPACE}\x00-\x1f\x7f?#]*)?"
    + END
)
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=URL)]
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
DEFAULT_KIND: Final = "openai"


_SETTINGS = ("base_url", "api_key", *OPTION_FIELDS, *AWS_FIELDS)


def kind_variants(*, document: bool = False) -> list[dict[str, Any]]:
    """For the OpenAPI document: what each kind takes and needs, as `new_settings`
    checks it; `anyOf` them. In a configuration `document` a field left null is left
    out, and credentials are not needed (a provider that exists keeps its own)."""
    absent: Any = {"type": "null"} if document else False
    variants = []
    for kind, spec in SPECS.items():
        aws = spec.credentials == "aws"
        takes = {"base_url", *spec.options, *(AWS_FIELDS if aws else ("api_key",))}
        properties: dict[str, Any] = {name: absent for name in _SETTINGS if name not in takes}
        needs = [] if spec.base_url else ["base_url"]
        needs += [option for option, default in spec.options.items() if default is None]
        if not document:
            needs += ["aws_access_key_id", "aws_secret_access_key"] if aws else []
            needs += ["api_key"] if spec.credentials == "api_key" else []
        properties |= {name: {"type": "string"} for name in needs}
        properties["kind"] = {"const": kind}
        required = needs if kind == DEFAULT_KIND and not document else ["kind", *needs]
        variants.append({"title": kind, "properties": properties, "required": required})
    return variants


def aws_together(*, document: bool = False) -> list[dict[str, Any]]:
    """For the OpenAPI document, as `secret_of` checks it: AWS credentials go together
    (a key id and its secret, maybe a session token), and never with an api_key."""
    absent: Any = {"type": "null"} if document else False
    given = {"type": "string"}
    return [
        {"title": "no AWS credentials", "properties": {name: absent for name in AWS_FIELDS}},
        {
            "title": "AWS credentials",
            "required": ["aws_access_key_id", "aws_secret_access_key"],
            "properties": {"aws_access_key_id": given, "aws_secret_access_key": given}
            | {"api_key": absent},
        },
    ]


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

    json_schema_extra: ClassVar[dict[str, Any]] = {"anyOf": kind_variants()}

    name: Name
    kind: ProviderKind = DEFAULT_KIND


class ProviderChange(ProviderSettingsIn, kw_only=True):
    """Fields left out stay as they are. `api_key` rotates the key (`null` removes it,
    for `openai` only); AWS credentials are replaced as a whole. `kind` cannot change."""

    json_schema_extra: ClassVar[dict[str, Any]] = {"anyOf": aws_together()}

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


def new_settings(data: ProviderIn) -> Settings:
    """The base URL and options of a new provider; 400 naming the field its kind needs
    and lacks, or takes but does not know."""
    kind = data.kind
    _refuse_foreign(data, kind, BadRequest)
    options = _options(data, kind)
    require_credentials(data, kind, BadRequest)
    return _base_url(data, kind, options), tuple(sorted(options.items()))


def require_credentials(data: ProviderSettingsIn, kind: str, error: type[AdminError]) -> None:
    """Refuse a new provider without the credentials its kind needs."""
    spec = SPECS[kind]
    if spec.credentials == "aws" and data.aws_access_key_id is UNSET:
        raise error(
            f"kind {kind} needs aws_access_key_id and aws_secret_access_key",
            field="aws_access_key_id",
        )
    if spec.credentials == "api_key" and data.api_key in (UNSET, None):
        raise error(f"kind {kind} needs an api_key", field="api_key")


def declared_settings(data: ProviderSettingsIn, kind: str) -> Settings:
    """The base URL and options that `data` describes in full for a provider of `kind`:
    what it leaves out is the kind's default (not the provider's current value, as in
    `changed_settings`). Credentials are not looked at. 400 naming the field, as
    `new_settings`."""
    _refuse_foreign(data, kind, BadRequest)
    options = _options(data, kind)
    return _base_url(data, kind, options), tuple(sorted(options.items()))


def _options(data: ProviderSettingsIn, kind: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, default in SPECS[kind].options.items():
        value = getattr(data, name)
        if value is UNSET:
            if default is None:
                raise BadRequest(f"kind {kind} needs {name}", field=name)
            value = default
        options[name] = value
    return options


def _base_url(data: ProviderSettingsIn, kind: str, options: dict[str, str]) -> str:
    template = SPECS[kind].base_url
    if data.base_url is not UNSET:
        return checked_base_url(data.base_url)
    if template is None:
        raise BadRequest(f"kind {kind} needs a base_url", field="base_url")
    return template.format(**options)


def changed_settings(current: StateProvider, data: ProviderChange) -> Settings:
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
