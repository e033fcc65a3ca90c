"""Snapshots as bytes: a versioned msgpack document, and a digest of the state.

The document holds the primary maps only; the lookup indexes (key by hash, route
by model) are rebuilt on decode, so they can never disagree with the data.
"""

from __future__ import annotations

import hashlib

import msgspec
from immutables import Map

from shared.state import SCHEMA_VERSION, ApiKey, Provider, Route, State, Tenant

__all__ = ["UnknownSchemaVersion", "decode_state", "encode_state", "state_digest"]


class UnknownSchemaVersion(ValueError):
    """A snapshot written by a version of Sluice that this one does not understand."""


class _Header(msgspec.Struct):
    schema_version: int


class _Doc(msgspec.Struct):
    schema_version: int
    position: int
    event_count: int
    tenants: dict[str, Tenant]
    keys: dict[str, ApiKey]
    providers: dict[str, Provider]
    routes: dict[str, Route]


# "deterministic": dict keys and sets are sorted, so equal states give equal bytes.
_encoder = msgspec.msgpack.Encoder(order="deterministic")
_header = msgspec.msgpack.Decoder(_Header)
_decoder = msgspec.msgpack.Decoder(_Doc)


def encode_state(state: State) -> bytes:
    return _encoder.encode(
        _Doc(
            schema_version=SCHEMA_VERSION,
            position=state.position,
            event_count=state.event_count,
            tenants=dict(state.tenants),
            keys=dict(state.keys),
            providers=dict(state.providers),
            routes=dict(state.routes),
        )
    )


def decode_state(data: bytes) -> State:
    """The state in `data`; `UnknownSchemaVersion` if another version of Sluice wrote it."""
    version = _header.decode(data).schema_version
    if version != SCHEMA_VERSION:
        raise UnknownSchemaVersion(f"snapshot schema {version}, this build reads {SCHEMA_VERSION}")
    doc = _decoder.decode(data)
    return State(
        position=doc.position,
        event_count=doc.event_count,
        tenants=Map(doc.tenants),
        keys=Map(doc.keys),
        key_ids_by_hash=Map({k.hash: k.id for k in doc.keys.values()}),
        providers=Map(doc.providers),
        routes=Map(doc.routes),
        route_ids_by_model=Map({r.model: r.id for r in doc.routes.values()}),
    )


def state_digest(state: State) -> str:
    """SHA-256 of the canonical encoding: equal for equal states, whoever folded them."""
    return hashlib.sha256(encode_state(state)).hexdigest()
