"""Named admin tokens, each with a role: shown once at creation, kept as a hash,
valid until their expiry or revocation. And `/me`: who the caller is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.api.common import Name, append, clean_name, get_store, identity_of
from control_plane.authz import LISTING, PLATFORM_READ, PLATFORM_WRITE, needs
from control_plane.errors import BadRequest, Conflict, Invalid, NotFound
from shared.events import AdminTokenCreated, AdminTokenRevoked, Payload
from shared.secrets import ADMIN_TOKEN_PREFIX, new_client_key
from shared.state import AdminToken, State

__all__ = ["AdminTokenController", "MeController"]

DEFAULT_LIFETIME = timedelta(days=90)
LONGEST_LIFETIME = timedelta(days=3 * 366)
RoleName = Literal["platform_admin", "tenant_admin", "viewer"]


class AdminTokenIn(msgspec.Struct, forbid_unknown_fields=True):
    # for the OpenAPI document: which roles take a tenant_id, as `_binding` checks them
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"properties": {"role": {"const": "platform_admin"}, "tenant_id": {"type": "null"}}},
            {
                "properties": {"role": {"const": "tenant_admin"}, "tenant_id": {"type": "string"}},
                "required": ["tenant_id"],
            },
            {"properties": {"role": {"const": "viewer"}}},
        ]
    }

    name: Name
    role: RoleName
    tenant_id: uuid.UUID | None = None  # required for tenant_admin, optional for viewer
    # with its time zone; default: 90 days from now; at most 3 years
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class AdminTokenView(msgspec.Struct):
    id: uuid.UUID
    name: str
    role: RoleName
    tenant_id: uuid.UUID | None
    prefix: str
    expires_at: datetime
    revoked: bool  # revoked, or its tenant deleted: refused from then on


class CreatedAdminToken(AdminTokenView):
    token: str  # the secret, returned by this response only


class Me(msgspec.Struct):
    actor: str
    role: RoleName
    tenant_id: uuid.UUID | None


def _stream(token_id: str) -> str:
    return f"admin_token:{token_id}"


def _view(token: AdminToken) -> AdminTokenView:
    return AdminTokenView(
        id=uuid.UUID(token.id),
        name=token.name,
        role=token.role,  # type: ignore[arg-type]
        tenant_id=None if token.tenant_id is None else uuid.UUID(token.tenant_id),
        prefix=token.prefix,
        expires_at=datetime.fromtimestamp(token.expires_at, UTC),
        revoked=token.revoked,
    )


def _expiry(asked: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if asked is None:
        return now + DEFAULT_LIFETIME
    if asked <= now:  # the time, which a schema cannot name: 422
        raise Invalid("expires_at must be in the future", field="expires_at")
    if asked > now + LONGEST_LIFETIME:
        raise Invalid("expires_at may be at most 3 years ahead", field="expires_at")
    return asked.astimezone(UTC)


def _binding(role: str, tenant_id: uuid.UUID | None) -> str | None:
    if role == "tenant_admin" and tenant_id is None:
        raise BadRequest("a tenant_admin token needs the tenant_id it manages", field="tenant_id")
    if role == "platform_admin" and tenant_id is not None:
        raise BadRequest("a platform_admin token is not bound to a tenant", field="tenant_id")
    return None if tenant_id is None else str(tenant_id)


class AdminTokenController(Controller):
    path = "/admin-tokens"
    tags = ["admin tokens"]

    @post(
        status_code=HTTP_201_CREATED,
        summary="Create an admin token (the secret is returned once)",
        opt=needs(PLATFORM_WRITE),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[AdminTokenIn]
    ) -> CreatedAdminToken:
        token_id, name = str(uuid.uuid4()), clean_name(data.name)
        tenant_id, expires_at = _binding(data.role, data.tenant_id), _expiry(data.expires_at)
        secret, prefix, digest = new_client_key(ADMIN_TOKEN_PREFIX)

        def decide(state: State) -> list[Payload]:
            if tenant_id is not None and tenant_id not in state.tenants:
                raise NotFound(f"tenant {tenant_id} does not exist", field="tenant_id")
            if any(t.name == name for t in state.admin_tokens.values()):
                raise Conflict(
                    f"an admin token named {name!r} exists or existed: names are never reused,"
                    " so each actor in the audit log is one token",
                    field="name",
                )
            created = AdminTokenCreated(
                token_id, name, data.role, tenant_id, prefix, digest, expires_at
            )
            return [created]

        await append(request, _stream(token_id), decide, new=True)
        token = AdminToken(
            token_id, name, data.role, tenant_id, prefix, digest, expires_at.timestamp()
        )
        view = _view(token)
        return CreatedAdminToken(**msgspec.structs.asdict(view), token=secret)

    @get(summary="List the admin tokens in force (never their secrets)", opt=needs(PLATFORM_READ))
    async def list(self, request: Request[Any, Any, Any]) -> list[AdminTokenView]:
        tokens = (await get_store(request).current_state()).admin_tokens.values()
        return [_view(t) for t in sorted(tokens, key=lambda t: t.name) if not t.revoked]

    @get(
        "/{token_id:uuid}",
        summary="Get an admin token (never its secret)",
        opt=needs(PLATFORM_READ),
    )
    async def read(
        self, request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID]
    ) -> AdminTokenView:
        token = (await get_store(request).current_state()).admin_tokens.get(str(token_id))
        if token is None:
            raise NotFound(f"admin token {token_id} does not exist")
        return _view(token)

    @delete(
        "/{token_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke an admin token (at once, on every control plane)",
        opt=needs(PLATFORM_WRITE),
    )
    async def revoke(self, request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID]) -> None:
        """Revoking is idempotent: revoking a revoked token succeeds and changes nothing."""
        tid = str(token_id)

        def decide(state: State) -> list[Payload]:
            token = state.admin_tokens.get(tid)
            if token is None:
                raise NotFound(f"admin token {tid} does not exist")
            return [] if token.revoked else [AdminTokenRevoked(tid)]

        await append(request, _stream(tid), decide)


class MeController(Controller):
    path = "/me"
    tags = ["admin tokens"]

    @get(summary="Who the caller is: actor, role and tenant", opt=needs(LISTING))
    async def read(self, request: Request[Any, Any, Any]) -> Me:
        identity = identity_of(request)
        tenant = None if identity.tenant_id is None else uuid.UUID(identity.tenant_id)
        return Me(identity.actor, identity.role.value, tenant)
