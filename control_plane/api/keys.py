"""Client API keys: the secret is shown once, at creation; only its hash is kept."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.api.common import (
    TEXT,
    actor_of,
    clean_name,
    from_row,
    from_rows,
    get_store,
    one,
)
from control_plane.authz import KEY_READ, KEY_WRITE, TENANT_READ, TENANT_WRITE, needs
from control_plane.errors import NotFound
from control_plane.queries import Q
from shared.events import KeyCreated, KeyRevoked, Payload
from shared.secrets import new_client_key
from shared.state import State

__all__ = ["KeyController", "TenantKeyController"]

KeyName = Annotated[str, msgspec.Meta(max_length=200, pattern=TEXT)]


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: KeyName = ""


class Key(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class CreatedKey(Key):
    key: str  # the secret, returned by this response only


def _key_stream(key_id: str) -> str:
    return f"key:{key_id}"


class TenantKeyController(Controller):
    path = "/tenants/{tenant_id:uuid}/keys"
    tags = ["keys"]

    @post(
        status_code=HTTP_201_CREATED,
        summary="Create a key (the secret is returned once)",
        opt=needs(TENANT_WRITE),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[KeyIn | None] = None,
    ) -> CreatedKey:
        tid, key_id = str(tenant_id), str(uuid.uuid4())
        secret, prefix, key_hash = new_client_key()
        name = clean_name(data.name, empty=True) if data else ""

        def decide(state: State) -> list[Payload]:
            if tid not in state.tenants:
                raise NotFound(f"tenant {tid} does not exist")
            return [KeyCreated(id=key_id, tenant_id=tid, name=name, prefix=prefix, hash=key_hash)]

        store = get_store(request)
        await store.append(_key_stream(key_id), decide, actor=actor_of(request), expected_version=0)
        row = await store.pool.fetchrow(Q.get_key, uuid.UUID(key_id))
        assert row is not None
        return CreatedKey(**msgspec.structs.asdict(from_row(Key, row)), key=secret)

    @get(summary="List a tenant's keys (never their secrets)", opt=needs(TENANT_READ))
    async def list(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID]
    ) -> list[Key]:
        store = get_store(request)
        if await store.pool.fetchrow(Q.get_tenant, tenant_id) is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return from_rows(Key, await store.pool.fetch(Q.list_keys, tenant_id))


class KeyController(Controller):
    path = "/keys"
    tags = ["keys"]

    @get("/{key_id:uuid}", summary="Get a key (never its secret)", opt=needs(KEY_READ))
    async def read(self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID]) -> Key:
        row = await get_store(request).pool.fetchrow(Q.get_key, key_id)
        return one(Key, row, f"key {key_id}")

    @delete(
        "/{key_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke a key",
        opt=needs(KEY_WRITE),
    )
    async def revoke(self, request: Request[Any, Any, Any], key_id: FromPath[uuid.UUID]) -> None:
        """Revoking is idempotent: revoking a revoked key succeeds and changes nothing."""
        kid = str(key_id)
        store = get_store(request)
        if await store.pool.fetchrow(Q.get_key, key_id) is None:
            raise NotFound(f"key {kid} does not exist")

        def decide(state: State) -> list[Payload]:
            return [KeyRevoked(id=kid)] if kid in state.keys else []

        await store.append(_key_stream(kid), decide, actor=actor_of(request))
