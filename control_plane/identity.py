"""Who is calling the admin API: an identity is an actor name, a role and, for a
tenant's admins and viewers, the one tenant it is bound to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["BOOTSTRAP", "Identity", "Role"]


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"  # everything
    TENANT_ADMIN = "tenant_admin"  # one tenant: its keys, key policies, usage, audit log
    VIEWER = "viewer"  # read-only: platform-wide, or one tenant


@dataclass(frozen=True, slots=True)
class Identity:
    """`actor` is what events record: `admin:bootstrap`, `token:<name>` for a named
    admin token, `oidc:<subject>` for a JWT. `tenant_id` None: platform-wide."""

    actor: str
    role: Role
    tenant_id: str | None = None


BOOTSTRAP = Identity("admin:bootstrap", Role.PLATFORM_ADMIN)
