"""Console sessions, kept in PostgreSQL so that any control plane replica serves them
and logging out ends them everywhere. The cookie holds a random id; the table holds
only its SHA-256, the identity, the credential it was proven with (checked again on
every request: `control_plane.auth.credential_identity`), a CSRF token and the end."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State

from control_plane.auth import SESSION_COOKIE, credential_identity
from control_plane.errors import Unauthorized
from control_plane.identity import Identity, Role
from control_plane.queries import Q

__all__ = [
    "SESSION_SECONDS",
    "Session",
    "end_current",
    "end_session",
    "load_session",
    "start_session",
]

SESSION_SECONDS = 12 * 3600  # a working day; a token or JWT that ends sooner ends it sooner


@dataclass(frozen=True, slots=True)
class Session:
    identity: Identity
    csrf: str
    expires_at: datetime

    def seconds_left(self) -> int:
        """The cookie's Max-Age: the session's own end, not a fixed time."""
        return max(0, int((self.expires_at - datetime.now(UTC)).total_seconds()))


def _digest(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


async def start_session(
    state: State, identity: Identity, credential: str, expires: float | None
) -> tuple[str, Session]:
    """A new session: the cookie's value and the session."""
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    until = time.time() + SESSION_SECONDS
    if expires is not None:
        until = min(until, expires)
    ends = datetime.fromtimestamp(until, UTC)
    stored = {"actor": identity.actor, "role": identity.role.value, "tenant_id": identity.tenant_id}
    pool = state.store.pool
    await pool.execute(Q.sessions_prune)
    await pool.execute(
        Q.session_create,
        _digest(cookie),
        credential,
        msgspec.json.encode(stored).decode(),
        csrf,
        ends,
    )
    return cookie, Session(identity, csrf, ends)


async def load_session(state: State, cookie: str) -> Session | None:
    """The live session of a cookie, its identity checked again; None when there is
    none (ended, expired, unknown, or its credential no longer valid)."""
    if not 0 < len(cookie) <= 100:
        return None
    row = await state.store.pool.fetchrow(Q.session_load, _digest(cookie))
    if row is None:
        return None
    stored = msgspec.json.decode(row["identity"])
    identity = Identity(stored["actor"], Role(stored["role"]), stored["tenant_id"])
    try:
        identity = await credential_identity(state, row["credential"], identity)
    except Unauthorized:
        return None
    return Session(identity, row["csrf"], row["expires_at"])


async def end_session(state: State, cookie: str) -> None:
    await state.store.pool.execute(Q.session_end, _digest(cookie))


async def end_current(request: Request[Any, Any, Any]) -> None:
    """Ends the session a browser already has, if any (on logging in again)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is not None:
        await end_session(request.app.state, cookie)
