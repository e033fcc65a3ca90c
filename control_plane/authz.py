"""Authorization, decided in one place: every admin route declares what it needs
(`opt=needs(...)`) and one guard checks the caller's identity against it.

Two questions, in this order, so that nothing leaks where it exists:
1. May the caller see the object? A tenant's admin or viewer asking for another
   tenant's object (or one that does not exist) gets the same 404.
2. May the caller do this to it? If not, 403.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, NamedTuple

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from control_plane.errors import Forbidden, NotFound
from control_plane.identity import Identity, Role
from control_plane.queries import Q

__all__ = [
    "KEY_READ",
    "KEY_WRITE",
    "LISTING",
    "PLATFORM_READ",
    "PLATFORM_WRITE",
    "TENANT_PLATFORM_WRITE",
    "TENANT_READ",
    "TENANT_WRITE",
    "Owner",
    "Permission",
    "authorize",
    "needs",
    "permission_of",
]

log = logging.getLogger("sluice.control_plane")


class Owner(StrEnum):
    PLATFORM = "platform"  # providers, routes, prices, admin tokens, the whole state
    LISTING = "listing"  # a list any caller may read, filtered to the caller's tenant
    TENANT = "tenant"  # the tenant named by the path's `tenant_id`
    KEY = "key"  # the tenant of the key named by the path's `key_id`


class Permission(NamedTuple):
    owner: Owner
    write: bool
    tenant_writes: bool = False  # a tenant admin may make this change to its own tenant


PLATFORM_READ = Permission(Owner.PLATFORM, write=False)
PLATFORM_WRITE = Permission(Owner.PLATFORM, write=True)
LISTING = Permission(Owner.LISTING, write=False)
TENANT_READ = Permission(Owner.TENANT, write=False)
TENANT_WRITE = Permission(Owner.TENANT, write=True, tenant_writes=True)
# A tenant's own settings that only the platform changes: its name, its policy, its end.
TENANT_PLATFORM_WRITE = Permission(Owner.TENANT, write=True)
KEY_READ = Permission(Owner.KEY, write=False)
KEY_WRITE = Permission(Owner.KEY, write=True, tenant_writes=True)


def needs(permission: Permission) -> dict[str, Any]:
    """A route's `opt`: `@get(..., opt=needs(TENANT_READ))`."""
    return {"permission": permission}


def permission_of(handler: BaseRouteHandler) -> Permission:
    permission = handler.opt.get("permission")
    if not isinstance(permission, Permission):
        # A route without a declared permission is a programming error, refused for all.
        log.error("%s declares no permission: refused", handler)
        raise Forbidden("this route is not open to anyone")
    return permission


async def authorize(
    identity: Identity, permission: Permission, connection: ASGIConnection[Any, Any, Any, Any]
) -> None:
    if identity.role is Role.PLATFORM_ADMIN:
        return
    if permission.owner is Owner.LISTING:
        return
    if permission.owner is Owner.PLATFORM:
        if identity.tenant_id is None and not permission.write:
            return
        raise Forbidden(_refusal(identity, connection))
    if identity.tenant_id is not None:
        await _same_tenant(identity.tenant_id, permission.owner, connection)
    if not permission.write:
        return
    if identity.role is Role.TENANT_ADMIN and permission.tenant_writes:
        return
    raise Forbidden(_refusal(identity, connection))


async def _same_tenant(
    tenant_id: str, owner: Owner, connection: ASGIConnection[Any, Any, Any, Any]
) -> None:
    """404, exactly as for an object that does not exist, unless it is `tenant_id`'s."""
    if owner is Owner.TENANT:
        asked = str(connection.path_params["tenant_id"])
        if asked != tenant_id:
            raise NotFound(f"tenant {asked} does not exist")
        return
    asked = connection.path_params["key_id"]
    row = await connection.app.state.store.pool.fetchrow(Q.get_key, asked)
    if row is None or str(row["tenant_id"]) != tenant_id:
        raise NotFound(f"key {asked} does not exist")


def _refusal(identity: Identity, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    who = identity.role.value + (" of a tenant" if identity.tenant_id else "")
    action = "read" if connection.scope.get("method") in ("GET", "HEAD") else "change"
    return f"a {who} may not {action} {connection.url.path} (the token's role does not allow it)"
