"""Admin authentication and the one guard on every `/admin/v1` route: who is
calling (the bootstrap token, a named admin token, or an OIDC JWT), then whether
the route's declared permission lets them (`control_plane.authz`)."""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from control_plane.authz import authorize, permission_of
from control_plane.errors import Unauthorized
from control_plane.identity import BOOTSTRAP, Identity, Role
from shared.secrets import ADMIN_TOKEN_PREFIX, hash_client_key

__all__ = ["IDENTITY", "admin_guard", "authenticate"]

IDENTITY = "sluice_identity"  # where the guard leaves the caller's identity in the scope


async def admin_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    identity = await authenticate(connection)
    connection.scope[IDENTITY] = identity  # type: ignore[literal-required]
    await authorize(identity, permission_of(handler), connection)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    scheme, _sep, token = connection.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an admin token is required: Authorization: Bearer <token>")
    state = connection.app.state
    if hmac.compare_digest(token.encode(), state.admin_token.encode()):
        return BOOTSTRAP
    if token.startswith(ADMIN_TOKEN_PREFIX):
        return await _named(connection, token)
    if state.oidc is not None and token.count(".") == 2:
        identity: Identity = await state.oidc.identify(token)
        if identity.tenant_id is not None:
            await _tenant_lives(connection, identity.tenant_id)
        return identity
    raise Unauthorized("the admin token is not valid")


async def _tenant_lives(connection: ASGIConnection[Any, Any, Any, Any], tenant_id: str) -> None:
    """A JWT bound to a deleted tenant names no one (its admin tokens end with it)."""
    state = await connection.app.state.store.current_state()
    if tenant_id not in state.tenants:
        raise Unauthorized("the token's tenant no longer exists")


async def _named(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> Identity:
    """A named admin token, by its hash; refused once revoked or expired."""
    digest = hash_client_key(token)
    state = await connection.app.state.store.current_state()
    for admin in state.admin_tokens.values():
        if hmac.compare_digest(admin.hash, digest) and not admin.revoked:
            if admin.expires_at <= time.time():
                expired = datetime.fromtimestamp(admin.expires_at, UTC).isoformat()
                raise Unauthorized(f"the admin token {admin.name!r} expired at {expired}")
            return Identity(f"token:{admin.name}", Role(admin.role), admin.tenant_id)
    raise Unauthorized("the admin token is not valid (unknown or revoked)")
