"""Console: routes (platform identities only: for anyone else the API's 403 is the
page). The list and a new route's form (its model name and first deployment); a
route's page with its deployments, each with its health as the data-plane replicas
last reported it, and the forms that change the route, add, change and remove
deployments, or delete it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from control_plane.console.api import AdminApi, Reply
from control_plane.console.base import admin_api, checked_form, page
from control_plane.console.forms import number
from control_plane.console.usage import tenant_names

__all__ = ["HANDLERS", "Health", "health_of"]

STRATEGIES = [
    ("weighted", "Weighted: at random, by weight"),
    ("least_in_flight", "Least in flight: fewest requests running per unit of weight"),
    ("lowest_latency", "Lowest latency: shortest time to first token"),
]
# (field, label, kind, help), in the API's field names
DEPLOYMENT_FIELDS = [
    ("weight", "Weight", "int", "Share of requests among deployments of one priority."),
    ("priority", "Priority", "int", "Lower first; the next only when none of this one is up."),
    ("rpm", "Requests per minute", "int", "The upstream account's quota. Empty: none."),
    ("tpm", "Tokens per minute", "int", "The upstream account's quota. Empty: none."),
]
RETRY_FIELDS = [
    ("max_attempts", "Attempts", "int", "Per request, before the answer starts."),
    ("deadline", "Deadline (s)", "float", "For all attempts of one request."),
    ("backoff", "First backoff (s)", "float", "Doubled at each retry of one deployment."),
    ("max_backoff", "Longest backoff (s)", "float", None),
    ("max_retry_after", "Longest Retry-After waited (s)", "float", None),
]
BREAKER_FIELDS = [
    ("failures", "Failures in a row", "int", "The breaker opens after this many."),
    ("ratio", "Failure ratio", "float", "Or when this share of the window's attempts failed,"),
    ("window", "Window (s)", "float", None),
    ("min_requests", "Least attempts in the window", "int", "for the ratio to count."),
    ("cooldown", "Cooldown (s)", "float", "Open this long, then one probe."),
]
_TENANT = "tenant-"  # the settings form's checkbox of one tenant: `tenant-<id>`


@dataclass(frozen=True)
class Health:
    """A deployment's health over the replicas that reported it: the worst breaker
    state, attempts and failures added up, time to first token averaged by attempts."""

    state: str
    badge: str  # the console's class: good, warn or bad
    replicas: int
    not_closed: int  # replicas whose breaker is not closed
    requests: int
    failures: int
    error_rate: float | None
    latency_ms: float | None
    in_flight: int
    last_error: str | None
    last_error_at: str | None


_RANK = {"closed": 0, "half_open": 1, "open": 2}
_BADGE = {"closed": "good", "half_open": "warn", "open": "bad"}


def health_of(replicas: list[dict[str, Any]]) -> Health | None:
    """The summary of the replicas' reports; None when none reported."""
    if not replicas:
        return None
    state = max((r["state"] for r in replicas), key=lambda s: _RANK.get(s, 1))
    requests = sum(r["requests"] for r in replicas)
    failures = sum(r["failures"] for r in replicas)
    timed = [(r["ttft_ms"], max(r["requests"], 1)) for r in replicas if r["ttft_ms"] is not None]
    weight = sum(w for _ms, w in timed)
    erred = [r for r in replicas if r["last_error_at"]]
    last = max(erred, key=lambda r: r["last_error_at"]) if erred else None
    return Health(
        state=state,
        badge=_BADGE.get(state, "warn"),
        replicas=len(replicas),
        not_closed=sum(r["state"] != "closed" for r in replicas),
        requests=requests,
        failures=failures,
        error_rate=failures / requests if requests else None,
        latency_ms=sum(ms * w for ms, w in timed) / weight if timed else None,
        in_flight=sum(r["in_flight"] for r in replicas),
        last_error=None if last is None else last["last_error"],
        last_error_at=None if last is None else last["last_error_at"],
    )


def _numbers(
    fields: dict[str, str], spec: Sequence[tuple[str, str, str, str | None]], empty: str = "omit"
) -> dict[str, Any]:
    """The form's numbers of `spec`; an empty one is left out, or null (`empty="null"`)."""
    body: dict[str, Any] = {}
    for name, _label, kind, _help in spec:
        text = fields.get(name, "").strip()
        if text:
            body[name] = number(text, kind)
        elif empty == "null":
            body[name] = None
    return body


