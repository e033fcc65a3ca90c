"""What every console page shares: the session guard, the in-process admin API as
the session's identity, CSRF checks on forms, the page template's context, and the
answers to a refused read (404 and 403 pages, or back to the login page)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect, Template

from control_plane.auth import SESSION_COOKIE
from control_plane.console.api import AdminApi, ApiError
from control_plane.console.sessions import Session, load_session
from control_plane.identity import Identity, Role

__all__ = [
    "CONSOLE_EXCEPTION_HANDLERS",
    "PUBLIC",
    "CsrfRefused",
    "NotLoggedIn",
    "admin_api",
    "checked_form",
    "console_guard",
    "identity",
    "page",
    "secure",
    "security_headers",
    "session_cookie",
]

PUBLIC = {"console_public": True}  # a handler's `opt`: no session needed (login, assets)
_SESSION = "sluice_console_session"  # where the guard leaves the session in the scope

# the sections of the console: (path, label, whether only platform identities open it)
NAV = [
    ("/console", "Overview", False),
    ("/console/tenants", "Tenants", False),
    ("/console/providers", "Providers", True),
    ("/console/routes", "Routes", True),
    ("/console/usage", "Usage", False),
    ("/console/audit", "Audit log", False),
]


class NotLoggedIn(Exception):
    """No live session: the login page, then back here."""


class CsrfRefused(Exception):
    """A change posted without the session's CSRF token."""


async def console_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.opt.get("console_public"):
        return
    cookie = connection.cookies.get(SESSION_COOKIE)
    session = None if cookie is None else await load_session(connection.app.state, cookie)
    if session is None:
        raise NotLoggedIn()
    connection.scope[_SESSION] = session  # type: ignore[literal-required]


def _session(request: Request[Any, Any, Any]) -> Session:
    session: Session = request.scope[_SESSION]  # type: ignore[literal-required]
    return session


def identity(request: Request[Any, Any, Any]) -> Identity:
    return _session(request).identity


def is_platform(request: Request[Any, Any, Any]) -> bool:
    return identity(request).tenant_id is None


@asynccontextmanager
async def admin_api(request: Request[Any, Any, Any]) -> AsyncIterator[AdminApi]:
    """The admin API as this request's session."""
    api = AdminApi(request.app, request.cookies[SESSION_COOKIE], _session(request).csrf)
    try:
        yield api
    finally:
        await api.aclose()


async def checked_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A posted form's fields (single values), once its CSRF token is the session's."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    sent = fields.pop("csrf", "")
    if not hmac.compare_digest(sent.encode(), _session(request).csrf.encode()):
        raise CsrfRefused()
    return fields


def page(
    request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any
) -> Template:
    """A console page: `template` with the session's identity, CSRF token and the
    sections it may open."""
    who = identity(request)
    nav = [
        (path, label)
        for path, label, platform_only in NAV
        if not platform_only or who.tenant_id is None
    ]
    return Template(
        template_name=template,
        status_code=status,
        context={
            "identity": who,
            "platform": who.tenant_id is None,
            "can_write": who.role is not Role.VIEWER,
            "csrf": _session(request).csrf,
            "nav": nav,
            "here": request.url.path,
            **context,
        },
    )


def secure(request: Request[Any, Any, Any]) -> bool:
    """Whether the console's cookies are `Secure`: over HTTPS, or when told so."""
    return request.url.scheme == "https" or request.app.state.settings.console_secure_cookies


def session_cookie(value: str, secure: bool, max_age: int | None) -> Cookie:
    """The session's cookie: never readable by scripts, never sent by another site."""
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/console",  # the pages only: the admin API is called in-process
        httponly=True,
        secure=secure,
        samesite="strict",
        max_age=max_age,
    )


def _not_logged_in(request: Request[Any, Any, Any], exc: NotLoggedIn) -> Response[Any]:
    response = Redirect("/console/login", status_code=303)
    if SESSION_COOKIE in request.cookies:  # a session that ended: its cookie goes too
        response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# Every console answer: never cached (pages show tenants' data; after logging out, Back
# shows nothing), never framed, no script or style but the console's own files.
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
}


async def security_headers(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _csrf(request: Request[Any, Any, Any], exc: CsrfRefused) -> Template:
    return page(
        request,
        "console/error.html",
        status=403,
        title="Refused",
        message="The form was not sent by this console session (its CSRF token is "
        "missing or wrong). Reload the page and try again.",
    )


def _refused(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any] | Template:
    reply = exc.reply
    if reply.status == 401:
        return Redirect("/console/login", status_code=303)
    detail = reply.body.get("detail") if isinstance(reply.body, dict) else None
    titles = {403: "Not allowed", 404: "Not found"}
    return page(
        request,
        "console/error.html",
        status=reply.status,
        title=titles.get(reply.status, "Could not load this page"),
        message=detail or "The admin API refused this request.",
    )


CONSOLE_EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    NotLoggedIn: _not_logged_in,
    CsrfRefused: _csrf,
    ApiError: _refused,
}
