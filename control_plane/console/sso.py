"""Logging in to the console through the identity provider (OpenID Connect's
authorization code flow, with PKCE): the browser goes to the provider, comes back with
a code, the control plane exchanges it for an ID token and checks that token exactly as
the admin API checks a JWT (`control_plane/oidc.py`: issuer, audience, signature,
lifetime, role and tenant claims), plus the `nonce` it sent. On when OIDC is on and a
client id and the provider's authorization and token endpoints are set.

The flow's state, PKCE verifier and nonce wait in a short-lived cookie that is sent
on the provider's redirect back (SameSite=Lax: a top-level GET from another site).
The session cookie itself is SameSite=Strict, which a browser leaves out of a chain
of redirects that began on another site; so the callback answers with a page of ours
that moves on to the console, not with a redirect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from litestar import Request, get
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from control_plane.auth import Credential, identify
from control_plane.console.base import PUBLIC, secure, session_cookie
from control_plane.console.sessions import end_current, start_session
from control_plane.errors import AdminError
from shared.config import Settings

__all__ = ["HANDLERS", "sso_enabled"]

_FLOW = "sluice_oidc_flow"
_PATH = "/console/login/oidc"
_FLOW_SECONDS = 600


def sso_enabled(settings: Settings) -> bool:
    return bool(
        settings.oidc_issuer
        and settings.oidc_client_id
        and settings.oidc_authorization_endpoint
        and settings.oidc_token_endpoint
    )


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _callback_url(request: Request[Any, Any, Any]) -> str:
    """The redirect URI: as configured (behind a proxy, the address browsers use), else
    this request's own address."""
    configured: str = _settings(request).oidc_redirect_uri
    return configured or str(request.base_url).rstrip("/") + _PATH + "/callback"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _failed(request: Request[Any, Any, Any], reason: str, status: int = 401) -> Template:
    return Template(
        template_name="console/login.html",
        status_code=status,
        context={"error": reason, "csrf": "", "oidc": True, "sso": True, "sso_only": True},
    )


@get("/login/oidc", opt=PUBLIC)
async def start(request: Request[Any, Any, Any]) -> Redirect | Template:
    settings = _settings(request)
    if not sso_enabled(settings):
        return _failed(request, "Single sign-on is not set up on this Sluice.", status=404)
    state, verifier, nonce = (secrets.token_urlsafe(32) for _ in range(3))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": _callback_url(request),
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in settings.oidc_authorization_endpoint else "?"
    response = Redirect(settings.oidc_authorization_endpoint + separator + query, status_code=303)
    response.set_cookie(
        Cookie(
            key=_FLOW,
            value=f"{state}.{verifier}.{nonce}",
            path=_PATH,
            httponly=True,
            secure=secure(request),
            samesite="lax",
            max_age=_FLOW_SECONDS,
        )
    )
    return response


@get("/login/oidc/callback", opt=PUBLIC)
async def callback(request: Request[Any, Any, Any]) -> Template:
    query = request.query_params  # `state` is a name Litestar keeps for itself
    code, state, error = query.get("code"), query.get("state"), query.get("error")
    error_description = query.get("error_description")
    settings = _settings(request)
    if not sso_enabled(settings):
        return _failed(request, "Single sign-on is not set up on this Sluice.", status=404)
    flow = request.cookies.get(_FLOW, "").split(".")
    if len(flow) != 3 or not state or not _same(flow[0], state):
        return _failed(request, "The sign-in expired or did not start here. Try again.", 400)
    if error is not None:  # only now: a link from elsewhere puts no words on this page
        return _failed(request, f"The identity provider refused: {error_description or error}")
    if not code:
        return _failed(request, "The identity provider sent no code.", 400)
    _state, verifier, nonce = flow
    try:
        id_token = await _exchange(settings, code, verifier, _callback_url(request))
        identity, credential, expires = await identify(request.app.state, id_token)
    except AdminError as exc:
        return _failed(request, exc.detail, exc.status)
    if credential != Credential.OIDC:
        return _failed(request, "The identity provider's answer is not an ID token.")
    sent = jwt.decode(id_token, options={"verify_signature": False}).get("nonce")
    if not isinstance(sent, str) or not _same(sent, nonce):
        return _failed(request, "The ID token's nonce is not this sign-in's.")
    await end_current(request)
    cookie, session = await start_session(request.app.state, identity, credential, expires)
    response = Template(template_name="console/signed_in.html", context={"actor": identity.actor})
    response.set_cookie(session_cookie(cookie, secure(request), session.seconds_left()))
    response.delete_cookie(_FLOW, path=_PATH)
    return response


class _ExchangeFailed(AdminError):
    status = 401


async def _exchange(settings: Settings, code: str, verifier: str, redirect_uri: str) -> str:
    """The ID token the provider gives for `code`."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.oidc_client_id,
        "code_verifier": verifier,
    }
    if settings.oidc_client_secret:
        form["client_secret"] = settings.oidc_client_secret
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(settings.oidc_token_endpoint, data=form)
    except httpx.HTTPError as exc:
        raise _ExchangeFailed(f"the identity provider could not be reached ({exc})") from None
    if resp.status_code != 200:
        raise _ExchangeFailed(f"the identity provider refused the code ({resp.status_code})")
    try:
        body = resp.json()
    except ValueError:
        body = None
    token = body.get("id_token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        raise _ExchangeFailed("the identity provider's answer has no id_token")
    return token


HANDLERS = [start, callback]