def _deployment_body(fields: dict[str, str], *, change: bool) -> dict[str, Any]:
    """A deployment form as the API's JSON. In a change an empty quota is null (no
    quota of its own); in a new deployment an empty field is left out (the default)."""
    body: dict[str, Any] = {
        name: fields[name].strip()
        for name in ("provider_id", "upstream_model")
        if fields.get(name, "").strip() or not change
    }
    body |= _numbers(fields, DEPLOYMENT_FIELDS[:2])
    body |= _numbers(fields, DEPLOYMENT_FIELDS[2:], "null" if change else "omit")
    return body


def _settings_body(fields: dict[str, str]) -> dict[str, Any]:
    tenants = sorted(name.removeprefix(_TENANT) for name in fields if name.startswith(_TENANT))
    return {
        "strategy": fields.get("strategy", ""),
        "tenant_ids": tenants or None,
        "context_fallback": fields.get("context_fallback") or None,
        "continuation": fields.get("continuation") == "on",
        "retry": _numbers(fields, RETRY_FIELDS),
        "breaker": _numbers(fields, BREAKER_FIELDS),
    }


def _text(value: float) -> str:
    """A number as a form shows it: 0.05, 120 (not 120.0), 1000000 (not 1e+06)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _settings_values(route: dict[str, Any]) -> dict[str, str]:
    values = {name: _text(route["retry"][name]) for name, *_ in RETRY_FIELDS}
    values |= {name: _text(route["breaker"][name]) for name, *_ in BREAKER_FIELDS}
    values |= {_TENANT + t: "on" for t in route["tenant_ids"] or []}
    values |= {"strategy": route["strategy"], "context_fallback": route["context_fallback"] or ""}
    return values | ({"continuation": "on"} if route["continuation"] else {})


def _deployment_values(deployment: dict[str, Any]) -> dict[str, str]:
    names = ("provider_id", "upstream_model", *(f[0] for f in DEPLOYMENT_FIELDS))
    return {name: str(deployment[name]) for name in names if deployment.get(name) is not None}


async def _names(api: AdminApi) -> tuple[dict[str, str], dict[str, str]]:
    """Provider and tenant names by id, providers in the order of their names."""
    providers = sorted(await api.get("/providers"), key=lambda p: p["name"])
    tenants = await tenant_names(api)
    return {p["id"]: f"{p['name']} ({p['kind']})" for p in providers}, tenants


def _served_by(route: dict[str, Any], providers: dict[str, str]) -> str:
    ids = dict.fromkeys(d["provider_id"] for d in route["deployments"])
    return ", ".join(providers.get(i, i) for i in ids)


async def _list_page(
    request: Request[Any, Any, Any],
    api: AdminApi,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    found = await api.get("/routes")
    providers, tenants = await _names(api)
    return page(
        request,
        "console/routes.html",
        status=status,
        title="Routes",
        routes=sorted(found, key=lambda r: r["model"]),
        served_by={r["id"]: _served_by(r, providers) for r in found},
        providers=bool(providers),
        provider_options=list(providers.items()),
        tenants=tenants,
        form=form or {},
        errors=errors or {},
    )


@get("/routes")
async def routes(request: Request[Any, Any, Any]) -> Template:
    async with admin_api(request) as api:
        return await _list_page(request, api)


@post("/routes", status_code=303)
async def create_route(request: Request[Any, Any, Any]) -> Response[Any] | Template:
    fields = await checked_form(request)
    body = {
        "model": fields.get("model", "").strip(),
        "deployments": [_deployment_body(fields, change=False)],
    }
    async with admin_api(request) as api:
        reply = await api.call("POST", "/routes", body)
        if reply.ok:
            return Redirect(f"/console/routes/{reply.body['id']}", status_code=303)
        return await _list_page(request, api, reply.status, fields, reply.field_errors())


@dataclass
class _Sent:
    """A refused form of the route's page, shown again: which one, what it held, and
    the API's errors by field."""

    form: str  # "settings", "add", "delete", or a deployment's id
    values: dict[str, str]
    reply: Reply


