"""An identity provider's two endpoints of the authorization code flow, from a thread on
127.0.0.1: `/authorize` sends the browser straight back to the client's `redirect_uri`
with a code (the user has "signed in" as `subject`), and `/token` exchanges that code,
once, for an ID token signed with `key`, only when the PKCE verifier matches the
challenge `/authorize` got. The keys themselves come from a `JwksServer`."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["CodeFlowProvider"]


class CodeFlowProvider:
    def __init__(self, id_token: Callable[[str], str]) -> None:
        """`id_token(nonce)`: the ID token to give for a sign-in with that nonce."""
        self._id_token = id_token
        self._lock = threading.Lock()
        self._codes: dict[str, dict[str, str]] = {}  # code -> what /authorize got
        self.authorized: list[dict[str, str]] = []  # the query of every /authorize
        self.exchanges: list[dict[str, str]] = []  # the form of every /token
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.authorization_endpoint, self.token_endpoint = base + "/authorize", base + "/token"
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()

    def authorize(self, query: dict[str, str]) -> str:
        """Where the browser goes next: back to the client with a code."""
        code = secrets.token_urlsafe(16)
        with self._lock:
            self.authorized.append(query)
            self._codes[code] = query
        back = {"code": code, "state": query.get("state", "")}
        return query["redirect_uri"] + "?" + urlencode(back)

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.exchanges.append(form)
            asked = self._codes.pop(form.get("code", ""), None)
        if asked is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if challenge != asked.get("code_challenge") or form.get("redirect_uri") != asked.get(
            "redirect_uri"
        ):
            return 400, {"error": "invalid_grant"}
        return 200, {"id_token": self._id_token(asked.get("nonce", "")), "token_type": "Bearer"}


def _handler(provider: CodeFlowProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self.send_response(302)
            self.send_header("location", provider.authorize(query))
            self.send_header("content-length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            status, body = provider.token(form)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
