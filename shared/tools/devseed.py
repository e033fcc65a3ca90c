"""Demo data for local development, created through the admin API (idempotent)."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import httpx

__all__ = ["DEMO_MODEL", "Seed", "seed_demo"]

DEMO_MODEL = "demo-model"


class Seed(NamedTuple):
    tenant_id: str
    api_key: str
    model: str


def _find(items: list[dict[str, Any]], field: str, value: str) -> dict[str, Any] | None:
    return next((item for item in items if item[field] == value), None)


def _key_works(data_plane_url: str, key: str) -> bool:
    try:
        resp = httpx.get(f"{data_plane_url}/models", headers={"authorization": f"Bearer {key}"})
    except httpx.TransportError:
        return False
    return resp.status_code == 200


def seed_demo(
    control_plane_url: str,
    data_plane_url: str,
    admin_token: str,
    upstream_base_url: str,
    previous_key: str | None = None,
) -> Seed:
    """Ensure a `demo` tenant, a `fake` provider, a `demo-model` route and a working key."""
    auth = {"authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=control_plane_url, headers=auth, timeout=10) as admin:
        tenant = _find(
            admin.get("/admin/v1/tenants", params={"limit": 1000}).json(), "name", "demo"
        )
        if tenant is None:
            tenant = (
                admin.post("/admin/v1/tenants", json={"name": "demo"}).raise_for_status().json()
            )
        provider = _find(admin.get("/admin/v1/providers").json(), "name", "fake")
        if provider is None:
            provider = (
                admin.post(
                    "/admin/v1/providers",
                    json={"name": "fake", "kind": "openai", "base_url": upstream_base_url},
                )
                .raise_for_status()
                .json()
            )
        if _find(admin.get("/admin/v1/routes").json(), "model", DEMO_MODEL) is None:
            admin.post(
                "/admin/v1/routes",
                json={
                    "model": DEMO_MODEL,
                    "provider_id": provider["id"],
                    "upstream_model": "fake-1",
                },
            ).raise_for_status()
        key = previous_key if previous_key and _key_works(data_plane_url, previous_key) else None
        if key is None:
            created = admin.post(
                f"/admin/v1/tenants/{tenant['id']}/keys", json={"name": "demo"}
            ).raise_for_status()
            key = created.json()["key"]
    deadline = time.monotonic() + 10
    while not _key_works(data_plane_url, key):
        if time.monotonic() > deadline:
            raise RuntimeError("the data plane did not accept the demo key within 10 s")
        time.sleep(0.05)
    _check_completion(data_plane_url, key, provider)
    return Seed(tenant_id=tenant["id"], api_key=key, model=DEMO_MODEL)


def _check_completion(data_plane_url: str, key: str, provider: dict[str, Any]) -> None:
    """One real completion through the demo route, so a broken setup fails loudly here."""
    resp = httpx.post(
        f"{data_plane_url}/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": DEMO_MODEL, "messages": [{"role": "user", "content": "ping"}]},
        timeout=10,
    )
    if resp.status_code != 200:
        raise RuntimeError(
            f"a demo completion failed ({resp.status_code}: {resp.text}); the demo route goes to"
            f" provider 'fake' at {provider['base_url']}: is the fake provider there?"
        )
