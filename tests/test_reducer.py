"""The pure reducer: what each event does to the state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.events import (
    Event,
    KeyCreated,
    KeyRevoked,
    Payload,
    ProviderChanged,
    ProviderCreated,
    RouteCreated,
    RouteDeleted,
    TenantCreated,
    TenantDeleted,
    TenantRenamed,
    decode_payload,
    encode_payload,
    event_type,
)
from shared.reducer import OutOfOrderEvent, apply, fold
from shared.state import State


def _events(*payloads: Payload) -> list[Event]:
    now = datetime.now(UTC)
    return [
        Event(
            position=i,
            stream="s",
            stream_version=i,
            type=event_type(p),
            payload=p,
            actor="test",
            created_at=now,
        )
        for i, p in enumerate(payloads, 1)
    ]


BASE = (
    TenantCreated(id="t1", name="one"),
    TenantCreated(id="t2", name="two"),
    KeyCreated(id="k1", tenant_id="t1", name="", prefix="sk-", hash="h1"),
    KeyCreated(id="k2", tenant_id="t2", name="", prefix="sk-", hash="h2"),
    ProviderCreated(
        id="p1", name="p", kind="openai", base_url="http://x/v1", api_key_ciphertext=None
    ),
    ProviderCreated(
        id="p2",
        name="b",
        kind="bedrock",
        base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
        api_key_ciphertext="gAAAA-ciphertext",
        options=(("region", "us-east-1"),),
    ),
    RouteCreated(id="r1", model="m", provider_id="p1", upstream_model="u"),
    RouteCreated(
        id="r2", model="private", provider_id="p1", upstream_model="u", tenant_ids=("t2",)
    ),
)


def test_fold_builds_lookups() -> None:
    state = fold(State(), _events(*BASE))
    assert state.position == len(BASE)
    key = state.key_by_hash("h1")
    assert key is not None
    assert key.tenant_id == "t1"
    route = state.route_for_model("m")
    assert route is not None
    assert route.allows("t1")
    assert route.allows("t2")
    assert [r.model for r in state.routes_for_tenant("t1")] == ["m"]
    assert [r.model for r in state.routes_for_tenant("t2")] == ["m", "private"]


def test_apply_does_not_change_the_old_state() -> None:
    before = fold(State(), _events(*BASE))
    after = apply(before, _events(*BASE, KeyRevoked(id="k1"))[-1])
    assert before.key_by_hash("h1") is not None
    assert after.key_by_hash("h1") is None


def test_deleting_a_tenant_drops_its_keys() -> None:
    state = fold(State(), _events(*BASE, TenantDeleted(id="t1")))
    assert "t1" not in state.tenants
    assert state.key_by_hash("h1") is None
    assert state.key_by_hash("h2") is not None


def test_rename_and_route_delete() -> None:
    state = fold(State(), _events(*BASE, TenantRenamed(id="t1", name="uno"), RouteDeleted(id="r1")))
    assert state.tenants["t1"].name == "uno"
    assert state.route_for_model("m") is None
    assert state.route_for_model("private") is not None


def test_events_for_unknown_things_change_nothing() -> None:
    state = fold(State(), _events(*BASE))
    for payload in (
        KeyRevoked(id="nope"),
        TenantDeleted(id="nope"),
        TenantRenamed(id="nope", name="x"),
        RouteDeleted(id="nope"),
        KeyCreated(id="k9", tenant_id="nope", name="", prefix="", hash="h9"),
    ):
        event = _events(*BASE, payload)[-1]
        after = apply(state, event)
        assert after.position == event.position
        assert (after.tenants, after.keys, after.routes) == (
            state.tenants,
            state.keys,
            state.routes,
        )


def test_events_apply_once_and_in_order() -> None:
    events = _events(*BASE)
    state = fold(State(), events)
    with pytest.raises(OutOfOrderEvent):
        apply(state, events[-1])


@pytest.mark.parametrize("payload", BASE)
def test_payloads_round_trip(payload: Payload) -> None:
    assert decode_payload(event_type(payload), encode_payload(payload)) == payload


def test_every_event_type_has_a_reducer_and_a_projection() -> None:
    from control_plane.projections import _project
    from shared.events import PAYLOAD_TYPES
    from shared.reducer import _apply

    for cls in PAYLOAD_TYPES.values():
        assert _apply.dispatch(cls) is not _apply.dispatch(object), cls
        assert _project.dispatch(cls) is not _project.dispatch(object), cls


def test_provider_options_round_trip_and_change() -> None:
    payloads = [decode_payload(event_type(p), encode_payload(p)) for p in BASE]
    state = fold(State(), _events(*payloads))
    bedrock = state.providers["p2"]
    assert bedrock.options == (("region", "us-east-1"),)
    assert (bedrock.option("region"), bedrock.option("api_version")) == ("us-east-1", None)
    change = ProviderChanged(
        id="p2",
        name="b",
        base_url="https://bedrock-runtime.eu-west-1.amazonaws.com",
        api_key_ciphertext="gAAAA-rotated",
        options=(("region", "eu-west-1"),),
    )
    after = fold(state, _events(*BASE, change)[-1:]).providers["p2"]
    assert (after.kind, after.option("region"), after.api_key_ciphertext) == (
        "bedrock",
        "eu-west-1",
        "gAAAA-rotated",
    )


def test_provider_events_from_before_options_still_apply() -> None:
    created = b'{"id":"p9","name":"old","kind":"openai","base_url":"http://o/v1",'
    created += b'"api_key_ciphertext":null}'
    changed = b'{"id":"p9","name":"older","base_url":"http://o/v2","api_key_ciphertext":"c"}'
    payloads = (
        decode_payload("provider.created", created),
        decode_payload("provider.changed", changed),
    )
    assert [p.options for p in payloads] == [(), ()]  # type: ignore[union-attr]
    provider = fold(State(), _events(*payloads)).providers["p9"]
    assert (provider.name, provider.base_url, provider.options) == ("older", "http://o/v2", ())
    assert provider.option("region") is None
