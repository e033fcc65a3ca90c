"""`sluice apply -f FILE` and `sluice export`: the whole configuration (tenants and
their policies, providers, routes, prices) as one YAML document.

A provider's secrets are not written in the file but named by variable
(`api_key_env: OPENAI_KEY`); `apply` reads them from its environment and sends them
with the document. `apply` shows the plan (+ create, ~ change, - remove, with the
fields that change) and then applies exactly that plan in one transaction: if the
configuration changed in between, nothing is applied."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from control_plane.cli.common import from_env
from control_plane.cli.connection import Output, api, output
from control_plane.cli.errors import CliError
from control_plane.cli.output import OutputOption, console
from control_plane.declarative.secret_env import SECRET_ENV

__all__ = ["dump", "register", "with_secrets"]

MARKS = {"create": ("+", "green"), "change": ("~", "yellow"), "remove": ("-", "red")}

File = Annotated[
    str, typer.Option("--file", "-f", metavar="FILE", help="The document (- for standard input).")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the plan; apply nothing.")]
Out = Annotated[
    Path | None, typer.Option("--file", "-f", metavar="FILE", help="Write here, not to stdout.")
]


def register(app: typer.Typer) -> None:
    panel = "Configuration as a file"
    short = "Make the configuration what a file says (shows the plan first)."
    app.command("apply", rich_help_panel=panel, short_help=short)(apply)
    short = "The configuration as a file for apply (no secrets)."
    app.command("export", rich_help_panel=panel, short_help=short)(export)


def apply(
    ctx: typer.Context, file: File, dry_run: DryRun = False, _output: OutputOption = None
) -> None:
    """Make the configuration what FILE says: create, change and remove tenants,
    providers, routes and prices to match it (client keys and admin tokens are not in
    it). What the configuration has and FILE has not is removed."""
    document = with_secrets(_read(file))
    client = api(ctx)
    planned = client.post("/admin/v1/config/plan", json=document)
    as_json = output(ctx) is Output.json
    if not planned["changes"]:
        _say(planned if as_json else "no changes")
        return
    if not as_json:
        show(console(), planned["changes"])
    if dry_run:
        _say(planned if as_json else f"dry run: {_count(planned)}, not applied")
        return
    params = {"digest": planned["digest"]}
    applied = client.post("/admin/v1/config/apply", json=document, params=params)
    _say(applied if as_json else f"applied: {_count(applied)} (position {applied['position']})")


def export(ctx: typer.Context, out: Out = None) -> None:
    """The configuration as a document for `sluice apply`: in a stable order, without
    defaults, and without a secret (each provider's are named by variable:
    SLUICE_PROVIDER_<NAME>_API_KEY, ...)."""
    text = dump(api(ctx).get("/admin/v1/config"))
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)


def dump(document: Any) -> str:
    """`document` as YAML, keys in the order the API gives them."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def with_secrets(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with each provider's secrets read from the variables it names."""
    providers = document.get("providers")
    if not isinstance(providers, list):
        return document  # the API says what is wrong with it
    filled = []
    for i, provider in enumerate(providers):
        if isinstance(provider, dict):
            provider = dict(provider)
            for field, env in SECRET_ENV.items():
                if field in provider:
                    raise CliError(
                        f"providers[{i}].{field}: a secret does not belong in the file;"
                        f" name the variable that holds it with {env}"
                    )
                variable = provider.get(env)
                if isinstance(variable, str):
                    what = f"{field} of provider {provider.get('name')!r}"
                    provider[field] = from_env(variable, what)
        filled.append(provider)
    return {**document, "providers": filled}


def show(out: Console, changes: list[dict[str, Any]]) -> None:
    """Each change on a line of its own, its fields below it."""
    for change in changes:
        mark, colour = MARKS.get(change["action"], ("?", "white"))
        kind = str(change["kind"]).replace("_", " ")
        out.print(f"[{colour}]{mark} {kind}[/] [bold]{escape(str(change['name']))}[/]")
        for field in change.get("fields") or []:
            out.print(f"    {escape(_field(change['action'], field))}")


def _field(action: str, field: dict[str, Any]) -> str:
    name, old, new = field["field"], field.get("old"), field.get("new")
    if action == "create":
        return f"{name}: {_shown(new)}"
    if action == "remove":
        return f"{name}: {_shown(old)}"
    return f"{name}: {_shown(old)} → {_shown(new)}"


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _count(result: dict[str, Any]) -> str:
    changes, events = len(result["changes"]), result["events"]
    return f"{changes} change{'s' * (changes != 1)}, {events} event{'s' * (events != 1)}"


def _say(what: Any) -> None:
    if isinstance(what, str):
        typer.echo(what)
    else:
        sys.stdout.write(json.dumps(what, indent=2, ensure_ascii=False) + "\n")


def _read(file: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{file} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise CliError(f"{file} must hold a mapping: tenants, providers, routes, prices")
    return document
