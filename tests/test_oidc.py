"""OIDC tokens for the admin API: `OidcVerifier` against a JWKS served over real HTTP
on 127.0.0.1 (or read from a file), with keys made here."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.errors import Unauthorized
from control_plane.identity import Identity, Role
from control_plane.jwks import LOAD_DEADLINE
from control_plane.oidc import MAX_LIFETIME, KeysUnavailable, OidcVerifier, verifier_from
from shared.config import ConfigError, Settings
from tests.support.oidc import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    claims,
    ec_key,
    jwks,
    mint,
    rsa_key,
)

TENANT = str(uuid.uuid4())


class Keys:
    def __init__(self) -> None:
        self.k1, self.k2, self.stranger = rsa_key("k1"), rsa_key("k2"), rsa_key("stranger")
        self.e1 = ec_key("e1")


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def idp(keys: Keys) -> Iterator[JwksServer]:
    with JwksServer(jwks(keys.k1, keys.e1)) as server:
        yield server


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, **overrides}
    return Settings(**values)


def verifier(
    idp: JwksServer,
    refetch_every: float | None = None,
    load_deadline: float = LOAD_DEADLINE,
    **overrides: Any,
) -> OidcVerifier:
    return OidcVerifier(
        settings(oidc_jwks_url=idp.url, **overrides),
        refetch_every=refetch_every,
        load_deadline=load_deadline,
    )


def now() -> int:
    return int(time.time())


# --- accepted ---------------------------------------------------------------------------------

ACCEPTED: list[tuple[str, Callable[[Keys], str], Identity]] = [
    (
        "platform admin",
        lambda k: mint(claims(role="platform_admin"), k.k1),
        Identity("oidc:alice", Role.PLATFORM_ADMIN),
    ),
    (
        "tenant admin",
        lambda k: mint(claims(role="tenant_admin", tenant=TENANT, sub="bob"), k.k1),
        Identity("oidc:bob", Role.TENANT_ADMIN, TENANT),
    ),
    (
        "tenant viewer, tenant id in capitals",
        lambda k: mint(claims(role="viewer", tenant=TENANT.upper()), k.k1),
        Identity("oidc:alice", Role.VIEWER, TENANT),
    ),
    (
        "platform viewer",
        lambda k: mint(claims(role="viewer", tenant="*"), k.k1),
        Identity("oidc:alice", Role.VIEWER),
    ),
    (
        "platform admin: a tenant claim is ignored",
        lambda k: mint(claims(role="platform_admin", tenant=TENANT), k.k1),
        Identity("oidc:alice", Role.PLATFORM_ADMIN),
    ),
    (
        "ES256 key",
        lambda k: mint(claims(role="viewer", tenant="*", sub="svc-1"), k.e1),
        Identity("oidc:svc-1", Role.VIEWER),
    ),
    (
        "audience list and role list",
        lambda k: mint(
            claims(aud=["account", AUDIENCE], role=["offline_access", "viewer"], tenant=TENANT),
            k.k1,
        ),
        Identity("oidc:alice", Role.VIEWER, TENANT),
    ),
    (
        "clock skew within the leeway",
        lambda k: mint(claims(lifetime=-10, nbf=now() + 10, iat=now() + 10), k.k1),
        Identity("oidc:alice", Role.PLATFORM_ADMIN),
    ),
    (
        "a lifetime of exactly the most allowed",
        lambda k: mint(claims(lifetime=MAX_LIFETIME), k.k1),
        Identity("oidc:alice", Role.PLATFORM_ADMIN),
    ),
    (
        "no iat, expiring within the most allowed",
        lambda k: mint(claims(iat=None, lifetime=MAX_LIFETIME - 60), k.k1),
        Identity("oidc:alice", Role.PLATFORM_ADMIN),
    ),
]


@pytest.mark.parametrize(
    ("token_of", "identity"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
async def test_a_valid_token_names_its_caller(
    keys: Keys, idp: JwksServer, token_of: Callable[[Keys], str], identity: Identity
) -> None:
    assert await verifier(idp).identify(token_of(keys)) == identity


# --- refused ----------------------------------------------------------------------------------

REFUSED: list[tuple[str, Callable[[Keys], str], str]] = [
    ("expired", lambda k: mint(claims(lifetime=-60), k.k1), "the token has expired"),
    ("nbf ahead", lambda k: mint(claims(nbf=now() + 60), k.k1), "not yet valid"),
    ("iat ahead", lambda k: mint(claims(iat=now() + 60), k.k1), "not yet valid"),
    ("other issuer", lambda k: mint(claims(iss="https://evil.test"), k.k1), "not issued by"),
    ("no issuer", lambda k: mint(claims(iss=None), k.k1), "lacks the required claim iss"),
    ("other audience", lambda k: mint(claims(aud="billing"), k.k1), "not meant for this API"),
    ("no audience", lambda k: mint(claims(aud=None), k.k1), "lacks the required claim aud"),
    ("no expiry", lambda k: mint(claims(exp=None), k.k1), "lacks the required claim exp"),
    ("no subject", lambda k: mint(claims(sub=None), k.k1), "lacks the required claim sub"),
    ("empty subject", lambda k: mint(claims(sub=""), k.k1), "subject (sub) is not 1 to"),
    ("odd subject", lambda k: mint(claims(sub="a\nb"), k.k1), "unprintable"),
    ("unknown kid", lambda k: mint(claims(), k.stranger), "key id is not in the issuer's key set"),
    ("alg none", lambda k: mint(claims(), None, kid="k1", alg="none"), "algorithm is not allowed"),
    ("HS256, public key", lambda k: mint(claims(), k.k1, alg="HS256"), "algorithm is not allowed"),
    ("other key, known kid", lambda k: mint(claims(), k.stranger, kid="k1"), "does not verify"),
    ("RS256 under EC kid", lambda k: mint(claims(), k.k1, kid="e1"), "is not its key's"),
    ("one segment", lambda k: "not-a-jwt", "the token is malformed"),
    ("garbage segments", lambda k: "abc.def.ghi", "the token is malformed"),
    ("no role", lambda k: mint(claims(role=None), k.k1), "lacks the role claim sluice_role"),
    ("unknown role", lambda k: mint(claims(role="root"), k.k1), "names no known role"),
    ("two roles", lambda k: mint(claims(role=["viewer", "tenant_admin"]), k.k1), "several roles"),
    (
        "tenant admin, no tenant",
        lambda k: mint(claims(role="tenant_admin"), k.k1),
        "must name its tenant in the claim sluice_tenant",
    ),
    (
        "viewer, no tenant (not read as every tenant)",
        lambda k: mint(claims(role="viewer"), k.k1),
        'a viewer token must name its tenant (or "*" for all tenants) in the claim sluice_tenant',
    ),
    (
        "tenant admin of every tenant",
        lambda k: mint(claims(role="tenant_admin", tenant="*"), k.k1),
        'must name one tenant in the claim sluice_tenant, not "*"',
    ),
    (
        "viewer, tenant null",
        lambda k: mint(claims(role="viewer") | {"sluice_tenant": None}, k.k1),
        "must name its tenant",
    ),
    (
        "viewer, tenant '**'",
        lambda k: mint(claims(role="viewer", tenant="**"), k.k1),
        "not a tenant id",
    ),
    (
        "lifetime over the most allowed",
        lambda k: mint(claims(lifetime=MAX_LIFETIME + 60), k.k1),
        "lives longer than 24 hours",
    ),
    (
        "no iat, exp years ahead",
        lambda k: mint(claims(iat=None, lifetime=10 * 365 * 86400), k.k1),
        "lives longer than 24 hours",
    ),
    (
        "issued two days ago, expiring soon",
        lambda k: mint(claims(iat=now() - 2 * 86400), k.k1),
        "lives longer than 24 hours",
    ),
    (
        "tenant not a UUID",
        lambda k: mint(claims(role="tenant_admin", tenant="acme"), k.k1),
        "not a tenant id",
    ),
    ("tenant a number", lambda k: mint(claims(role="viewer", tenant=7), k.k1), "not a tenant id"),
]


@pytest.mark.parametrize(
    ("token_of", "reason"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
async def test_a_bad_token_is_refused_saying_why(
    keys: Keys, idp: JwksServer, token_of: Callable[[Keys], str], reason: str
) -> None:
    token = token_of(keys)
    with pytest.raises(Unauthorized) as refused:
        await verifier(idp).identify(token)
    assert refused.value.status == 401
    assert reason in refused.value.detail
    assert token not in refused.value.detail


async def test_claim_names_come_from_the_settings(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp, oidc_role_claim="https://sluice/role", oidc_tenant_claim="org")
    named = claims(role=None) | {"https://sluice/role": "tenant_admin", "org": TENANT}
    token = mint(named, keys.k1)
    assert await check.identify(token) == Identity("oidc:alice", Role.TENANT_ADMIN, TENANT)
    with pytest.raises(Unauthorized, match="lacks the role claim https://sluice/role"):
        await check.identify(mint(claims(role="platform_admin"), keys.k1))


# --- the key set ------------------------------------------------------------------------------


async def test_the_key_set_is_fetched_once_for_many_tokens(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp)
    for n in range(10):
        assert (await check.identify(mint(claims(sub=f"u{n}"), keys.k1))).actor == f"oidc:u{n}"
    assert idp.fetches == 1


async def test_concurrent_first_tokens_share_one_fetch(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp)
    found = await asyncio.gather(*(check.identify(mint(claims(), keys.e1)) for _ in range(8)))
    assert {identity.role for identity in found} == {Role.PLATFORM_ADMIN}
    assert idp.fetches == 1


async def test_an_old_key_set_is_fetched_again(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp, refetch_every=0, oidc_jwks_cache_seconds=0)
    for _ in range(3):
        await check.identify(mint(claims(), keys.k1))
    assert idp.fetches == 3


async def test_no_cache_still_loads_at_most_once_a_second(keys: Keys, idp: JwksServer) -> None:
    """A cache time of 0 does not make every token a load: eight at once, and tokens
    naming made-up key ids, share one (the load takes milliseconds, the floor is 1 s)."""
    check = verifier(idp, oidc_jwks_cache_seconds=0)
    found = await asyncio.gather(*(check.identify(mint(claims(), keys.k1)) for _ in range(8)))
    assert {identity.role for identity in found} == {Role.PLATFORM_ADMIN}
    for kid in ("x", "y"):
        with pytest.raises(Unauthorized, match="key id is not in"):
            await check.identify(mint(claims(), keys.k1, kid=kid))
    assert idp.fetches == 1


async def test_rotated_keys_are_picked_up_at_once(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp, refetch_every=0)
    await check.identify(mint(claims(), keys.k1))
    idp.swap(jwks(keys.k2))
    assert (await check.identify(mint(claims(sub="new"), keys.k2))).actor == "oidc:new"
    assert idp.fetches == 2
    with pytest.raises(Unauthorized, match="key id is not in the issuer's key set"):
        await check.identify(mint(claims(), keys.k1))  # retired with the rotation


async def test_unknown_key_ids_do_not_hammer_the_provider(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp, refetch_every=3600)
    await check.identify(mint(claims(), keys.k1))
    idp.swap(jwks(keys.k2))
    for kid in ("k2", "x", "y"):
        with pytest.raises(Unauthorized, match="key id is not in"):
            await check.identify(mint(claims(), keys.k2, kid=kid))
    assert idp.fetches == 1


async def test_tokens_of_another_issuer_do_not_reload_keys(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp, refetch_every=0)
    await check.identify(mint(claims(), keys.k1))
    with pytest.raises(Unauthorized, match="not issued by"):
        await check.identify(mint(claims(iss="https://other.test"), keys.stranger))
    assert idp.fetches == 1


async def test_a_failed_reload_keeps_the_cached_keys(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp, refetch_every=0, oidc_jwks_cache_seconds=0)
    await check.identify(mint(claims(), keys.k1))
    idp.status = 500
    assert (await check.identify(mint(claims(sub="a"), keys.k1))).actor == "oidc:a"
    assert idp.fetches == 2  # the reload was tried, and failed
    idp.swap({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]})
    idp.status = 200
    assert (await check.identify(mint(claims(sub="b"), keys.k1))).actor == "oidc:b"
    idp.stop()
    assert (await check.identify(mint(claims(sub="c"), keys.k1))).actor == "oidc:c"


# Entries a key set may hold that make no usable key, most under the key id of the good key
# published after them.
ODD: dict[str, Callable[[Keys], Any]] = {
    "alg none": lambda k: k.k1.jwk() | {"alg": "none"},
    "alg a list": lambda k: k.k1.jwk() | {"alg": ["RS256"]},
    "alg an object": lambda k: k.k1.jwk() | {"alg": {}},
    "alg HS256": lambda k: k.k1.jwk() | {"alg": "HS256"},
    "alg unknown": lambda k: k.k1.jwk() | {"alg": "RS1024"},
    "use a list": lambda k: k.k1.jwk() | {"use": ["sig"]},
    "kty a list": lambda k: k.k1.jwk() | {"kty": ["RSA"]},
    "n a number": lambda k: k.k1.jwk() | {"n": 5},
    "EC fields, RS256": lambda k: k.e1.jwk() | {"kid": "k1", "alg": "RS256"},
    "unknown curve": lambda k: {"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA", "kid": "k1"},
    "garbage OKP": lambda k: {"kty": "OKP", "crv": "Ed25519", "x": "!!", "kid": "k1"},
    "kid a list": lambda k: k.k1.jwk() | {"kid": ["k1"]},
    "not an object": lambda k: "k1",
}


@pytest.mark.parametrize("odd", list(ODD))
async def test_an_odd_entry_is_skipped_and_the_rest_used(
    keys: Keys, idp: JwksServer, odd: str
) -> None:
    idp.swap({"keys": [ODD[odd](keys), None, keys.k1.jwk()]})
    check = verifier(idp)
    assert (await check.identify(mint(claims(), keys.k1))).role is Role.PLATFORM_ADMIN


@pytest.mark.parametrize("odd", list(ODD))
async def test_a_set_of_odd_entries_only_is_503(keys: Keys, idp: JwksServer, odd: str) -> None:
    idp.swap({"keys": [ODD[odd](keys)]})
    with pytest.raises(KeysUnavailable):
        await verifier(idp).identify(mint(claims(), keys.k1))


async def test_an_unparseable_reload_keeps_the_cached_keys(keys: Keys, idp: JwksServer) -> None:
    """JSON nested too deeply for the parser fails in another way than bad JSON does."""
    check = verifier(idp, refetch_every=0, oidc_jwks_cache_seconds=0)
    await check.identify(mint(claims(), keys.k1))
    idp.swap(b'{"keys": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    assert (await check.identify(mint(claims(sub="a"), keys.k1))).actor == "oidc:a"
    assert idp.fetches == 2
    fresh = verifier(idp)
    with pytest.raises(KeysUnavailable):
        await fresh.identify(mint(claims(), keys.k1))


async def test_a_trickling_provider_cannot_stall_the_keys(keys: Keys, idp: JwksServer) -> None:
    """Each piece of the answer comes well within the read timeout, the whole takes 10 s:
    the load gives up at its deadline, before the set it would bring."""
    check = verifier(idp, refetch_every=0, oidc_jwks_cache_seconds=0, load_deadline=2)
    idp.trickle = 10.0
    with pytest.raises(KeysUnavailable):
        await check.identify(mint(claims(), keys.k1))
    idp.trickle = 0
    await check.identify(mint(claims(), keys.k1))
    idp.swap(jwks(keys.k2))
    idp.trickle = 10.0
    assert (await check.identify(mint(claims(sub="a"), keys.k1))).actor == "oidc:a"
    assert idp.fetches == 3  # the previous set stayed in service


UNUSABLE: list[dict[str, Any]] = [
    {"keys": []},
    {"no": "keys"},
    {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]},
    {"keys": [{"kty": "RSA", "kid": "k1", "use": "enc", "n": "AQAB", "e": "AQAB"}]},
    {"keys": [{"kty": "RSA", "kid": "k1"}]},
]


@pytest.mark.parametrize("document", UNUSABLE)
async def test_no_usable_key_set_is_503(
    keys: Keys, idp: JwksServer, document: dict[str, Any]
) -> None:
    idp.swap(document)
    check = verifier(idp, refetch_every=3600)
    for _ in range(2):
        with pytest.raises(KeysUnavailable) as unavailable:
            await check.identify(mint(claims(), keys.k1))
        assert unavailable.value.status == 503
    assert idp.fetches == 1  # the second token did not fetch again at once


async def test_an_unreachable_provider_is_503(keys: Keys, idp: JwksServer) -> None:
    idp.stop()
    with pytest.raises(KeysUnavailable, match="could not be loaded"):
        await verifier(idp).identify(mint(claims(), keys.k1))


async def test_keys_from_a_file(keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(keys.k1)))
    check = OidcVerifier(
        settings(oidc_jwks_file=str(path), oidc_jwks_cache_seconds=0), refetch_every=0
    )
    assert (await check.identify(mint(claims(), keys.k1))).actor == "oidc:alice"
    path.write_text(json.dumps(jwks(keys.k2)))
    assert (await check.identify(mint(claims(sub="b"), keys.k2))).actor == "oidc:b"
    path.unlink()
    assert (await check.identify(mint(claims(sub="c"), keys.k2))).actor == "oidc:c"


async def test_a_missing_file_is_503(keys: Keys, tmp_path: Path) -> None:
    check = OidcVerifier(settings(oidc_jwks_file=str(tmp_path / "absent.json")))
    with pytest.raises(KeysUnavailable):
        await check.identify(mint(claims(), keys.k1))


# --- settings ---------------------------------------------------------------------------------


def test_oidc_is_off_without_an_issuer() -> None:
    assert verifier_from(Settings()) is None


def test_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SLUICE_OIDC_ISSUER": ISSUER,
        "SLUICE_OIDC_AUDIENCE": AUDIENCE,
        "SLUICE_OIDC_JWKS_FILE": str(tmp_path / "jwks.json"),
    }
    assert isinstance(verifier_from(Settings.from_env(env)), OidcVerifier)


BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"oidc_jwks_url": "http://127.0.0.1:1/j", "oidc_audience": ""}, "SLUICE_OIDC_AUDIENCE"),
    ({}, "exactly one of"),
    ({"oidc_jwks_url": "http://127.0.0.1:1/j", "oidc_jwks_file": "/j"}, "exactly one of"),
    ({"oidc_jwks_url": "file:///etc/jwks"}, "http(s) URL"),
    ({"oidc_jwks_file": "/j", "oidc_algorithms": "RS256,HS256"}, "asymmetric algorithms only"),
    ({"oidc_jwks_file": "/j", "oidc_algorithms": "none"}, "asymmetric algorithms only"),
    ({"oidc_jwks_file": "/j", "oidc_algorithms": " , "}, "asymmetric algorithms only"),
    ({"oidc_jwks_file": "/j", "oidc_leeway_seconds": -1}, "must be >= 0"),
]


@pytest.mark.parametrize(("overrides", "complaint"), BAD_SETTINGS)
def test_weak_or_incomplete_settings_fail_at_start(
    overrides: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ConfigError) as failed:
        verifier_from(settings(**overrides))
    assert complaint in str(failed.value)


async def test_only_the_configured_algorithms_are_accepted(keys: Keys, idp: JwksServer) -> None:
    check = verifier(idp, oidc_algorithms="RS256")
    assert (await check.identify(mint(claims(), keys.k1))).role is Role.PLATFORM_ADMIN
    with pytest.raises(Unauthorized, match=r"not allowed \(allowed: RS256\)"):
        await check.identify(mint(claims(), keys.e1))
