"""The identity provider's public signing keys (a JWKS), from a URL or a file, cached.

The set is loaded on first use and again once it is older than its time to live, or
when a token names a key id the set does not hold (the provider rotated its keys).
Loads are rate-limited (at most one a second whatever the settings), so tokens naming
made-up key ids cannot make the control plane hammer the provider, and each has a total
deadline, so a provider that answers slowly cannot hold the set's lock for long. A load
that fails, for whatever reason, leaves the previous set in service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt

from control_plane.errors import AdminError

__all__ = [
    "ASYMMETRIC",
    "LOAD_DEADLINE",
    "MAX_JWKS_BYTES",
    "MIN_REFETCH",
    "KeyCache",
    "KeySet",
    "KeysUnavailable",
    "file_loader",
    "url_loader",
]

log = logging.getLogger("sluice.control_plane.oidc")

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_JWKS_BYTES = 1024 * 1024
FETCH_TIMEOUT = httpx.Timeout(5.0)  # each connect, read and write
LOAD_DEADLINE = 10.0
"""Seconds one load may take in all, however steadily the provider trickles its answer."""
MIN_REFETCH = 1.0
"""Least seconds between two loads when the settings would allow less (a cache time of 0)."""

KeySet = Mapping[str | None, jwt.PyJWK]
"""Signing keys by key id (`kid`); a key published without one is under None."""
Loader = Callable[[], Awaitable[bytes]]


class KeysUnavailable(AdminError):
    """No key set has ever been loaded, so no token can be checked: 503."""

    status = 503


class _LoadFailed(Exception):
    """A key set that could not be fetched, read or parsed; the message says why."""


def url_loader(url: str, http: httpx.AsyncClient | None = None) -> Loader:
    """Fetches the set with `http`, or with a short-lived client of its own."""

    async def load() -> bytes:
        try:
            if http is not None:
                return await _get(http, url)
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT) as client:
                return await _get(client, url)
        except httpx.HTTPError as exc:
            raise _LoadFailed(f"GET failed: {type(exc).__name__}") from None

    return load


async def _get(client: httpx.AsyncClient, url: str) -> bytes:
    async with client.stream("GET", url, timeout=FETCH_TIMEOUT) as response:
        if response.status_code != 200:
            raise _LoadFailed(f"GET answered {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise _LoadFailed(f"the key set is larger than {MAX_JWKS_BYTES} bytes")
        return bytes(body)


def file_loader(path: str) -> Loader:
    """Reads the set from a file, again on every load, so a replaced file is picked up."""

    async def load() -> bytes:
        try:
            return await asyncio.to_thread(Path(path).read_bytes)
        except OSError as exc:
            raise _LoadFailed(f"cannot read the file: {exc.strerror}") from None

    return load


def parse_key_set(raw: bytes) -> KeySet:
    """The usable signing keys of a JWKS document. Symmetric (`oct`) keys, encryption
    keys, keys for an algorithm that is not asymmetric (when they name one), and entries
    that cannot be built into a key, whatever the reason, are left out; a set with none
    left is refused."""
    try:
        document = json.loads(raw)
    except ValueError:
        raise _LoadFailed("the key set is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise _LoadFailed('the key set has no "keys" list')
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in entries:
        key = _signing_key(entry)
        kid = entry.get("kid") if isinstance(entry, dict) else None
        if key is not None and (kid is None or isinstance(kid, str)):
            keys.setdefault(kid, key)
    if not keys:
        raise _LoadFailed("the key set holds no usable signing key")
    return keys


def _signing_key(entry: Any) -> jwt.PyJWK | None:
    if not isinstance(entry, dict) or entry.get("kty") in (None, "oct"):
        return None
    if entry.get("use", "sig") != "sig":
        return None
    alg = entry.get("alg")
    if alg is not None and not (isinstance(alg, str) and alg in ASYMMETRIC):
        return None
    try:
        return jwt.PyJWK(entry)
    except Exception:  # PyJWK raises more than PyJWTError on odd fields; one entry only
        return None


class KeyCache:
    """The current key set. `ttl`: seconds a loaded set is used before it is loaded
    again; `refetch_every`: the least number of seconds between two loads (or tries);
    `deadline`: the most seconds one load may take."""

    def __init__(
        self,
        load: Loader,
        source: str,
        *,
        ttl: float,
        refetch_every: float,
        deadline: float = LOAD_DEADLINE,
    ) -> None:
        self._load, self._source = load, source
        self._ttl, self._refetch_every, self._deadline = ttl, refetch_every, deadline
        self._keys: KeySet | None = None
        self._loaded_at = 0.0
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    async def find(self, kid: str | None) -> jwt.PyJWK | None:
        """The key `kid` names (None: the token names none, and the set holds one key),
        or None when the set does not hold it even after a reload."""
        if self._keys is None or self._stale() or _pick(self._keys, kid) is None:
            await self._reload()
        if self._keys is None:
            raise KeysUnavailable("the identity provider's signing keys could not be loaded")
        return _pick(self._keys, kid)

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at >= self._ttl

    async def _reload(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._tried_at is not None and now - self._tried_at < self._refetch_every:
                return  # loaded (or tried) a moment ago, perhaps by a caller we waited for
            self._tried_at = now
            try:
                keys = await self._loaded()
            except Exception as exc:  # whatever went wrong, the set in service stays
                kept = "keeping the previous set" if self._keys is not None else "no set yet"
                why = str(exc) if isinstance(exc, _LoadFailed) else type(exc).__name__
                log.warning("JWKS from %s not loaded (%s): %s", self._source, kept, why)
                return
            self._keys, self._loaded_at = keys, time.monotonic()
            log.info("JWKS from %s loaded: %d signing key(s)", self._source, len(keys))

    async def _loaded(self) -> KeySet:
        try:
            async with asyncio.timeout(self._deadline):
                raw = await self._load()
        except TimeoutError:
            raise _LoadFailed(f"not loaded within {self._deadline:g} s") from None
        return parse_key_set(raw)


def _pick(keys: KeySet, kid: str | None) -> jwt.PyJWK | None:
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    return keys.get(kid) if kid is not None else None
