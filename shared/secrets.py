"""Client API keys (stored only as hashes) and provider keys (encrypted at rest).

Client keys are 256-bit random tokens, so a plain SHA-256 is enough to store
them: there is nothing to brute-force. Provider keys are encrypted with Fernet
(AES-128-CBC + HMAC-SHA256) under a key derived from `SLUICE_SECRET_KEY`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

__all__ = [
    "ADMIN_TOKEN_PREFIX",
    "KEY_PREFIX",
    "SecretBox",
    "SecretKeyError",
    "hash_client_key",
    "new_client_key",
]

KEY_PREFIX = "sk-sluice-"
ADMIN_TOKEN_PREFIX = "sluice-admin-"


def new_client_key(prefix: str = KEY_PREFIX) -> tuple[str, str, str]:
    """A fresh client key (or, with ADMIN_TOKEN_PREFIX, admin token):
    `(secret, shown_prefix, hash)`. Only the last two are kept."""
    secret = prefix + secrets.token_urlsafe(32)
    return secret, secret[: len(prefix) + 6], hash_client_key(secret)


def hash_client_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SecretKeyError(ValueError):
    """A ciphertext that this secret key cannot open."""


class SecretBox:
    """Encrypts and decrypts provider keys with the deployment's secret key."""

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 16:
            raise ValueError("the secret key must be at least 16 characters")
        digest = hashlib.sha256(b"sluice provider keys\0" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self.decrypt = lru_cache(maxsize=1024)(self._decrypt)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError("cannot decrypt a provider key with this secret key") from None
