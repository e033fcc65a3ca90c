"""Admin authentication and the one guard on every `/admin/v1` route: who is
calling (the bootstrap token, a named admin token, an OIDC JWT, or a console
session), then whether the route's declared permission lets them
(`control_plane.authz`)."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler

from control_plane.authz import authorize, permission_of
from control_plane.errors import Forbidden, Unauthorized
from control_plane.identity import BOOTSTRAP, Identity, Role
from shared.secrets import ADMIN_TOKEN_PREFIX, hash_client_key

__all__ = [
    "CSRF_HEADER",
    "IDENTITY",
    "SESSION_COOKIE",
    "Credential",
    "admin_guard",
    "authenticate",
    "credential_identity",
    "identify",
]

IDENTITY = "sluice_identity"  # where the guard leaves the caller's identity in the scope
SESSION_COOKIE = "sluice_session"  # a console session (control_plane/console/sessions.py)
CSRF_HEADER = "x-csrf-token"  # required with the session cookie, on every request


class Credential:
    """What an identity was proven with, without its secret, so that a console session
    can check it again on every request: `bootstrap:<hmac>`, `token:<sha256>`, or
    `oidc` (an identity from a JWT, for the JWT's lifetime)."""

    BOOTSTRAP = "bootstrap:"
    TOKEN = "token:"
    OIDC = "oidc"


async def admin_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    identity = await authenticate(connection)
    connection.scope[IDENTITY] = identity  # type: ignore[literal-required]
    await authorize(identity, permission_of(handler), connection)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    header = connection.headers.get("authorization")
    if header is None and SESSION_COOKIE in connection.cookies:
        return await _session(connection, connection.cookies[SESSION_COOKIE])
    scheme, _sep, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an admin token is required: Authorization: Bearer <token>")
    identity, _credential, _expires = await identify(connection.app.state, token)
    return identity


async def identify(state: State, token: str) -> tuple[Identity, str, float | None]:
    """The identity a token proves, the credential it is (`Credential`) and when it
    expires (None: not by itself); `Unauthorized` saying why when it proves none."""
    if hmac.compare_digest(token.encode(), state.admin_token.encode()):
        return BOOTSTRAP, Credential.BOOTSTRAP + _bootstrap_mark(state, token), None
    if token.startswith(ADMIN_TOKEN_PREFIX):
        digest = hash_client_key(token)
        identity, expires = await _named(state, digest)
        return identity, Credential.TOKEN + digest, expires
    if state.oidc is not None and token.count(".") == 2:
        identity, expires = await state.oidc.identify_until(token)
        if identity.tenant_id is not None:
            await _tenant_lives(state, identity.tenant_id)
        return identity, Credential.OIDC, expires
    raise Unauthorized("the admin token is not valid")


async def credential_identity(state: State, credential: str, identity: Identity) -> Identity:
    """A console session's identity, checked again: the bootstrap token unchanged, the
    named token neither revoked nor expired, an OIDC identity's tenant still there."""
    if credential.startswith(Credential.BOOTSTRAP):
        now = _bootstrap_mark(state, state.admin_token)
        if hmac.compare_digest(
            credential.removeprefix(Credential.BOOTSTRAP).encode(), now.encode()
        ):
            return BOOTSTRAP
        raise Unauthorized("the session's token is no longer the admin token")
    if credential.startswith(Credential.TOKEN):
        digest = credential.removeprefix(Credential.TOKEN)
        named, _expires = await _named(state, digest)
        return named
    if credential == Credential.OIDC:
        if identity.tenant_id is not None:
            await _tenant_lives(state, identity.tenant_id)
        return identity
    raise Unauthorized("the session's credential is not known")


def _bootstrap_mark(state: State, token: str) -> str:
    """What a session keeps of the bootstrap token: an HMAC under the secret key, so
    that a chosen token cannot be guessed offline from a copy of the database."""
    key = state.settings.secret_key.encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


async def _session(connection: ASGIConnection[Any, Any, Any, Any], cookie: str) -> Identity:
    """A console session: its CSRF token must come with it, on every request (the
    console's own pages send it; no other site can read it)."""
    from control_plane.console.sessions import load_session  # the console builds on this

    session = await load_session(connection.app.state, cookie)
    if session is None:
        raise Unauthorized("the console session has ended: log in again")
    sent = connection.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Forbidden(f"a console session's request needs its {CSRF_HEADER} header")
    return session.identity


async def _tenant_lives(state: State, tenant_id: str) -> None:
    """A JWT bound to a deleted tenant names no one (its admin tokens end with it)."""
    current = await state.store.current_state()
    if tenant_id not in current.tenants:
        raise Unauthorized("the token's tenant no longer exists")


async def _named(state: State, digest: str) -> tuple[Identity, float]:
    """A named admin token, by its hash; refused once revoked or expired."""
    current = await state.store.current_state()
    for admin in current.admin_tokens.values():
        if hmac.compare_digest(admin.hash.encode(), digest.encode()) and not admin.revoked:
            if admin.expires_at <= time.time():
                expired = datetime.fromtimestamp(admin.expires_at, UTC).isoformat()
                raise Unauthorized(f"the admin token {admin.name!r} expired at {expired}")
            identity = Identity(f"token:{admin.name}", Role(admin.role), admin.tenant_id)
            return identity, admin.expires_at
    raise Unauthorized("the admin token is not valid (unknown or revoked)")
