"""The console under /console: its pages, assets and templates, behind the session
guard. Left out of the admin API's OpenAPI document: these are pages, not an API."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from control_plane.console import (
    audit,
    keys,
    login,
    overview,
    providers,
    routes,
    sso,
    tenants,
    usage,
)
from control_plane.console.base import (
    CONSOLE_EXCEPTION_HANDLERS,
    PUBLIC,
    console_guard,
    security_headers,
)

__all__ = ["TEMPLATES", "console_router"]

_HERE = Path(__file__).parent
TEMPLATES = TemplateConfig(directory=_HERE / "templates", engine=JinjaTemplateEngine)


def console_router() -> Router:
    assets = create_static_files_router(
        "/static", directories=[_HERE / "static"], opt=PUBLIC, include_in_schema=False
    )
    return Router(
        "/console",
        route_handlers=[
            login.login_form,
            login.login,
            login.logout,
            *sso.HANDLERS,
            *overview.HANDLERS,
            *tenants.HANDLERS,
            *keys.HANDLERS,
            *providers.HANDLERS,
            *routes.HANDLERS,
            *usage.HANDLERS,
            *audit.HANDLERS,
            assets,
        ],
        guards=[console_guard],
        after_request=security_headers,
        exception_handlers=CONSOLE_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        include_in_schema=False,
    )
