"""OIDC for the admin API: a JWT from the configured issuer and for the configured
audience, signed with a key of the issuer's JWKS, names its caller's role and tenant.

Off unless `SLUICE_OIDC_ISSUER` is set. Only asymmetric algorithms are accepted, and a
token's algorithm must be its key's. A token may live at most `MAX_LIFETIME` seconds. A
viewer or tenant_admin names its tenant; a platform-wide viewer says so with the tenant
`PLATFORM_WIDE`. Every refusal is an `Unauthorized` whose detail says why, without
echoing the token or what it claims.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import jwt

from control_plane.errors import Unauthorized
from control_plane.identity import Identity, Role
from control_plane.jwks import (
    ASYMMETRIC,
    LOAD_DEADLINE,
    MIN_REFETCH,
    KeyCache,
    KeysUnavailable,
    file_loader,
    url_loader,
)
from shared.config import ConfigError, Settings

__all__ = [
    "MAX_LIFETIME",
    "PLATFORM_WIDE",
    "REFETCH_EVERY",
    "KeysUnavailable",
    "OidcVerifier",
    "enabled",
    "verifier_from",
]

REFETCH_EVERY = 10.0
"""Least seconds between two loads of the key set (an unknown key id asks for one), unless
the cache time is shorter still; never less than `MIN_REFETCH`."""
MAX_LIFETIME = 24 * 3600
"""Most seconds from a token's `iat` (else from now) to its `exp`."""
PLATFORM_WIDE = "*"
"""The tenant claim's value for a viewer of every tenant."""
MAX_SUBJECT = 255
REQUIRED = ("iss", "aud", "exp", "sub")

# The first entry an exception is an instance of says why its token is refused.
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not yet valid (nbf or iat is in the future)"),
    (jwt.InvalidIssuerError, "the token was not issued by the configured issuer"),
    (jwt.InvalidAudienceError, "the token is not meant for this API (aud)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not allowed for its key"),
    (jwt.InvalidKeyError, "the token's key is not usable (too short, or of the wrong type)"),
    (jwt.PyJWTError, "the token is malformed"),
)


def enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer)


def verifier_from(settings: Settings) -> OidcVerifier | None:
    """The verifier the settings ask for, or None when OIDC is off."""
    return OidcVerifier(settings) if enabled(settings) else None


class OidcVerifier:
    """`http`: a client to fetch the JWKS with (else one per fetch); `refetch_every`:
    least seconds between two loads of the key set (default: `REFETCH_EVERY`, or the
    cache time if that is shorter, but at least `MIN_REFETCH`); `load_deadline`: most
    seconds one load may take."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        refetch_every: float | None = None,
        load_deadline: float = LOAD_DEADLINE,
    ) -> None:
        _check(settings)
        self._issuer, self._audience = settings.oidc_issuer, settings.oidc_audience
        self._algorithms = _algorithms(settings.oidc_algorithms)
        self._role_claim, self._tenant_claim = settings.oidc_role_claim, settings.oidc_tenant_claim
        self._leeway = settings.oidc_leeway_seconds
        if settings.oidc_jwks_url:
            url = httpx.URL(settings.oidc_jwks_url)
            load, source = url_loader(str(url), http), f"{url.host}{url.path}"
        else:
            load, source = file_loader(settings.oidc_jwks_file), settings.oidc_jwks_file
        ttl = settings.oidc_jwks_cache_seconds
        if refetch_every is None:
            refetch_every = max(MIN_REFETCH, min(REFETCH_EVERY, ttl))
        self._keys = KeyCache(
            load, source, ttl=ttl, refetch_every=refetch_every, deadline=load_deadline
        )

    async def identify(self, token: str) -> Identity:
        """The caller a token names; `Unauthorized` saying why when it names none, and
        `KeysUnavailable` (503) while no key set could ever be loaded."""
        identity, _expires = await self.identify_until(token)
        return identity

    async def identify_until(self, token: str) -> tuple[Identity, float]:
        """`identify`, with when the token expires (its `exp`, a Unix time)."""
        alg, kid = self._header(token)
        self._check_issuer(token)
        key = await self._keys.find(kid)
        if key is None:
            raise Unauthorized(
                "the token's key id is not in the issuer's key set"
                if kid is not None
                else "the token names no key id (kid) and the issuer has several keys"
            )
        if key.algorithm_name != alg:
            raise Unauthorized(f"the token's algorithm {alg} is not its key's")
        claims = self._verified_claims(token, key, alg)
        return self._identity(claims), float(claims["exp"])

    def _header(self, token: str) -> tuple[str, str | None]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the token is malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            allowed = ", ".join(sorted(self._algorithms))
            raise Unauthorized(f"the token's algorithm is not allowed (allowed: {allowed})")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("the token is malformed: its key id (kid) is not a string")
        return alg, kid

    def _check_issuer(self, token: str) -> None:
        """Before the key set is consulted, so another issuer's tokens never reload it."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthorized("the token is malformed") from None
        if "iss" not in claims:
            raise Unauthorized("the token lacks the required claim iss")
        if claims["iss"] != self._issuer:
            raise Unauthorized("the token was not issued by the configured issuer")

    def _verified_claims(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED), "enforce_minimum_key_length": True},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the token lacks the required claim {exc.claim}") from None
        except jwt.PyJWTError as exc:
            reason = next(text for kind, text in _REFUSALS if isinstance(exc, kind))
            raise Unauthorized(reason) from None
        _check_lifetime(claims)
        return claims

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        subject = claims["sub"]
        if not (isinstance(subject, str) and 0 < len(subject) <= MAX_SUBJECT):
            raise Unauthorized(f"the token's subject (sub) is not 1 to {MAX_SUBJECT} characters")
        if not subject.isprintable():
            raise Unauthorized("the token's subject (sub) holds unprintable characters")
        role = self._role(claims.get(self._role_claim))
        tenant_id = None
        if role is not Role.PLATFORM_ADMIN:
            tenant_id = self._tenant(role, claims.get(self._tenant_claim))
        return Identity(f"oidc:{subject}", role, tenant_id)

    def _role(self, value: object) -> Role:
        """A role name, or a list of names holding exactly one role name (the shape of
        group or role lists most identity providers emit)."""
        if value is None:
            raise Unauthorized(f"the token lacks the role claim {self._role_claim}")
        names = value if isinstance(value, list) else [value]
        roles = {Role(name) for name in names if isinstance(name, str) and name in _ROLE_NAMES}
        if len(roles) != 1:
            known = ", ".join(_ROLE_NAMES)
            many = "several roles" if roles else "no known role"
            raise Unauthorized(f"the role claim {self._role_claim} names {many} (one of {known})")
        return roles.pop()

    def _tenant(self, role: Role, value: object) -> str | None:
        """The tenant a viewer or tenant_admin is bound to; None for a platform-wide
        viewer, which says so explicitly, so that a token lacking the claim is refused
        rather than read as every tenant."""
        claim = f"the claim {self._tenant_claim}"
        if value is None:
            wide = f' (or "{PLATFORM_WIDE}" for all tenants)' if role is Role.VIEWER else ""
            raise Unauthorized(f"a {role.value} token must name its tenant{wide} in {claim}")
        if value == PLATFORM_WIDE:
            if role is Role.VIEWER:
                return None
            raise Unauthorized(
                f'a {role.value} token must name one tenant in {claim}, not "{PLATFORM_WIDE}"'
            )
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                pass
        raise Unauthorized(f"{claim} is not a tenant id (a UUID)")


