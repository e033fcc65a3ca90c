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
from litestar.params import HeaderParameter, QueryParameter

from control_plane.auth import IDENTITY
from control_plane.errors import BadRequest, Invalid, NotFound
from control_plane.identity import Identity
from control_plane.store import Decide, EventStore
from shared.events import Event

__all__ = [
    "TEXT",
    "IfMatch",
    "Limit",
    "ModelName",
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

# Printable text with at least one visible character: no control characters (NUL
# cannot be stored, and the others only make trouble in logs and headers).
TEXT = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"),
]


# control, format (zero-width, bidi), private-use, unassigned and line/paragraph
# separator characters: none may be in a name, where they hide or fake its letters
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_name(value: str, field: str = "name", *, empty: bool = False) -> str:
    """A name as it is stored: NFC, without surrounding whitespace, so names that
    look the same are the same. 400 naming `field` if it holds a control or
    invisible character, or (unless `empty`) nothing at all."""
    name = unicodedata.normalize("NFC", value)
    for at, char in enumerate(name):
        if unicodedata.category(char) in _UNSEEN:
            raise BadRequest(
                f"{field} must not contain control or invisible characters "
                f"(U+{ord(char):04X} at {at})",
                field=field,
            )
    name = name.strip()
    if not name and not empty:
        raise BadRequest(f"{field} must not be empty or only spaces", field=field)
    return name


# A public or upstream model name: no spaces, no control characters.
ModelName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f]+$")
]
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many items.")]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description="Expected version of the resource (its ETag); a stale one is refused with 409.",
    ),
]
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def get_store(request: Request[Any, Any, Any]) -> EventStore:
    store: EventStore = request.app.state.store
    return store


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
    """The version an `If-Match` header asks for; None when the header is absent."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match)
    if match is None:
        raise Invalid(f'If-Match must be a version such as "3", not {if_match!r}')
    return int(match.group(1))


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
    """`resource` as the answer, its version as the `ETag`."""
    return Response(resource, status_code=status, headers=etag(resource.version))


def from_row(cls: type[T], row: asyncpg.Record) -> T:
    return msgspec.convert(dict(row), cls)


def from_rows(cls: type[T], rows: list[asyncpg.Record]) -> list[T]:
    return [from_row(cls, row) for row in rows]


def one(cls: type[T], row: asyncpg.Record | None, what: str) -> T:
    if row is None:
        raise NotFound(f"{what} does not exist")
    return from_row(cls, row)