async def _route_page(
    request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID], sent: _Sent | None = None
) -> Template:
    async with admin_api(request) as api:
        route = await api.get(f"/routes/{route_id}")
        others = [r["model"] for r in await api.get("/routes") if r["id"] != route["id"]]
        providers, tenants = await _names(api)
        health = {}
        for d in route["deployments"]:
            reply = await api.call("GET", f"/deployments/{d['id']}/health")
            health[d["id"]] = health_of(reply.body["replicas"]) if reply.ok else None
    forms = {d["id"]: _deployment_values(d) for d in route["deployments"]}
    forms |= {"settings": _settings_values(route), "add": {}, "delete": {}}
    errors: dict[str, dict[str, str]] = {name: {} for name in forms}
    if sent is not None:
        forms[sent.form] = sent.values or forms.get(sent.form, {})
        errors[sent.form] = sent.reply.field_errors()
    return page(
        request,
        "console/route.html",
        status=200 if sent is None else sent.reply.status,
        title=f"Route {route['model']}",
        route=route,
        health=health,
        provider_options=list(providers.items()),
        provider_names=providers,
        tenants=sorted(tenants.items(), key=lambda t: t[1]),
        tenant_names=tenants,
        fallbacks=[("", "(none)")] + [(m, m) for m in sorted(others)],
        strategies=STRATEGIES,
        deployment_fields=DEPLOYMENT_FIELDS,
        retry_fields=RETRY_FIELDS,
        breaker_fields=BREAKER_FIELDS,
        forms=forms,
        errors=errors,
    )


def _back(route_id: FromPath[uuid.UUID]) -> Redirect:
    return Redirect(f"/console/routes/{route_id}", status_code=303)


@get("/routes/{route_id:uuid}")
async def route(request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID]) -> Template:
    return await _route_page(request, route_id)


@post("/routes/{route_id:uuid}", status_code=303)
async def change_route(
    request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    fields = await checked_form(request)
    async with admin_api(request) as api:
        reply = await api.call("PATCH", f"/routes/{route_id}", _settings_body(fields))
    if reply.ok:
        return _back(route_id)
    return await _route_page(request, route_id, _Sent("settings", fields, reply))


@post("/routes/{route_id:uuid}/delete", status_code=303)
async def delete_route(
    request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    await checked_form(request)
    async with admin_api(request) as api:
        reply = await api.call("DELETE", f"/routes/{route_id}")
    if reply.ok:
        return Redirect("/console/routes", status_code=303)
    return await _route_page(request, route_id, _Sent("delete", {}, reply))


@post("/routes/{route_id:uuid}/deployments", status_code=303)
async def add_deployment(
    request: Request[Any, Any, Any], route_id: FromPath[uuid.UUID]
) -> Response[Any] | Template:
    fields = await checked_form(request)
    body = _deployment_body(fields, change=False)
    async with admin_api(request) as api:
        reply = await api.call("POST", f"/routes/{route_id}/deployments", body)
    if reply.ok:
        return _back(route_id)
    return await _route_page(request, route_id, _Sent("add", fields, reply))


@post("/routes/{route_id:uuid}/deployments/{deployment_id:uuid}", status_code=303)
async def change_deployment(
    request: Request[Any, Any, Any],
    route_id: FromPath[uuid.UUID],
    deployment_id: FromPath[uuid.UUID],
) -> Response[Any] | Template:
    fields = await checked_form(request)
    path = f"/routes/{route_id}/deployments/{deployment_id}"
    async with admin_api(request) as api:
        reply = await api.call("PATCH", path, _deployment_body(fields, change=True))
    if reply.ok:
        return _back(route_id)
    return await _route_page(request, route_id, _Sent(str(deployment_id), fields, reply))


@post("/routes/{route_id:uuid}/deployments/{deployment_id:uuid}/remove", status_code=303)
async def remove_deployment(
    request: Request[Any, Any, Any],
    route_id: FromPath[uuid.UUID],
    deployment_id: FromPath[uuid.UUID],
) -> Response[Any] | Template:
    await checked_form(request)
    path = f"/routes/{route_id}/deployments/{deployment_id}"
    async with admin_api(request) as api:
        reply = await api.call("DELETE", path)
    if reply.ok:
        return _back(route_id)
    return await _route_page(request, route_id, _Sent(str(deployment_id), {}, reply))


HANDLERS = [
    routes,
    create_route,
    route,
    change_route,
    delete_route,
    add_deployment,
    change_deployment,
    remove_deployment,
]
