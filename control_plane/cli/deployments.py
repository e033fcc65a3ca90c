"""`sluice deployments`: one route's deployments, one at a time, and their health."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from control_plane.cli.common import IfMatch, Yes, confirm, if_match, settings
from control_plane.cli.connection import api
from control_plane.cli.errors import CliError
from control_plane.cli.lookup import provider_id, route_id
from control_plane.cli.output import OutputOption, columns, emit, fields
from control_plane.cli.routes import DEPLOYMENTS

__all__ = ["register"]

app = typer.Typer(name="deployments", help="A route's deployments: upstream models serving it.")
Route = Annotated[str, typer.Argument(help="The route's id or model name.")]
Upstream = Annotated[str | None, typer.Option(help="The upstream's model name.")]
Weight = Annotated[int | None, typer.Option(help="Its share of the traffic (weighted).")]
Priority = Annotated[int | None, typer.Option(help="Its tier: lower first.")]
Rpm = Annotated[int | None, typer.Option(help="The provider account's requests a minute.")]
Tpm = Annotated[int | None, typer.Option(help="The provider account's tokens a minute.")]
Continuation = Annotated[bool | None, typer.Option(help="Prefill: as the provider kind says.")]
Timeouts = Annotated[
    list[str] | None,
    typer.Option("--timeout", metavar="KEY=SECONDS", help="e.g. first_token=10; repeatable."),
]
SHOWN = fields(
    "id", "provider_id", "upstream_model", "weight", "priority", "rpm", "tpm", "timeouts",
    "continuation",
)  # fmt: skip
CLEARABLE = ("rpm", "tpm", "continuation")


def _body(
    *,
    provider: str | None,
    upstream_model: str | None,
    weight: int | None,
    priority: int | None,
    rpm: int | None,
    tpm: int | None,
    continuation: bool | None,
    timeout: list[str] | None,
    ctx: typer.Context,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "upstream_model": upstream_model,
        "weight": weight,
        "priority": priority,
        "rpm": rpm,
        "tpm": tpm,
        "continuation": continuation,
    }
    if provider is not None:
        body["provider_id"] = provider_id(api(ctx), provider)
    if timeout:
        body["timeouts"] = settings(timeout, "--timeout")
    return {k: v for k, v in body.items() if v is not None}


@app.command("list")
def list_(ctx: typer.Context, route: Route, _output: OutputOption = None) -> None:
    """A route's deployments."""
    client = api(ctx)
    found = client.get(f"/admin/v1/routes/{route_id(client, route)}")["deployments"]
    emit(ctx, found, DEPLOYMENTS)


@app.command()
def get(ctx: typer.Context, route: Route, deployment: str, _output: OutputOption = None) -> None:
    """One deployment of a route."""
    client = api(ctx)
    path = f"/admin/v1/routes/{route_id(client, route)}/deployments/{deployment}"
    emit(ctx, client.get(path), SHOWN)


@app.command()
def add(
    ctx: typer.Context,
    route: Route,
    provider: Annotated[str, typer.Option(help="The provider's id or name.")],
    upstream_model: Upstream = None,
    weight: Weight = None,
    priority: Priority = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    continuation: Continuation = None,
    timeout: Timeouts = None,
    version: IfMatch = None,
    _output: OutputOption = None,
) -> None:
    """Add a deployment to a route (the upstream model: the route's model by default)."""
    client = api(ctx)
    found = client.get(f"/admin/v1/routes/{route_id(client, route)}")
    body = _body(
        provider=provider,
        upstream_model=upstream_model or found["model"],
        weight=weight,
        priority=priority,
        rpm=rpm,
        tpm=tpm,
        continuation=continuation,
        timeout=timeout,
        ctx=ctx,
    )
    path = f"/admin/v1/routes/{found['id']}/deployments"
    emit(ctx, client.post(path, json=body, headers=if_match(version)), SHOWN)


@app.command()
def update(
    ctx: typer.Context,
    route: Route,
    deployment: str,
    provider: Annotated[str | None, typer.Option(help="The provider's id or name.")] = None,
    upstream_model: Upstream = None,
    weight: Weight = None,
    priority: Priority = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    continuation: Continuation = None,
    timeout: Timeouts = None,
    unset: Annotated[
        list[str] | None,
        typer.Option(metavar="FIELD", help="rpm, tpm or continuation: back to none; repeatable."),
    ] = None,
    version: IfMatch = None,
    _output: OutputOption = None,
) -> None:
    """Change a deployment; what is not given stays as it is (in --timeout too)."""
    body = _body(
        provider=provider,
        upstream_model=upstream_model,
        weight=weight,
        priority=priority,
        rpm=rpm,
        tpm=tpm,
        continuation=continuation,
        timeout=timeout,
        ctx=ctx,
    )
    for name in unset or []:
        if name not in CLEARABLE or name in body:
            raise CliError(f"--unset takes rpm, tpm or continuation, each not also set: {name!r}")
        body[name] = None
    if not body:
        raise CliError("nothing to change: give at least one option (see --help)")
    client = api(ctx)
    path = f"/admin/v1/routes/{route_id(client, route)}/deployments/{deployment}"
    emit(ctx, client.patch(path, json=body, headers=if_match(version)), SHOWN)


@app.command()
def remove(
    ctx: typer.Context, route: Route, deployment: str, yes: Yes = False, version: IfMatch = None
) -> None:
    """Remove a deployment from a route (not its last)."""
    client = api(ctx)
    rid = route_id(client, route)
    confirm(yes, f"Remove deployment {deployment} from route {route}?")
    client.delete(f"/admin/v1/routes/{rid}/deployments/{deployment}", headers=if_match(version))
    typer.echo(f"removed deployment {deployment}")


@app.command()
def health(ctx: typer.Context, deployment: str, _output: OutputOption = None) -> None:
    """A deployment's health as each data-plane replica saw it in the last minute."""
    found = api(ctx).get(f"/admin/v1/deployments/{deployment}/health")
    table = columns(
        "replica", "state", "in_flight", "ttft_ms", "requests", "failures", "last_error",
        "updated_at",
    )  # fmt: skip
    emit(ctx, found, lambda data: table(data["replicas"]))


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
