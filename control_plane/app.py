"""The admin API: Litestar, msgspec structs, problem details, OpenAPI at /admin/schema."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Request, Router, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from control_plane.api.admin_tokens import AdminTokenController, MeController
from control_plane.api.config import ConfigController
from control_plane.api.deployments import DeploymentHealthController, RouteDeploymentController
from control_plane.api.events import EventController
from control_plane.api.keys import KeyController, TenantKeyController
from control_plane.api.policies import KeyPolicyController, TenantPolicyController
from control_plane.api.prices import PriceController, ProviderPriceController
from control_plane.api.providers import ProviderController
from control_plane.api.replicas import ReplicaController
from control_plane.api.routes import RouteController
from control_plane.api.state import StateController
from control_plane.api.tenants import TenantController
from control_plane.api.usage import UsageController
from control_plane.auth import admin_guard
from control_plane.budget_watch import BudgetWatch
from control_plane.console.live import live_events
from control_plane.console.router import TEMPLATES, console_router
from control_plane.errors import EXCEPTION_HANDLERS
from control_plane.jobs import Jobs
from control_plane.oidc import verifier_from
from control_plane.openapi import install as finish_openapi
from control_plane.queries import Q
from control_plane.store import EventStore
from control_plane.strict import check_request
from shared.config import Settings
from shared.secrets import SecretBox

__all__ = ["create_app"]


@get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Ready when the database answers; 503 in problem details otherwise."""
    await request.app.state.store.pool.fetchval(Q.ping)
    return {"status": "ready"}


def create_app(settings: Settings) -> Litestar:
    settings.require("database_url", "admin_token", "secret_key")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # min_size=0: start (and answer 503) even while the database is down.
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=0, max_size=10, command_timeout=30, timeout=5
        )
        jobs = Jobs(
            settings.database_url,
            snapshot_every_events=settings.snapshot_every_events,
            snapshot_every_seconds=settings.snapshot_every_seconds,
        )
        await jobs.start()
        app.state.jobs = jobs
        app.state.store = EventStore(
            pool, settings.notify_channel, in_transaction=jobs.in_transaction
        )
        watch = asyncio.create_task(
            BudgetWatch(app.state.store, settings.budget_check_interval).run(),
            name="sluice-budget-watch",
        )
        try:
            yield
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await jobs.stop()
            await pool.close()

    admin = Router(
        "/admin/v1",
        route_handlers=[
            TenantController,
            TenantKeyController,
            KeyController,
            ProviderController,
            RouteController,
            RouteDeploymentController,
            DeploymentHealthController,
            EventController,
            StateController,
            TenantPolicyController,
            KeyPolicyController,
            PriceController,
            ProviderPriceController,
            UsageController,
            AdminTokenController,
            MeController,
            ConfigController,
            ReplicaController,
        ],
        guards=[admin_guard],
        before_request=check_request,
        security=[{"bearer": []}],
    )
    openapi = OpenAPIConfig(
        title="Sluice admin API",
        version="1",
        path="/admin/schema",
        render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
        ),
    )
    app = Litestar(
        route_handlers=[admin, console_router(), healthz, readyz],
        lifespan=[lifespan, live_events(settings.database_url, settings.notify_channel)],
        openapi_config=openapi,
        template_config=TEMPLATES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        debug=False,
        logging_config=None,  # shared/logs.py sets up logging (SLUICE_LOG_FORMAT)
    )
    finish_openapi(app)
    app.state.settings = settings
    app.state.admin_token = settings.admin_token
    app.state.oidc = verifier_from(settings)
    app.state.secret_box = SecretBox(settings.secret_key)
    return app
