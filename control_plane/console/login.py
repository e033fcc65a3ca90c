"""Logging in and out. A token (the bootstrap token, a named `sluice-admin-` token, or
an OIDC identity provider's JWT) proves the identity exactly as on the admin API; the
session then stands for it. The login form carries a CSRF token of its own (a cookie
and the same value in the form), so no other site can log a browser in."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from control_plane.auth import SESSION_COOKIE, identify
from control_plane.console.base import PUBLIC, checked_form, secure, session_cookie
from control_plane.console.sessions import end_current, end_session, start_session
from control_plane.console.sso import sso_enabled
from control_plane.errors import AdminError

__all__ = ["login", "login_form", "logout"]

_LOGIN_CSRF = "sluice_login_csrf"


def _form(request: Request[Any, Any, Any], error: str | None, status: int = 200) -> Template:
    token = secrets.token_urlsafe(24)
    response = Template(
        template_name="console/login.html",
        status_code=status,
        context={
            "csrf": token,
            "error": error,
            "oidc": request.app.state.oidc is not None,
            "sso": sso_enabled(request.app.state.settings),
        },
    )
    response.set_cookie(
        Cookie(
            key=_LOGIN_CSRF,
            value=token,
            path="/console/login",
            httponly=True,
            secure=secure(request),
            samesite="strict",
            max_age=3600,
        )
    )
    return response


@get("/login", opt=PUBLIC, name="console-login")
async def login_form(request: Request[Any, Any, Any]) -> Template:
    return _form(request, None)


@post("/login", opt=PUBLIC, status_code=303)
async def login(request: Request[Any, Any, Any]) -> Response[Any] | Template:
    form = await request.form()
    sent, expected = str(form.get("csrf", "")), request.cookies.get(_LOGIN_CSRF, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _form(request, "The login form expired. Try again.", status=403)
    token = str(form.get("token", "")).strip()
    if not token:
        return _form(request, "Enter an admin token.", status=400)
    try:
        identity, credential, expires = await identify(request.app.state, token)
    except AdminError as exc:
        return _form(request, exc.detail, status=exc.status)
    await end_current(request)
    cookie, session = await start_session(request.app.state, identity, credential, expires)
    response = Redirect("/console", status_code=303)
    response.set_cookie(session_cookie(cookie, secure(request), session.seconds_left()))
    response.delete_cookie(_LOGIN_CSRF, path="/console/login")
    return response


@post("/logout", status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    await checked_form(request)
    await end_session(request.app.state, request.cookies[SESSION_COOKIE])
    response = Redirect("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response
