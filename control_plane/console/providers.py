"""Console: upstream providers (platform identities only: for anyone else the API's
403 is the page). The list and a new provider's form; a provider's page with its
settings, its default price and its removal. Credentials go to the API and are never
put back into a page, not even into a form shown again after a refusal."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from control_plane.api.provider_kinds import AWS_FIELDS, KINDS, OPTION_FIELDS, SECRET_FIELDS
from control_plane.console.api import AdminApi
from control_plane.console.base import admin_api, checked_form, page
from control_plane.console.forms import number

__all__ = ["HANDLERS"]

_KIND_LABELS = {
    "openai": "OpenAI API (OpenAI, vLLM, any compatible server)",
    "azure_openai": "Azure OpenAI",
    "anthropic": "Anthropic",
    "gemini": "Google Gemini",
    "bedrock": "AWS Bedrock",
}
KIND_OPTIONS = [(kind, _KIND_LABELS.get(kind, kind)) for kind in KINDS]

# (field, label, help): the options some kinds take, in the API's field names
OPTIONS = [
    ("api_version", "API version", "Azure OpenAI only. Empty: the kind's default."),
    ("anthropic_version", "Anthropic version", "Anthropic only. Empty: the kind's default."),
    ("region", "AWS region", "Bedrock only, and required there (e.g. us-east-1)."),
]


def _without_secrets(fields: dict[str, str]) -> dict[str, str]:
    """A form's values to show again: everything but credentials."""
    return {name: value for name, value in fields.items() if name not in SECRET_FIELDS}


def _filled(fields: dict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    """The fields among `names` that the form filled in (an empty one: left out)."""
    return {name: fields[name].strip() for name in names if fields.get(name, "").strip()}


def _new_body(fields: dict[str, str]) -> dict[str, Any]:
    names = ("name", "kind", "base_url", *OPTION_FIELDS, "api_key", *AWS_FIELDS)
    return _filled(fields, names)


def _change_body(fields: dict[str, str], provider: dict[str, Any]) -> dict[str, Any]:
    """The edit form as a PATCH: name and base URL as given, the provider's own options
    when filled in, credentials only when new ones are given (empty: unchanged)."""
    body: dict[str, Any] = {
        "name": fields.get("name", "").strip(),
        "base_url": fields.get("base_url", "").strip(),
    }
    body |= _filled(fields, tuple(provider["options"]))
    body |= _filled(fields, ("api_key", *AWS_FIELDS))
    if fields.get("remove_key") == "on" and "api_key" not in body:
        body["api_key"] = None
    return body


def _edit_values(provider: dict[str, Any]) -> dict[str, str]:
    return {"name": provider["name"], "base_url": provider["base_url"], **provider["options"]}


def _price_values(provider: dict[str, Any]) -> dict[str, str]:
    names = ("input_per_million", "output_per_million")
    return {name: f"{provider[name]:g}" for name in names if provider.get(name) is not None}


async def _list_page(
    request: Request[Any, Any, Any],
    api: AdminApi,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    found = await api.get("/providers")
    return page(
        request,
        "console/providers.html",
        status=status,
        title="Providers",
        providers=sorted(found, key=lambda p: p["name"]),
        kinds=KIND_OPTIONS,
        options=OPTIONS,
        form=form or {"kind": KINDS[0]},
        errors=errors or {},
    )


@get("/providers")
async def providers(request: Request[Any, Any, Any]) -> Template:
    async with admin_api(request) as api:
        return await _list_page(request, api)


@post("/providers", status_code=303)
async def create_provider(request: Request[Any, Any, Any]) -> Response[Any] | Template:
    fields = await checked_form(request)
    async with admin_api(request) as api:
        reply = await api.call("POST", "/providers", _new_body(fields))
        if reply.ok:
            return Redirect(f"/console/providers/{reply.body['id']}", status_code=303)
        return await _list_page(
            request, api, reply.status, _without_secrets(fields), reply.field_errors()
        )


async def _provider_page(
    request: Request[Any, Any, Any],
    provider_id: FromPath[uuid.UUID],
    status: int = 200,
    **forms: Any,
) -> Template:
    """A provider's page; `forms` holds what a refused form sent (`edit_form`,
    `edit_errors`, `price_form`, `price_errors`, `delete_errors`)."""
    async with admin_api(request) as api:
        provider = await api.get(f"/providers/{provider_id}")
        routes = await api.get("/routes")
    serving = [
        r for r in routes if any(d["provider_id"] == provider["id"] for d in r["deployments"])
    ]
    return page(
        request,
        "console/provider.html",
        status=status,
        title=f"Provider {provider['name']}",
        provider=provider,
        kind_label=_KIND_LABELS.get(provider["kind"], provider["kind"]),
        options=[o for o in OPTIONS if o[0] in provider["options"]],
        routes=sorted(serving, key=lambda r: r["model"]),
        edit_form=forms.get("edit_form") or _edit_values(provider),
        edit_errors=forms.get("edit_errors") or {},
        price_form=forms.get("price_form") or _price_values(provider),
        price_errors=forms.get("price_errors") or {},
        delete_errors=forms.get("delete_errors") or {},
    )


@get("/providers/{provider_id:uuid}")
async def provider(request: Request[Any, Any, Any], provider_id: FromPath[uuid.UUID]) -> Template:
    return await _provider_page(request, provider_id)


@post("/providers/{provider_id:uuid}", status_code=303)
async def change_provider(
    request: Request[Any, Any, Any], provider_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    fields = await checked_form(request)
    async with admin_api(request) as api:
        current = await api.get(f"/providers/{provider_id}")
        reply = await api.call("PATCH", f"/providers/{provider_id}", _change_body(fields, current))
    if reply.ok:
        return Redirect(f"/console/providers/{provider_id}", status_code=303)
    return await _provider_page(
        request,
        provider_id,
        reply.status,
        edit_form=_without_secrets(fields),
        edit_errors=reply.field_errors(),
    )


@post("/providers/{provider_id:uuid}/price", status_code=303)
async def set_price(
    request: Request[Any, Any, Any], provider_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    fields = await checked_form(request)
    body = {
        name: number(fields.get(name, "").strip(), "float")
        for name in ("input_per_million", "output_per_million")
    }
    async with admin_api(request) as api:
        reply = await api.call("PUT", f"/providers/{provider_id}/price", body)
    if reply.ok:
        return Redirect(f"/console/providers/{provider_id}", status_code=303)
    return await _provider_page(
        request, provider_id, reply.status, price_form=fields, price_errors=reply.field_errors()
    )


@post("/providers/{provider_id:uuid}/delete", status_code=303)
async def delete_provider(
    request: Request[Any, Any, Any], provider_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    await checked_form(request)
    async with admin_api(request) as api:
        reply = await api.call("DELETE", f"/providers/{provider_id}")
    if reply.ok:
        return Redirect("/console/providers", status_code=303)
    return await _provider_page(
        request, provider_id, reply.status, delete_errors=reply.field_errors()
    )


HANDLERS = [providers, create_provider, provider, change_provider, set_price, delete_provider]
