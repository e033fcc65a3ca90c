"""Naming things on the command line: a tenant by id or name, a provider by id or name,
a route by id or public model name."""

from __future__ import annotations

import uuid
from typing import Any

from control_plane.cli.connection import Api
from control_plane.cli.errors import CliError

__all__ = ["provider_id", "route_id", "tenant_id", "tenants"]

PAGE = 1000  # the API's largest page


def _is_id(ref: str) -> bool:
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return True


def tenants(api: Api) -> list[dict[str, Any]]:
    """Every tenant the caller may see, page by page."""
    found: list[dict[str, Any]] = []
    while True:
        page = api.get("/admin/v1/tenants", params={"limit": PAGE, "offset": len(found)})
        found += page
        if len(page) < PAGE:
            return found


def _one(kind: str, ref: str, matches: list[dict[str, Any]], by: str) -> str:
    if not matches:
        raise CliError(f"no {kind} has the {by} {ref!r}")
    if len(matches) > 1:  # names are unique; this only guards a race with a rename
        raise CliError(f"several {kind}s have the {by} {ref!r}: give an id")
    return str(matches[0]["id"])


def tenant_id(api: Api, ref: str) -> str:
    if _is_id(ref):
        return ref
    return _one("tenant", ref, [t for t in tenants(api) if t["name"] == ref], "name")


def provider_id(api: Api, ref: str) -> str:
    if _is_id(ref):
        return ref
    found = [p for p in api.get("/admin/v1/providers") if p["name"] == ref]
    return _one("provider", ref, found, "name")


def route_id(api: Api, ref: str) -> str:
    if _is_id(ref):
        return ref
    found = [r for r in api.get("/admin/v1/routes") if r["model"] == ref]
    return _one("route", ref, found, "model")
