"""`sluice routes`: public model names, the deployments that serve them, and how."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType

from control_plane.cli.common import IfMatch, Yes, confirm, if_match, settings
from control_plane.cli.connection import Api, api
from control_plane.cli.errors import CliError
from control_plane.cli.lookup import provider_id, route_id, tenant_id
from control_plane.cli.output import OutputOption, columns, emit, fields

__all__ = ["DEPLOYMENTS", "register", "show_route"]

app = typer.Typer(name="routes", help="Routes: a model name, its deployments, how to choose.")
Ref = Annotated[str, typer.Argument(help="The route's id or model name.")]
Strategy = Annotated[str | None, typer.Option(help="weighted, least_in_flight or lowest_latency.")]
Tenants = Annotated[
    list[str] | None,
    typer.Option("--tenant", help="Only this tenant (id or name) may use it; repeatable."),
]
Continuation = Annotated[
    bool | None, typer.Option(help="Continue a partial assistant message (prefill).")
]
Fallback = Annotated[
    str | None, typer.Option(help="The route to use when a request is too long for this one.")
]
Retry = Annotated[
    list[str] | None,
    typer.Option(metavar="KEY=VALUE", help="e.g. max_attempts=2, deadline=60; repeatable."),
]
Breaker = Annotated[
    list[str] | None,
    typer.Option(metavar="KEY=VALUE", help="e.g. failures=3, cooldown=20; repeatable."),
]
_SETTINGS = fields(
    "id",
    "model",
    "strategy",
    "tenant_ids",
    "retry",
    "breaker",
    "continuation",
    "context_fallback",
    "version",
    "created_at",
    "updated_at",
)
DEPLOYMENT_KEYS = {"provider", "model", "weight", "priority", "rpm", "tpm", "continuation"}


DEPLOYMENTS = columns(
    "id", "provider_id", "upstream_model", "weight", "priority", "rpm", "tpm", title="deployments"
)


def _tenants(route: dict[str, Any]) -> str:
    ids = route["tenant_ids"]
    return "every tenant" if ids is None else ", ".join(ids) or "none"


def _summary(routes: Any) -> Any:
    """Routes with their deployments and tenants counted, for the table."""
    return [
        {**r, "deployments": len(r["deployments"]), "tenants": _count(r["tenant_ids"])}
        for r in routes
    ]


def _count(tenant_ids: list[str] | None) -> str:
    return "all" if tenant_ids is None else str(len(tenant_ids))


def show_route(route: dict[str, Any]) -> RenderableType:
    """A route's settings, then its deployments."""
    return Group(
        _SETTINGS({**route, "tenant_ids": _tenants(route)}), DEPLOYMENTS(route["deployments"])
    )


def _deployment(api: Api, spec: str, model: str) -> dict[str, Any]:
    """`provider=P,model=M,weight=2,...` as a deployment (the model: the route's by default)."""
    given = settings(spec.split(","), "--deployment")
    unknown = set(given) - DEPLOYMENT_KEYS
    if unknown or "provider" not in given:
        raise CliError(
            f"--deployment takes provider=P and optionally {', '.join(sorted(DEPLOYMENT_KEYS))}"
            f", comma-separated, not {spec!r}"
        )
    deployment = {k: v for k, v in given.items() if k not in ("provider", "model")}
    deployment["provider_id"] = provider_id(api, str(given["provider"]))
    deployment["upstream_model"] = str(given.get("model") or model)
    return deployment


def _route_settings(
    api: Api,
    *,
    strategy: str | None,
    tenants: list[str] | None,
    continuation: bool | None,
    context_fallback: str | None,
    retry: list[str] | None,
    breaker: list[str] | None,
) -> dict[str, Any]:
    """The settings given (a setting not given is left out)."""
    body: dict[str, Any] = {
        "strategy": strategy,
        "continuation": continuation,
        "context_fallback": context_fallback,
    }
    if tenants:
        body["tenant_ids"] = [tenant_id(api, t) for t in tenants]
    if retry:
        body["retry"] = settings(retry, "--retry")
    if breaker:
        body["breaker"] = settings(breaker, "--breaker")
    return {k: v for k, v in body.items() if v is not None}


@app.command("list")
def list_(ctx: typer.Context, _output: OutputOption = None) -> None:
    """Every route, with how many deployments it has."""
    routes = api(ctx).get("/admin/v1/routes")
    table = columns("id", "model", "strategy", "deployments", "tenants", "version")
    emit(ctx, routes, lambda data: table(_summary(data)))


@app.command()
def get(ctx: typer.Context, route: Ref, _output: OutputOption = None) -> None:
    """One route, with its deployments."""
    client = api(ctx)
    found = client.get(f"/admin/v1/routes/{route_id(client, route)}")
    emit(ctx, found, show_route)


@app.command()
def create(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The public model name clients ask for.")],
    deployment: Annotated[
        list[str],
        typer.Option(
            "--deployment",
            "-d",
            metavar="provider=P[,model=M,weight=N,priority=N,rpm=N,tpm=N]",
            help="A deployment (provider id or name; model: the upstream's name); repeatable.",
        ),
    ],
    strategy: Strategy = None,
    tenant: Tenants = None,
    continuation: Continuation = None,
    context_fallback: Fallback = None,
    retry: Retry = None,
    breaker: Breaker = None,
    _output: OutputOption = None,
) -> None:
    """Route a public model name to one or more deployments."""
    client = api(ctx)
    body = {"model": model, "deployments": [_deployment(client, d, model) for d in deployment]}
    body |= _route_settings(
        client,
        strategy=strategy,
        tenants=tenant,
        continuation=continuation,
        context_fallback=context_fallback,
        retry=retry,
        breaker=breaker,
    )
    emit(ctx, client.post("/admin/v1/routes", json=body), show_route)


@app.command()
def update(
    ctx: typer.Context,
    route: Ref,
    strategy: Strategy = None,
    tenant: Tenants = None,
    all_tenants: Annotated[bool, typer.Option(help="Let every tenant use it.")] = False,
    continuation: Continuation = None,
    context_fallback: Fallback = None,
    no_context_fallback: Annotated[bool, typer.Option(help="No fallback route.")] = False,
    retry: Retry = None,
    breaker: Breaker = None,
    version: IfMatch = None,
    _output: OutputOption = None,
) -> None:
    """Change a route's settings; what is not given stays as it is (in --retry and
    --breaker too)."""
    if tenant and all_tenants:
        raise CliError("--tenant or --all-tenants, not both")
    if context_fallback is not None and no_context_fallback:
        raise CliError("--context-fallback or --no-context-fallback, not both")
    client = api(ctx)
    body = _route_settings(
        client,
        strategy=strategy,
        tenants=tenant,
        continuation=continuation,
        context_fallback=context_fallback,
        retry=retry,
        breaker=breaker,
    )
    if no_context_fallback:
        body["context_fallback"] = None
    if all_tenants:
        body["tenant_ids"] = None
    if not body:
        raise CliError("nothing to change: give at least one option (see --help)")
    path = f"/admin/v1/routes/{route_id(client, route)}"
    emit(ctx, client.patch(path, json=body, headers=if_match(version)), show_route)


@app.command()
def delete(ctx: typer.Context, route: Ref, yes: Yes = False, version: IfMatch = None) -> None:
    """Delete a route: its model name stops being served."""
    client = api(ctx)
    rid = route_id(client, route)
    confirm(yes, f"Delete route {route} ({rid})?")
    client.delete(f"/admin/v1/routes/{rid}", headers=if_match(version))
    typer.echo(f"deleted route {rid}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
