"""Snapshots as bytes: a versioned msgpack document, and a digest of the state.

The document holds the primary records only, in chunks of `CHUNK` records
encoded one by one. `encode_state` sorts them by id (canonical bytes, for the
digest and stored snapshots); `encode_state_cooperatively` keeps map order and
yields to the event loop between chunks, so a process that serves requests can
write its snapshot without stalling them. Both decode the same way. The lookup
indexes (key by hash, route by model) are rebuilt on decode, so they can never
disagree with the data.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from itertools import islice
from typing import Any, TypeVar

import msgspec
from immutables import Map

from shared.state import (
    SCHEMA_VERSION,
    AdminToken,
    ApiKey,
    Policy,
    Price,
    Provider,
    Route,
    State,
    Tenant,
)

__all__ = [
    "CHUNK",
    "UnknownSchemaVersion",
    "decode_state",
    "encode_state",
    "encode_state_cooperatively",
    "state_digest",
]

CHUNK = 2000
R = TypeVar("R", Tenant, ApiKey, Provider, Route)


class UnknownSchemaVersion(ValueError):
    """A snapshot written by a version of Sluice that this one does not understand."""


class _Header(msgspec.Struct):
    schema_version: int


class _Doc(msgspec.Struct):
    schema_version: int
    position: int
    event_count: int
    tenants: list[msgspec.Raw]
    keys: list[msgspec.Raw]
    providers: list[msgspec.Raw]
    routes: list[msgspec.Raw]
    tenant_policies: dict[str, Policy]
    key_policies: dict[str, Policy]
    prices: dict[str, Price]
    provider_prices: dict[str, Price]
    budget_exhausted: dict[str, str]
    budget_alerted: dict[str, str]
    admin_tokens: dict[str, AdminToken]


# "deterministic": sets (a route's tenants) are sorted, so equal states give equal bytes.
_encode = msgspec.msgpack.Encoder(order="deterministic").encode
_header = msgspec.msgpack.Decoder(_Header)
_doc = msgspec.msgpack.Decoder(_Doc)
_chunk_decoders: dict[type[Any], Any] = {
    Tenant: msgspec.msgpack.Decoder(list[Tenant]),
    ApiKey: msgspec.msgpack.Decoder(list[ApiKey]),
    Provider: msgspec.msgpack.Decoder(list[Provider]),
    Route: msgspec.msgpack.Decoder(list[Route]),
}


def _chunks(records: Iterable[R]) -> list[msgspec.Raw]:
    ordered = sorted(records, key=lambda r: r.id)
    return [msgspec.Raw(_encode(ordered[i : i + CHUNK])) for i in range(0, len(ordered), CHUNK)]


def _records(chunks: list[msgspec.Raw], cls: type[R]) -> dict[str, R]:
    decoder = _chunk_decoders[cls]
    return {record.id: record for chunk in chunks for record in decoder.decode(chunk)}


async def _chunks_cooperatively(records: Iterable[R]) -> list[msgspec.Raw]:
    chunks, it = [], iter(records)
    while batch := list(islice(it, CHUNK)):
        chunks.append(msgspec.Raw(_encode(batch)))
        await asyncio.sleep(0)
    return chunks


async def encode_state_cooperatively(state: State) -> bytes:
    """Like `encode_state` (not canonical), pausing for the event loop between chunks."""
    doc = _Doc(
        schema_version=SCHEMA_VERSION,
        position=state.position,
        event_count=state.event_count,
        tenants=await _chunks_cooperatively(state.tenants.values()),
        keys=await _chunks_cooperatively(state.keys.values()),
        providers=await _chunks_cooperatively(state.providers.values()),
        routes=await _chunks_cooperatively(state.routes.values()),
        **_small_maps(state),
    )
    return _encode(doc)


def _small_maps(state: State) -> dict[str, Any]:
    return {
        "tenant_policies": dict(state.tenant_policies),
        "key_policies": dict(state.key_policies),
        "prices": dict(state.prices),
        "provider_prices": dict(state.provider_prices),
        "budget_exhausted": dict(state.budget_exhausted),
        "budget_alerted": dict(state.budget_alerted),
        "admin_tokens": dict(state.admin_tokens),
    }


def encode_state(state: State) -> bytes:
    return _encode(
        _Doc(
            schema_version=SCHEMA_VERSION,
            position=state.position,
            event_count=state.event_count,
            tenants=_chunks(state.tenants.values()),
            keys=_chunks(state.keys.values()),
            providers=_chunks(state.providers.values()),
            routes=_chunks(state.routes.values()),
            **_small_maps(state),
        )
    )


def decode_state(data: bytes) -> State:
    """The state in `data`; `UnknownSchemaVersion` if another version of Sluice wrote it."""
    version = _header.decode(data).schema_version
    if version != SCHEMA_VERSION:
        raise UnknownSchemaVersion(f"snapshot schema {version}, this build reads {SCHEMA_VERSION}")
    doc = _doc.decode(data)
    keys = _records(doc.keys, ApiKey)
    routes = _records(doc.routes, Route)
    return State(
        position=doc.position,
        event_count=doc.event_count,
        tenants=Map(_records(doc.tenants, Tenant)),
        keys=Map(keys),
        key_ids_by_hash=Map({k.hash: k.id for k in keys.values()}),
        providers=Map(_records(doc.providers, Provider)),
        routes=Map(routes),
        route_ids_by_model=Map({r.model: r.id for r in routes.values()}),
        tenant_policies=Map(doc.tenant_policies),
        key_policies=Map(doc.key_policies),
        prices=Map(doc.prices),
        provider_prices=Map(doc.provider_prices),
        budget_exhausted=Map(doc.budget_exhausted),
        budget_alerted=Map(doc.budget_alerted),
        admin_tokens=Map(doc.admin_tokens),
    )


def state_digest(state: State) -> str:
    """SHA-256 of the canonical encoding: equal for equal states, whoever folded them."""
    return hashlib.sha256(encode_state(state)).hexdigest()
