"""The admin API over real HTTP: authentication, resources, problem details, concurrency."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx
import pytest

from control_plane.app import create_app
from shared.config import Settings
from tests.support.stack import Stack

PUBLIC = re.compile(r"^(/healthz|/readyz|/admin/schema(/.*)?)$")
# the console's pages open without a session only to log in, and its assets
CONSOLE_PUBLIC = re.compile(r"^/console/(login(/oidc(/callback)?)?|static/.*)$")


def _admin_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, path parameters filled with a UUID."""
    app = create_app(Settings(admin_token="x" * 20, secret_key="y" * 20))
    found = []
    for route in app.routes:
        path = re.sub(r"\{[^}]+:int\}", "1", route.path)
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            found.append((method, path))
    return found


def test_only_health_and_schema_are_public() -> None:
    routes = _admin_routes()
    assert len([r for r in routes if r[1].startswith("/admin/v1/")]) >= 15
    for method, path in routes:
        guarded = path.startswith(("/admin/v1/", "/console"))  # the console's: below
        assert guarded or PUBLIC.match(path), (method, path)


async def test_every_console_page_needs_a_session(stack: Stack) -> None:
    pages = [
        (method, path)
        for method, path in _admin_routes()
        if path.startswith("/console") and not CONSOLE_PUBLIC.match(path)
    ]
    assert len(pages) >= 20
    async with httpx.AsyncClient(base_url=stack.control_plane_url) as client:
        for method, path in pages:
            resp = await client.request(method, path, data={"name": "x"})
            assert resp.status_code == 303, (method, path, resp.text)
            assert resp.headers["location"] == "/console/login"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Basic YWRtaW46YWRtaW4=", "Bearer"]
)
async def test_every_admin_route_refuses_a_missing_or_wrong_token(
    stack: Stack, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    admin_routes = [r for r in _admin_routes() if r[1].startswith("/admin/v1/")]
    async with httpx.AsyncClient(base_url=stack.control_plane_url) as client:
        for method, path in admin_routes:
            resp = await client.request(method, path, headers=headers, json={"name": "x"})
            assert resp.status_code == 401, (method, path, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["status"] == 401
    async with httpx.AsyncClient(base_url=stack.control_plane_url) as client:
        # the real token opens the same door
        ok = await client.get(
            "/admin/v1/tenants", headers={"authorization": f"Bearer {stack.admin_token}"}
        )
    assert ok.status_code == 200


async def test_tenant_lifecycle_with_versions(stack: Stack) -> None:
    async with stack.admin() as admin:
        created = await admin.post("/tenants", json={"name": "lifecycle"})
        assert created.status_code == 201
        assert created.headers["etag"] == '"1"'
        tid = created.json()["id"]
        assert (await admin.get(f"/tenants/{tid}")).json()["name"] == "lifecycle"
        renamed = await admin.patch(
            f"/tenants/{tid}", json={"name": "renamed"}, headers={"if-match": '"1"'}
        )
        assert renamed.status_code == 200
        assert renamed.json()["version"] == 2
        stale = await admin.patch(
            f"/tenants/{tid}", json={"name": "again"}, headers={"if-match": '"1"'}
        )
        assert stale.status_code == 409
        assert stale.headers["content-type"] == "application/problem+json"
        assert "version 2" in stale.json()["detail"]
        names = [t["name"] for t in (await admin.get("/tenants")).json()]
        assert "renamed" in names
        assert (await admin.delete(f"/tenants/{tid}")).status_code == 204
        assert (await admin.get(f"/tenants/{tid}")).status_code == 404
        assert (await admin.delete(f"/tenants/{tid}")).status_code == 404


async def test_concurrent_updates_with_the_same_version_one_wins(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    async with stack.admin() as admin:
        results = await asyncio.gather(
            *(
                admin.patch(
                    f"/tenants/{tenant['id']}",
                    json={"name": f"racer-{i}"},
                    headers={"if-match": '"1"'},
                )
                for i in range(6)
            )
        )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 409, 409, 409, 409, 409]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/tenants", b"{not json", 400),
        ("POST", "/tenants", b'{"name": ""}', 400),
        ("POST", "/tenants", b'{"name": "a", "extra": 1}', 400),
        ("POST", "/tenants", b'["name"]', 400),
        ("GET", f"/tenants/{uuid.uuid4()}", None, 404),
        ("GET", "/tenants/not-a-uuid", None, 404),
        ("POST", f"/tenants/{uuid.uuid4()}/keys", b"{}", 404),
        ("POST", "/providers", b'{"name": "p", "base_url": "ftp://example"}', 400),
        ("POST", "/providers", b'{"name": "p", "base_url": "http://x:1/v1", "kind": "nope"}', 400),
        ("POST", "/routes", f'{{"model": "m", "provider_id": "{uuid.uuid4()}"}}'.encode(), 422),
        ("GET", "/events?limit=0", None, 400),
        ("DELETE", f"/keys/{uuid.uuid4()}", None, 404),
        ("POST", "/tenants", b'{"name": "a\\u0000b"}', 400),
        ("POST", "/tenants", b'{"name": "\xff\xfe"}', 400),
        ("POST", "/tenants", b"[" * 100_000 + b"]" * 100_000, 400),
        ("POST", "/providers", b'{"name": "p", "base_url": "http://[::1/v1"}', 400),
        ("POST", "/providers", b'{"name": "p", "base_url": "http://u:pw@example.com/v1"}', 400),
        ("POST", "/providers", b'{"name": "p", "base_url": "http://example.com:99999/v1"}', 400),
        ("POST", "/providers", b'{"name": "p", "base_url": "http://example.com:abc/v1"}', 400),
        ("POST", "/providers", b'{"name": "p", "base_url": "http://x/v1", "api_key": "a b"}', 400),
        (
            "POST",
            "/routes",
            f'{{"model": "a\\u0000", "provider_id": "{uuid.uuid4()}"}}'.encode(),
            400,
        ),
        ("GET", "/events?stream=%00", None, 400),
        ("GET", "/events?before=99999999999999999999", None, 400),
        ("GET", "/tenants?offset=99999999999999999999", None, 400),
        ("GET", "/tenants?offset=-1", None, 400),
    ],
)
async def test_bad_input_gets_problem_details(
    stack: Stack, method: str, path: str, body: bytes | None, status: int
) -> None:
    async with stack.admin() as admin:
        resp = await admin.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]


