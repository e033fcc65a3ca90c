"""Admin API errors, all answered as RFC 9457 problem details (`ProblemDetails`).

A refusal's `detail` says in words what is wrong, naming the field(s) at fault; its
`errors` list them one by one, each with its `key` (`deployments[1].provider_id`, ""
for the body as a whole), a `message` and the `source` (body, query, path, header).
`400`: the request does not match the OpenAPI document (a failed type check). `422`:
it matches, but breaks a rule the document cannot state (fields that must agree with
each other, with the time, or with the state). Both name the field where one is at
fault."""

from __future__ import annotations

import logging
import re
import socket
from http import HTTPStatus
from typing import Any, Literal

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

__all__ = [
    "EXCEPTION_HANDLERS",
    "AdminError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "ProblemDetails",
    "ProblemError",
    "TypeCheckFailed",
    "Unauthorized",
    "VersionConflict",
    "field_error",
    "problem",
]

log = logging.getLogger("sluice.control_plane")
PROBLEM_JSON = "application/problem+json"
Source = Literal["body", "query", "path", "header"]
# A problem's `title` is its status's (RFC 9457 for `about:blank`), as RFC 9110 names it.
_TITLES = {422: "Unprocessable Content"}


class ProblemError(msgspec.Struct):
    """One thing wrong with the request: the field (`key`, "" for the whole body), what
    is wrong with it, and where it was."""

    key: str
    message: str
    source: Source


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """Every admin API refusal (RFC 9457). `detail` says what is wrong, naming the
    field(s) at fault; `errors` lists them, when the request is at fault."""

    type: str
    title: str
    status: int
    detail: str
    instance: str  # the request's path
    errors: list[ProblemError] = msgspec.field(default_factory=list)


class AdminError(Exception):
    """`field`: the request field at fault (e.g. `deployments[1].provider_id`), named in the
    problem's `errors` list the way a failed type check names it; `source`: where it is."""

    status: int = 400

    def __init__(self, detail: str, *, field: str | None = None, source: Source = "body") -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.source: Source = source

    def errors(self) -> list[ProblemError]:
        if self.field is None:
            return []
        return [ProblemError(self.field, self.detail, self.source)]


class BadRequest(AdminError):
    """A body whose shape is wrong in a way its type cannot say (a field one provider
    kind needs and another refuses): 400, as a failed type check is."""


class TypeCheckFailed(BadRequest):
    """A request that does not match its types: each field at fault in `errors`, and
    all of them in the detail ("tpm: Expected `int` <= 1000000000")."""

    def __init__(self, errors: list[ProblemError]) -> None:
        super().__init__(describe(errors))
        self._errors = errors

    def errors(self) -> list[ProblemError]:
        return self._errors


def describe(errors: list[ProblemError]) -> str:
    return "; ".join(f"{e.key or 'the body'}: {e.message}" for e in errors)


class Unauthorized(AdminError):
    """No admin identity: no token, or one that is unknown, expired or revoked."""

    status = 401


class Forbidden(AdminError):
    """An identity whose role does not allow the request."""

    status = 403


class NotFound(AdminError):
    status = 404


class Conflict(AdminError):
    status = 409


class VersionConflict(Conflict):
    """A write that expected a stream version other than the current one."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"{stream} is at version {actual}, not {expected}: reload and try again")
        self.stream, self.expected, self.actual = stream, expected, actual


class Invalid(AdminError):
    status = 422


def problem(
    status: int,
    detail: str,
    request: Request[Any, Any, Any],
    errors: list[ProblemError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ProblemDetails]:
    body = ProblemDetails(
        type="about:blank",
        title=_TITLES.get(status) or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors or [],
    )
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# msgspec's words for a field that is not there or should not be: "Object contains
# unknown field `x` - at `$.retry`", "Object missing required field `name`".
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>.*)`)?$", re.DOTALL)
_NAMED = re.compile(r"^Object (?P<what>contains unknown|missing required) field `(?P<name>.*)`$")


def field_error(message: str, source: Source, key: str = "") -> ProblemError:
    """A type check's message (msgspec's, with or without the path it gives) as the
    field it names: an unknown or missing field is keyed by its own name."""
    match = _AT.match(message)
    assert match is not None  # the pattern matches every string
    message, path = match["message"], (match["path"] or "").removeprefix(".")
    key = ".".join(part for part in (key, path) if part)
    named = _NAMED.match(message)
    if named is not None:
        key = f"{key}.{named['name']}" if key else named["name"]
        unknown = named["what"] == "contains unknown"
        message = "not a field of this object" if unknown else "required, but missing"
    return ProblemError(key=key, message=message, source=source)


def _admin_error(request: Request[Any, Any, Any], exc: AdminError) -> Response[ProblemDetails]:
    detail, field = exc.detail, exc.field
    if field and field not in detail:  # the detail names the field, as a type check's does
        detail = f"{field}: {detail}"
    return problem(exc.status, detail, request, exc.errors())


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDetails]:
    """Litestar's own refusals: a failed check of the query, path or headers, no route,
    a method the route does not take (with its `Allow` header)..."""
    errors = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = [_validation_error(request, item) for item in exc.extra if isinstance(item, dict)]
    detail = describe(errors) if errors else exc.detail
    return problem(exc.status_code, detail, request, errors=errors, headers=exc.headers)


_SOURCES: dict[str, Source] = {"body": "body", "query": "query", "path": "path", "header": "header"}


def _validation_error(request: Request[Any, Any, Any], item: dict[str, Any]) -> ProblemError:
    raw = item.get("source") or "body"
    source = _SOURCES.get(str(getattr(raw, "value", raw)), "body")
    key = str(item.get("key", ""))
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    if parameter is not None:  # the name on the wire (`If-Match`), not the Python one
        kwarg = parameter.kwarg_definition
        aliases = (getattr(kwarg, name, None) for name in ("name", "header", "query"))
        key = next((alias for alias in aliases if isinstance(alias, str)), key)
    if source == "body" and key == "data":
        key = ""
    return field_error(str(item.get("message", "")), source, key)


def _unstorable(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    return problem(400, "the request holds a value the database cannot store", request)


def _unreadable_body(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    return problem(400, "the request body is not valid UTF-8 JSON of a sensible depth", request)


def _database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem(503, "the database is unavailable; try again shortly", request)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetails]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal error", request)


EXCEPTION_HANDLERS = {
    AdminError: _admin_error,
    HTTPException: _http_error,
    asyncpg.DataError: _unstorable,
    RecursionError: _unreadable_body,
    UnicodeDecodeError: _unreadable_body,
    # The database is down, restarting, or unreachable: 503, and the pool reconnects
    # by itself once it is back. (The control plane does no other network I/O.)
    asyncpg.PostgresConnectionError: _database_down,
    asyncpg.exceptions.OperatorInterventionError: _database_down,
    ConnectionError: _database_down,
    socket.gaierror: _database_down,
    TimeoutError: _database_down,
    Exception: _unexpected,
}