_ROLE_NAMES = tuple(role.value for role in Role)


def _check_lifetime(claims: Mapping[str, Any]) -> None:
    """After PyJWT's checks, which have made sure `exp` (and `iat`, if any) are numbers
    and that `iat` is not ahead of now."""
    start = int(claims["iat"]) if "iat" in claims else time.time()
    if int(claims["exp"]) - start > MAX_LIFETIME:
        raise Unauthorized(
            f"the token lives longer than {MAX_LIFETIME // 3600} hours (exp is too far ahead)"
        )


def _algorithms(raw: str) -> frozenset[str]:
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def _check(settings: Settings) -> None:
    """Settings that would make tokens checkable in a weaker way than intended fail at
    start, naming the variable."""
    problems = []
    if not settings.oidc_issuer:
        problems.append("SLUICE_OIDC_ISSUER is required")
    if not settings.oidc_audience:
        problems.append(
            "SLUICE_OIDC_AUDIENCE is required: without it, any token of the issuer would do"
        )
    if bool(settings.oidc_jwks_url) == bool(settings.oidc_jwks_file):
        problems.append("set exactly one of SLUICE_OIDC_JWKS_URL and SLUICE_OIDC_JWKS_FILE")
    elif settings.oidc_jwks_url and not settings.oidc_jwks_url.startswith(("https://", "http://")):
        problems.append("SLUICE_OIDC_JWKS_URL must be an http(s) URL")
    algorithms = _algorithms(settings.oidc_algorithms)
    if not algorithms or not algorithms <= ASYMMETRIC:
        problems.append(
            "SLUICE_OIDC_ALGORITHMS must name asymmetric algorithms only, from "
            + ", ".join(sorted(ASYMMETRIC))
        )
    if settings.oidc_leeway_seconds < 0 or settings.oidc_jwks_cache_seconds < 0:
        problems.append(
            "SLUICE_OIDC_LEEWAY_SECONDS and SLUICE_OIDC_JWKS_CACHE_SECONDS must be >= 0"
        )
    if not settings.oidc_role_claim or not settings.oidc_tenant_claim:
        problems.append("SLUICE_OIDC_ROLE_CLAIM and SLUICE_OIDC_TENANT_CLAIM must not be empty")
    if problems:
        raise ConfigError("OIDC settings: " + "; ".join(problems))
