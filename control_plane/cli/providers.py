"""`sluice providers`: upstream providers. Credentials come from an environment
variable (`--api-key-env VAR`) or a prompt that does not echo, never from a flag's
value, and the API never shows them again."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from control_plane.cli.common import IfMatch, Yes, confirm, from_env, if_match, secret
from control_plane.cli.connection import api
from control_plane.cli.errors import CliError
from control_plane.cli.lookup import provider_id
from control_plane.cli.output import OutputOption, columns, emit, fields

__all__ = ["register"]

app = typer.Typer(name="providers", help="Upstream providers and their credentials.")
Ref = Annotated[str, typer.Argument(help="The provider's id or name.")]
BaseUrl = Annotated[str | None, typer.Option(help="Where the upstream API is.")]
ApiVersion = Annotated[str | None, typer.Option(help="azure_openai: the API version.")]
AnthropicVersion = Annotated[str | None, typer.Option(help="anthropic: the API version.")]
Region = Annotated[str | None, typer.Option(help="bedrock: the AWS region.")]
KeyEnv = Annotated[
    str | None, typer.Option(metavar="VAR", help="Read the API key from this variable.")
]
AskKey = Annotated[bool, typer.Option(help="Ask for the API key (it is not echoed).")]
AwsKeyId = Annotated[str | None, typer.Option(help="bedrock: the AWS access key id.")]
AwsSecretEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="bedrock: read the AWS secret access key from this variable."),
]
AwsTokenEnv = Annotated[
    str | None,
    typer.Option(metavar="VAR", help="bedrock: read an AWS session token from this variable."),
]
SHOWN = fields(
    "id",
    "name",
    "kind",
    "base_url",
    "options",
    "has_api_key",
    "input_per_million",
    "output_per_million",
    "version",
    "created_at",
    "updated_at",
)


def _settings(
    *,
    base_url: str | None,
    api_version: str | None,
    anthropic_version: str | None,
    region: str | None,
    aws_access_key_id: str | None,
    aws_secret_env: str | None,
    aws_session_token_env: str | None,
    ask: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "base_url": base_url,
        "api_version": api_version,
        "anthropic_version": anthropic_version,
        "region": region,
    }
    if aws_access_key_id is not None:
        body["aws_access_key_id"] = aws_access_key_id
        body["aws_secret_access_key"] = secret(aws_secret_env, ask, "AWS secret access key")
        if aws_session_token_env:
            body["aws_session_token"] = from_env(aws_session_token_env, "AWS session token")
    return {k: v for k, v in body.items() if v is not None}


@app.command("list")
def list_(ctx: typer.Context, _output: OutputOption = None) -> None:
    """Every provider (never its credentials)."""
    emit(
        ctx,
        api(ctx).get("/admin/v1/providers"),
        columns("id", "name", "kind", "base_url", "has_api_key", "version"),
    )


@app.command()
def get(ctx: typer.Context, provider: Ref, _output: OutputOption = None) -> None:
    """One provider (never its credentials)."""
    client = api(ctx)
    emit(ctx, client.get(f"/admin/v1/providers/{provider_id(client, provider)}"), SHOWN)


@app.command()
def create(
    ctx: typer.Context,
    name: str,
    kind: Annotated[
        str, typer.Option(help="openai, azure_openai, anthropic, gemini or bedrock.")
    ] = "openai",
    base_url: BaseUrl = None,
    api_version: ApiVersion = None,
    anthropic_version: AnthropicVersion = None,
    region: Region = None,
    api_key_env: KeyEnv = None,
    ask_api_key: Annotated[
        bool | None,
        typer.Option(help="Ask for the API key; by default only at a terminal, not for bedrock."),
    ] = None,
    aws_access_key_id: AwsKeyId = None,
    aws_secret_env: AwsSecretEnv = None,
    aws_session_token_env: AwsTokenEnv = None,
    _output: OutputOption = None,
) -> None:
    """Register a provider."""
    ask = sys.stdin.isatty() if ask_api_key is None else ask_api_key
    body = {"name": name, "kind": kind}
    body |= _settings(
        base_url=base_url,
        api_version=api_version,
        anthropic_version=anthropic_version,
        region=region,
        aws_access_key_id=aws_access_key_id,
        aws_secret_env=aws_secret_env,
        aws_session_token_env=aws_session_token_env,
        ask=ask,
    )
    if kind != "bedrock":
        key = secret(api_key_env, ask, "API key")
        if key is not None:
            body["api_key"] = key
    emit(ctx, api(ctx).post("/admin/v1/providers", json=body), SHOWN)


@app.command()
def update(
    ctx: typer.Context,
    provider: Ref,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    base_url: BaseUrl = None,
    api_version: ApiVersion = None,
    anthropic_version: AnthropicVersion = None,
    region: Region = None,
    api_key_env: KeyEnv = None,
    ask_api_key: AskKey = False,
    remove_api_key: Annotated[bool, typer.Option(help="openai: no API key from now on.")] = False,
    aws_access_key_id: AwsKeyId = None,
    aws_secret_env: AwsSecretEnv = None,
    aws_session_token_env: AwsTokenEnv = None,
    version: IfMatch = None,
    _output: OutputOption = None,
) -> None:
    """Change a provider; what is not given stays as it is. A new key rotates the old."""
    body: dict[str, Any] = {} if name is None else {"name": name}
    body |= _settings(
        base_url=base_url,
        api_version=api_version,
        anthropic_version=anthropic_version,
        region=region,
        aws_access_key_id=aws_access_key_id,
        aws_secret_env=aws_secret_env,
        aws_session_token_env=aws_session_token_env,
        ask=ask_api_key,
    )
    key = secret(api_key_env, ask_api_key and aws_access_key_id is None, "API key")
    if remove_api_key and key is not None:
        raise CliError("--remove-api-key and a new API key: give one or the other")
    if remove_api_key or key is not None:
        body["api_key"] = key
    if not body:
        raise CliError("nothing to change: give at least one option (see --help)")
    client = api(ctx)
    path = f"/admin/v1/providers/{provider_id(client, provider)}"
    emit(ctx, client.patch(path, json=body, headers=if_match(version)), SHOWN)


@app.command()
def delete(
    ctx: typer.Context,
    provider: Ref,
    yes: Yes = False,
    version: IfMatch = None,
) -> None:
    """Delete a provider (refused while a route has a deployment on it)."""
    client = api(ctx)
    pid = provider_id(client, provider)
    confirm(yes, f"Delete provider {provider} ({pid})?")
    client.delete(f"/admin/v1/providers/{pid}", headers=if_match(version))
    typer.echo(f"deleted provider {pid}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, rich_help_panel="Administration")