async def test_bad_if_match_is_refused(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    async with stack.admin() as admin:
        resp = await admin.patch(
            f"/tenants/{tenant['id']}", json={"name": "n"}, headers={"if-match": "yesterday"}
        )
    assert resp.status_code == 400


async def test_keys_show_their_secret_once(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    assert key["key"].startswith("sk-sluice-")
    assert key["key"].startswith(key["key_prefix"])
    async with stack.admin() as admin:
        listed = (await admin.get(f"/tenants/{tenant['id']}/keys")).json()
        one = (await admin.get(f"/keys/{key['id']}")).json()
        assert [k["id"] for k in listed] == [key["id"]]
        assert "key" not in listed[0]
        assert "key" not in one
        assert (await admin.delete(f"/keys/{key['id']}")).status_code == 204
        assert (await admin.get(f"/keys/{key['id']}")).json()["revoked_at"] is not None
        assert (await admin.delete(f"/keys/{key['id']}")).status_code == 204  # idempotent


async def test_providers_never_return_their_key(stack: Stack) -> None:
    provider = await stack.create_provider()
    assert provider["has_api_key"] is True
    assert "api_key" not in provider
    async with stack.admin() as admin:
        assert (await admin.get(f"/providers/{provider['id']}")).json() == provider
        duplicate = await admin.post(
            "/providers", json={"name": provider["name"], "base_url": "http://127.0.0.1:1/v1"}
        )
    assert duplicate.status_code == 409


async def test_routes(stack: Stack) -> None:
    provider = await stack.create_provider()
    tenant = await stack.create_tenant()
    route = await stack.create_route("routes-test", provider["id"], "up", [tenant["id"]])
    assert route["tenant_ids"] == [tenant["id"]]
    [deployment] = route["deployments"]
    assert (deployment["provider_id"], deployment["upstream_model"]) == (provider["id"], "up")
    async with stack.admin() as admin:
        again = await admin.post(
            "/routes", json={"model": "routes-test", "provider_id": provider["id"]}
        )
        assert again.status_code == 409
        unknown_tenant = await admin.post(
            "/routes",
            json={"model": "r2", "provider_id": provider["id"], "tenant_ids": [str(uuid.uuid4())]},
        )
        assert unknown_tenant.status_code == 422
        assert (await admin.delete(f"/routes/{route['id']}")).status_code == 204
        models = [r["model"] for r in (await admin.get("/routes")).json()]
        assert "routes-test" not in models


async def test_event_log_is_the_audit_log(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    await stack.create_key(tenant["id"])
    async with stack.admin() as admin:
        stream = f"tenant:{tenant['id']}"
        page = (await admin.get("/events", params={"stream": stream})).json()
        assert [e["type"] for e in page["data"]] == ["tenant.created"]
        assert page["data"][0]["actor"] == "admin:bootstrap"
        newest = (await admin.get("/events", params={"limit": 2})).json()
        positions = [e["position"] for e in newest["data"]]
        assert positions == sorted(positions, reverse=True)
        assert newest["data"][0]["type"] == "key.created"
        assert newest["data"][0]["data"]["hash"] == "<redacted>"
        older = await admin.get("/events", params={"limit": 2, "before": newest["next_before"]})
        assert all(e["position"] < positions[-1] for e in older.json()["data"])


async def test_openapi_is_served(stack: Stack) -> None:
    """At the path the README gives for the document (not the browser's viewer)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "`/admin/schema/openapi.json`" in readme
    async with httpx.AsyncClient(base_url=stack.control_plane_url) as client:
        schema = (await client.get("/admin/schema/openapi.json")).json()
    assert "/admin/v1/tenants" in schema["paths"]
    assert "/admin/v1/tenants/{tenant_id}/keys" in schema["paths"]
