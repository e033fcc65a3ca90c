"""Helpers every admin resource uses: the store, the actor, appending with `If-Match`,
`ETag`, rows to structs."""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Annotated, Any, Protocol, TypeVar

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.params import HeaderParameter, Parameter, QueryParameter

from control_plane.auth import IDENTITY
from control_plane.errors import BadRequest, Invalid, NotFound
from control_plane.identity import Identity
from control_plane.store import FORCE_SCHEMA, Decide, EventStore
from shared.events import Event

__all__ = [
    "END",
    "MODEL_NAME",
    "SPACE",
    "TEXT",
    "IfMatch",
    "Limit",
    "ModelName",
    "ModelPath",
    "Name",
    "actor_of",
    "append",
    "clean_name",
    "etag",
    "expected_version",
    "from_row",
    "from_rows",
    "get_store",
    "identity_of",
    "one",
    "tenant_scope",
    "versioned",
]

T = TypeVar("T")


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)

# The end of a pattern: the end of the string. (`$` alone also matches before a final
# newline in Python's `re`, which msgspec checks with, though not in JSON Schema's.)
END = r"(?!\n)$"
# What Python's `re` or JSON Schema's (ECMA) regex calls white space, spelled out for a
# character class, since `\s` means one set to the server and another to the document.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Printable text with at least one visible character: no control characters (NUL
# cannot be stored, and the others only make trouble in logs and headers).
TEXT = r"^[^\x00-\x1f\x7f]*" + END
Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=200,
        pattern=rf"^[^\x00-\x1f\x7f]*[^{SPACE}\x00-\x1f\x7f][^\x00-\x1f\x7f]*" + END,
    ),
]


# control, format (zero-width, bidi), private-use, unassigned and line/paragraph
# separator characters: none may be in a name, where they hide or fake its letters
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_name(value: str, field: str = "name", *, empty: bool = False) -> str:
    """A name as it is stored: NFC, without surrounding whitespace, so names that
    look the same are the same. 422 naming `field` if it holds a control or
    invisible character (Unicode categories, which a schema's pattern cannot name),
    or (unless `empty`) nothing at all."""
    name = unicodedata.normalize("NFC", value)
    for at, char in enumerate(name):
        if unicodedata.category(char) in _UNSEEN:
            raise Invalid(
                f"{field} must not contain control or invisible characters "
                f"(U+{ord(char):04X} at {at})",
                field=field,
            )
    name = name.strip()
    if not name and not empty:
        raise Invalid(f"{field} must not be empty or only spaces", field=field)
    return name


# A public or upstream model name: no spaces, no control characters.
MODEL_NAME = rf"^[^{SPACE}\x00-\x1f\x7f]+" + END
ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=MODEL_NAME)]
# The same in a path (`/prices/{model}`), where Litestar checks its own `Parameter`.
ModelPath = Annotated[str, Parameter(min_length=1, max_length=200, pattern=MODEL_NAME)]
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many items.")]
# A version as `ETag` gives it ("3"), weak or bare (W/"3", 3), or `*`: any version.
IF_MATCH = r'^[ \t]*(?:\*|(?:W/)?"?([0-9]{1,9})"?)[ \t]*' + END
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        pattern=IF_MATCH,
        description='Expected version of the resource, as its ETag gives it ("3"), or *: any.'
        " A stale one is refused with 409.",
    ),
]
_ETAG = re.compile(IF_MATCH)


def get_store(request: Request[Any, Any, Any]) -> EventStore:
    """The event store, forcing events of any schema if the request says
    `X-Sluice-Force-Schema: true` (the one place that header is read)."""
    store: EventStore = request.app.state.store
    force = request.headers.get(FORCE_SCHEMA)
    if force is None or force.lower() == "false":
        return store
    if force.lower() != "true":
        raise BadRequest(
            f"{FORCE_SCHEMA} must be true or false, not {force[:64]!r}",
            field=FORCE_SCHEMA,
            source="header",
        )
    return store.forcing_schema()


def identity_of(request: Request[Any, Any, Any]) -> Identity:
    """The caller, as the admin guard identified it."""
    identity = request.scope.get(IDENTITY)
    if not isinstance(identity, Identity):
        raise RuntimeError(f"{request.url.path} was served without the admin guard")
    return identity


def actor_of(request: Request[Any, Any, Any]) -> str:
    return identity_of(request).actor


def tenant_scope(request: Request[Any, Any, Any]) -> uuid.UUID | None:
    """The one tenant a tenant-bound caller may see, for list filters; None: all."""
    tenant_id = identity_of(request).tenant_id
    return None if tenant_id is None else uuid.UUID(tenant_id)


def expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header asks for; None when it is absent or `*`."""
    match = None if if_match is None else _ETAG.match(if_match)
    if match is None:
        if if_match is None:
            return None
        raise BadRequest(
            f'If-Match must be a version such as "3", not {if_match!r}',
            field="If-Match",
            source="header",
        )
    return None if match.group(1) is None else int(match.group(1))


async def append(
    request: Request[Any, Any, Any],
    stream: str,
    decide: Decide,
    *,
    if_match: str | None = None,
    new: bool = False,
) -> list[Event]:
    """Append what `decide` returns to `stream` as the request's actor: to a stream that
    must not exist yet (`new`), to the version `If-Match` names, or (neither) to any."""
    expected = 0 if new else expected_version(if_match)
    return await get_store(request).append(
        stream, decide, actor=actor_of(request), expected_version=expected
    )


def etag(version: int) -> dict[str, str]:
    """The `ETag` header of a resource at `version` (what `If-Match` gives back)."""
    return {"ETag": f'"{version}"'}


def versioned(resource: V, status: int = 200) -> Response[V]:
    """`resource` as the answer, its version as the `ETag`. A handler answers with a
    `Response` (this one, or one with `etag`) to set that header: the OpenAPI document
    says an answer built so carries an `ETag` (`control_plane.openapi`)."""
    return Response(resource, status_code=status, headers=etag(resource.version))


def from_row(cls: type[T], row: asyncpg.Record) -> T:
    return msgspec.convert(dict(row), cls)


def from_rows(cls: type[T], rows: list[asyncpg.Record]) -> list[T]:
    return [from_row(cls, row) for row in rows]


def one(cls: type[T], row: asyncpg.Record | None, what: str) -> T:
    if row is None:
        raise NotFound(f"{what} does not exist")
    return from_row(cls, row)
