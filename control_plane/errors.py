"""Admin API errors, all answered as RFC 9457 problem details."""

from __future__ import annotations

import logging
import socket
from http import HTTPStatus
from typing import Any

import asyncpg
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
    "Unauthorized",
    "VersionConflict",
    "problem",
]

log = logging.getLogger("sluice.control_plane")
PROBLEM_JSON = "application/problem+json"


class AdminError(Exception):
    """`field`: the request field at fault (e.g. `deployments[1].provider_id`), named in the
    problem's `errors` list the way a failed type check names it."""

    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class BadRequest(AdminError):
    """A body whose shape is wrong in a way its type cannot say (a field one provider
    kind needs and another refuses): 400, as a failed type check is."""


class Unauthorized(AdminError):
    """No admin identity: no token, or one that is unknown, expired or revoked."""

    status, title = 401, "Unauthorized"


class Forbidden(AdminError):
    """An identity whose role does not allow the request."""

    status, title = 403, "Forbidden"


class NotFound(AdminError):
    status, title = 404, "Not found"


class Conflict(AdminError):
    status, title = 409, "Conflict"


class VersionConflict(Conflict):
    """A write that expected a stream version other than the current one."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"{stream} is at version {actual}, not {expected}: reload and try again")
        self.stream, self.expected, self.actual = stream, expected, actual


class Invalid(AdminError):
    status, title = 422, "Unprocessable content"


def problem(
    status: int,
    detail: str,
    request: Request[Any, Any, Any],
    title: str | None = None,
    extra: dict[str, object] | None = None,
) -> Response[dict[str, object]]:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if extra:
        body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _admin_error(request: Request[Any, Any, Any], exc: AdminError) -> Response[object]:
    extra: dict[str, object] | None = None
    if exc.field is not None:
        extra = {"errors": [{"message": exc.detail, "key": exc.field, "source": "body"}]}
    return problem(exc.status, exc.detail, request, exc.title, extra)  # type: ignore[return-value]


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[object]:
    extra: dict[str, object] | None = None
    if isinstance(exc, ValidationException) and exc.extra:
        extra = {"errors": exc.extra}
    return problem(exc.status_code, exc.detail, request, extra=extra)  # type: ignore[return-value]


def _unstorable(request: Request[Any, Any, Any], exc: Exception) -> Response[object]:
    return problem(400, "the request holds a value the database cannot store", request)  # type: ignore[return-value]


def _unreadable_body(request: Request[Any, Any, Any], exc: Exception) -> Response[object]:
    return problem(400, "the request body is not valid UTF-8 JSON of a sensible depth", request)  # type: ignore[return-value]


def _database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[object]:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem(503, "the database is unavailable; try again shortly", request)  # type: ignore[return-value]


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[object]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal error", request)  # type: ignore[return-value]


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
