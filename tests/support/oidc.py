"""A stand-in identity provider for OIDC tests: key pairs, tokens minted with them
(including the forged kinds a verifier must refuse), and a JWKS served over real HTTP
from a thread, so sync and async tests alike can point a control plane at it.

    with JwksServer(jwks(key)) as idp:
        settings = Settings(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks_url=idp.url)
        token = mint(claims(role="platform_admin"), key)
        ...
        idp.swap(jwks(other))        # rotate the provider's keys
        idp.trickle = 6.0            # answer slowly: the body in pieces spread over 6 s
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/realms/sluice"
AUDIENCE = "sluice-admin"


@dataclass(frozen=True)
class KeyPair:
    kid: str
    alg: str  # RS256 or ES256
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK, as an identity provider publishes it."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            fields = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            fields = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**fields, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str) -> KeyPair:
    return KeyPair(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> KeyPair:
    return KeyPair(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def jwks(*keys: KeyPair) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def claims(
    *,
    role: str | list[str] | None = "platform_admin",
    tenant: object = None,
    sub: str | None = "alice",
    iss: str | None = ISSUER,
    aud: str | list[str] | None = AUDIENCE,
    lifetime: float = 300,
    **extra: Any,
) -> dict[str, Any]:
    """The claims of a token issued now for `lifetime` seconds; a keyword set to None is
    left out (e.g. `exp=None` for a token without an expiry)."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "sub": sub,
        "iat": now,
        "exp": now + int(lifetime),
        "sluice_role": role,
        "sluice_tenant": tenant,
        **extra,
    }
    return {name: value for name, value in values.items() if value is not None}


def mint(
    payload: dict[str, Any],
    key: KeyPair | bytes | None,
    *,
    kid: str | None = None,
    alg: str | None = None,
) -> str:
    """A JWT of `payload` signed with `key` under header `kid` (default: the key's) and
    `alg` (default: the key's). `alg="none"` makes an unsigned token; an HS* `alg` signs
    with `key` as the HMAC secret (bytes, e.g. a public key's PEM: the old confusion
    attack), which PyJWT itself refuses to do."""
    if isinstance(key, KeyPair):
        header_kid = key.kid if kid is None else kid
        algorithm = alg or key.alg
        if not algorithm.startswith("HS") and algorithm != "none":
            return jwt.encode(payload, key.private, algorithm, headers={"kid": header_kid})
        return _raw(payload, key.public_pem(), algorithm, header_kid)
    return _raw(payload, key or b"", alg or "none", kid)


def _raw(payload: dict[str, Any], secret: bytes, alg: str, kid: str | None) -> str:
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if alg == "none":
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class JwksServer:
    """Serves a JWKS at `url` from a thread on 127.0.0.1, from creation until `stop()`
    (or the end of its `with` block). `swap()` replaces what it serves, `status` makes
    it answer with an error, `trickle` makes it send the body in pieces spread over that
    many seconds, `fetches` counts the GETs."""

    PIECES = 20

    def __init__(self, document: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._body = json.dumps(document).encode()
        self._status = 200
        self._trickle = 0.0
        self._fetches = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"
        self._thread.start()

    def __enter__(self) -> JwksServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stops serving; the port then refuses connections. Safe to call twice."""
        self._stopped.set()  # ends a trickling answer
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def swap(self, document: dict[str, Any] | bytes) -> None:
        """Serve `document` from now on (bytes: as they are, JSON or not)."""
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        with self._lock:
            self._body = body

    @property
    def trickle(self) -> float:
        with self._lock:
            return self._trickle

    @trickle.setter
    def trickle(self, seconds: float) -> None:
        with self._lock:
            self._trickle = seconds

    @property
    def status(self) -> int:
        with self._lock:
            return self._status

    @status.setter
    def status(self, value: int) -> None:
        with self._lock:
            self._status = value

    @property
    def fetches(self) -> int:
        with self._lock:
            return self._fetches

    def _answer(self) -> tuple[int, bytes, float]:
        with self._lock:
            self._fetches += 1
            return self._status, self._body, self._trickle

    def _send(self, out: Any, body: bytes, trickle: float) -> None:
        """`body` to `out`, at once, or a piece every `trickle / PIECES` seconds (each
        piece well within a client's read timeout) until done or stopped."""
        if not trickle:
            out.write(body)
            return
        size = -(-len(body) // self.PIECES)
        for start in range(0, len(body), size):
            if self._stopped.wait(trickle / self.PIECES):
                return
            try:
                out.write(body[start : start + size])
                out.flush()
            except OSError:  # the client gave up
                return


def _handler(server: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, trickle = server._answer()
            if status != 200:
                body = b'{"error": "unavailable"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            server._send(self.wfile, body, trickle)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
