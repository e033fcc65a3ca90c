"""OIDC end to end: a control plane configured with an issuer accepts its JWTs as
admin identities (the role and tenant from the claims, the subject as the actor of
what they change), refuses the rest, and picks up a rotated key set."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.oidc import AUDIENCE, ISSUER, JwksServer, claims, jwks, mint, rsa_key
from tests.support.stack import Stack, another_control_plane

FIRST, SECOND, STRANGER = rsa_key("first"), rsa_key("second"), rsa_key("first")


@pytest.fixture(scope="module")
def idp() -> Iterator[JwksServer]:
    with JwksServer(jwks(FIRST)) as server:
        yield server


@pytest.fixture(scope="module")
def oidc_url(control_plane: Stack, idp: JwksServer) -> Iterator[str]:
    """A second control plane on the same database, with OIDC on (keys never cached, so
    a rotation shows within the second that must pass between two loads)."""
    env = {
        "SLUICE_OIDC_ISSUER": ISSUER,
        "SLUICE_OIDC_AUDIENCE": AUDIENCE,
        "SLUICE_OIDC_JWKS_URL": idp.url,
        "SLUICE_OIDC_JWKS_CACHE_SECONDS": "0",
    }
    with another_control_plane(control_plane, "oidc", env) as url:
        yield url


def _call(url: str, token: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    return httpx.request(method, f"{url}/admin/v1{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


async def test_a_tenant_admin_jwt_acts_for_its_tenant_as_its_subject(
    control_plane: Stack, oidc_url: str
) -> None:
    mine, theirs = await control_plane.create_tenant(), await control_plane.create_tenant()
    token = mint(claims(role="tenant_admin", tenant=mine["id"], sub="dana@example.test"), FIRST)
    me = _call(oidc_url, token, "GET", "/me").json()
    assert me == {
        "actor": "oidc:dana@example.test",
        "role": "tenant_admin",
        "tenant_id": mine["id"],
    }
    created = _call(oidc_url, token, "POST", f"/tenants/{mine['id']}/keys", json={"name": "ci"})
    assert created.status_code == 201, created.text
    control_plane.handed_out.append(created.json()["key"])
    assert _call(oidc_url, token, "GET", f"/tenants/{theirs['id']}/keys").status_code == 404
    assert _call(oidc_url, token, "GET", "/providers").status_code == 403
    audit = _call(oidc_url, token, "GET", "/events", params={"actor": "oidc:dana@example.test"})
    events = audit.json()["data"]
    assert [(e["type"], e["tenant_id"]) for e in events] == [("key.created", mine["id"])]


# Minted when the test runs, not at import: a suite slower than a token's lifetime
# would otherwise see every one of them expired.
REFUSED: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: mint(claims(lifetime=-120), FIRST), "expired"),
    "wrong-issuer": (lambda: mint(claims(iss="https://elsewhere.test"), FIRST), "issuer"),
    "wrong-audience": (lambda: mint(claims(aud="another-app"), FIRST), "(aud)"),
    "unknown-kid": (lambda: mint(claims(), FIRST, kid="nobody"), "key"),
    "alg-none": (lambda: mint(claims(), None, alg="none"), "algorithm"),
    "other-key": (lambda: mint(claims(), STRANGER), "signature"),
    "viewer-without-tenant": (
        lambda: mint(claims(role="viewer"), FIRST),
        'must name its tenant (or "*" for all tenants)',
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_tokens_are_401_with_the_reason(oidc_url: str, case: str) -> None:
    make, reason = REFUSED[case]
    token = make()
    resp = _call(oidc_url, token, "GET", "/me")
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert reason in resp.json()["detail"].lower()
    assert token not in resp.text


def test_a_platform_viewer_jwt_says_so(oidc_url: str) -> None:
    token = mint(claims(role="viewer", tenant="*", sub="auditor"), FIRST)
    me = _call(oidc_url, token, "GET", "/me").json()
    assert me == {"actor": "oidc:auditor", "role": "viewer", "tenant_id": None}
    assert _call(oidc_url, token, "GET", "/providers").status_code == 200


def test_a_rotated_key_set_is_picked_up(oidc_url: str, idp: JwksServer) -> None:
    assert _call(oidc_url, mint(claims(), SECOND), "GET", "/me").status_code == 401
    idp.swap(jwks(SECOND))
    try:
        # the key set is loaded at most once a second, so the new key may take that long
        deadline = time.monotonic() + 15
        while (me := _call(oidc_url, mint(claims(sub="rotated"), SECOND), "GET", "/me")).is_error:
            assert me.status_code == 401, me.text
            assert time.monotonic() < deadline, "the rotated key set was not picked up"
            time.sleep(0.2)
        assert me.json()["actor"] == "oidc:rotated"
        assert _call(oidc_url, mint(claims(), FIRST), "GET", "/me").status_code == 401
    finally:
        idp.swap(jwks(FIRST))


def test_an_admin_token_still_works_beside_oidc(control_plane: Stack, oidc_url: str) -> None:
    resp = _call(oidc_url, control_plane.admin_token, "GET", "/me")
    assert resp.json()["actor"] == "admin:bootstrap"
    assert _call(oidc_url, secrets.token_urlsafe(20), "GET", "/me").status_code == 401


async def test_a_jwt_of_a_deleted_tenant_names_no_one(control_plane: Stack, oidc_url: str) -> None:
    tenant = await control_plane.create_tenant()
    token = mint(claims(role="viewer", tenant=tenant["id"], sub="gone@example.test"), FIRST)
    deadline = time.monotonic() + 15  # the key set may be reloading after a rotation
    while _call(oidc_url, token, "GET", "/me").status_code != 200:
        assert time.monotonic() < deadline, "the JWT was never accepted"
        await asyncio.sleep(0.2)
    async with control_plane.admin() as admin:
        assert (await admin.delete(f"/tenants/{tenant['id']}")).status_code == 204
    refused = _call(oidc_url, token, "GET", "/events")
    assert refused.status_code == 401
    assert "no longer exists" in refused.json()["detail"]
