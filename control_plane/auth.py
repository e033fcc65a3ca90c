"""Admin authentication: a bearer token on every `/admin/v1` route."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

__all__ = ["BOOTSTRAP_ACTOR", "require_admin"]

BOOTSTRAP_ACTOR = "admin:bootstrap"


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected: str = connection.app.state.admin_token
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException("an admin token is required: Authorization: Bearer <token>")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise NotAuthorizedException("the admin token is not valid")
    connection.scope["sluice_actor"] = BOOTSTRAP_ACTOR  # type: ignore[typeddict-unknown-key]
