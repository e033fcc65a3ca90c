"""The variables a configuration document reads a provider's secrets from: which
fields are secrets and name them (`SECRET_ENV`), and the names an export gives them
(`env_names`). Only the standard library here: `sluice apply` reads this too, and the
CLI imports no server code."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["ENV_NAME_LENGTH", "SECRET_ENV", "env_names"]

# Each secret field and the field naming the variable it is read from.
SECRET_ENV = {
    "api_key": "api_key_env",
    "aws_access_key_id": "aws_access_key_id_env",
    "aws_secret_access_key": "aws_secret_access_key_env",
    "aws_session_token": "aws_session_token_env",
}
ENV_NAME_LENGTH = 200  # the longest variable name a document takes

_PREFIX = "SLUICE_PROVIDER_"
# what a provider's part of a name may take: the rest is the prefix and `_<SECRET>`
_ROOM = ENV_NAME_LENGTH - len(_PREFIX) - 1 - max(len(secret) for secret in SECRET_ENV)
_TAG = 8  # hex digits of a name's hash that tell it apart: more only if these clash
_HASH = 64  # all of them (SHA-256)


def env_names(providers: Iterable[str]) -> dict[tuple[str, str], str]:
    """The variable an export names for each provider's each secret:
    `SLUICE_PROVIDER_OPENAI_EU_API_KEY` for the `api_key` of `openai-eu`. Each
    variable is one secret's: providers whose names read the same once upper-cased and
    with `_` for every other character (`p-x`, `P_X`) get a tag made from a hash of
    their name (`SLUICE_PROVIDER_P_X_1A2B3C4D_API_KEY`), the same on every export;
    so does a name too long for a variable, which is cut short."""
    names = sorted(set(providers))
    digits = {name: 0 if len(_plain(name)) <= _ROOM else _TAG for name in names}
    while True:
        stems = {name: _stem(name, digits[name]) for name in names}
        count = Counter(stems.values())
        clashing = [name for name in names if count[stems[name]] > 1]
        if not clashing:
            break
        for name in clashing:
            if digits[name] == _HASH:
                raise RuntimeError(f"no variable name of its own for provider {name!r}")
            digits[name] = min(_HASH, max(_TAG, 2 * digits[name]))
    return {
        (name, secret): f"{_PREFIX}{stems[name]}_{secret.upper()}"
        for name in names
        for secret in SECRET_ENV
    }


def _plain(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _stem(name: str, digits: int) -> str:
    """The provider's part of its variables' names, with `digits` of its hash."""
    if not digits:
        return _plain(name)
    tag = hashlib.sha256(name.encode()).hexdigest()[:digits].upper()
    return f"{_plain(name)[: _ROOM - digits - 1]}_{tag}"
