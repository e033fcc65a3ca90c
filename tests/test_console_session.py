"""Console sessions over real HTTP: logging in with each kind of token, the session's
cookie, CSRF on every change, logout, revocation, and a tenant admin kept to its
tenant (another tenant's pages are the same 404 as a page that does not exist)."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.support.authz import create_token
from tests.support.console import csrf_of, logged_in
from tests.support.stack import Stack, another_control_plane


async def _events(stack: Stack) -> int:
    return await stack.last_position()


async def test_pages_need_a_session(control_plane: Stack) -> None:
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as client:
        for path in ("/console", "/console/tenants", "/console/usage", "/console/audit"):
            resp = await client.get(path)
            assert resp.status_code == 303, path
            assert resp.headers["location"] == "/console/login"
        form = await client.get("/console/login")
        assert form.status_code == 200
        assert 'for="token"' in form.text
        assert 'id="token"' in form.text
        resp = await client.post(
            "/console/login", data={"csrf": csrf_of(form.text), "token": "not-a-token"}
        )
        assert resp.status_code == 401
        assert "not valid" in resp.text
        assert "sluice_session" not in resp.headers.get("set-cookie", "")


async def test_the_session_cookie_and_the_token(control_plane: Stack) -> None:
    async with logged_in(control_plane.control_plane_url, control_plane.admin_token) as client:
        cookie = client.cookies["sluice_session"]
        assert control_plane.admin_token not in cookie
        page = await client.get("/console/tenants")
        assert page.status_code == 200
        assert control_plane.admin_token not in page.text
    # the cookie is HttpOnly, SameSite=Strict, for the whole site
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as raw:
        form = await raw.get("/console/login")
        resp = await raw.post(
            "/console/login",
            data={"csrf": csrf_of(form.text), "token": control_plane.admin_token},
        )
    (set_cookie,) = [
        v for k, v in resp.headers.multi_items() if k == "set-cookie" and "sluice_session=" in v
    ]
    attributes = {part.strip().lower() for part in set_cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/console"} <= attributes
    assert any(a.startswith("max-age=") and int(a[8:]) > 11 * 3600 for a in attributes)
    assert "secure" not in attributes, "plain HTTP here: a Secure cookie would not come back"
    # only a hash of the cookie is stored
    conn = await asyncpg.connect(control_plane.database_url)
    try:
        rows = await conn.fetch("SELECT id_hash, credential FROM console_sessions")
    finally:
        await conn.close()
    session = client.cookies["sluice_session"]
    assert all(session.encode() not in bytes(r["id_hash"]) for r in rows)
    assert all(control_plane.admin_token not in r["credential"] for r in rows)


async def test_the_login_form_needs_its_own_csrf_token(control_plane: Stack) -> None:
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as client:
        resp = await client.post(
            "/console/login", data={"csrf": "forged", "token": control_plane.admin_token}
        )
        assert resp.status_code == 403
        assert "sluice_session" not in client.cookies


async def test_a_change_without_the_csrf_token_is_refused(control_plane: Stack) -> None:
    async with logged_in(control_plane.control_plane_url, control_plane.admin_token) as client:
        before = await _events(control_plane)
        for data in ({"name": "no-token"}, {"name": "wrong-token", "csrf": "x" * 43}):
            resp = await client.post("/console/tenants", data=data)
            assert resp.status_code == 403
            assert "CSRF" in resp.text
        # the admin API through the cookie alone (sent by hand: the browser keeps it for
        # /console), without the CSRF header
        cookie = {"cookie": f"sluice_session={client.cookies['sluice_session']}"}
        resp = await client.post("/admin/v1/tenants", json={"name": "cookie-only"}, headers=cookie)
        assert resp.status_code == 403
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert await _events(control_plane) == before, "nothing was written"
        page = await client.get("/console/tenants")
        resp = await client.post(
            "/console/tenants", data={"csrf": csrf_of(page.text), "name": "with-token"}
        )
        assert resp.status_code == 303
        assert await _events(control_plane) == before + 1


async def test_logout_ends_the_session_everywhere(control_plane: Stack) -> None:
    async with logged_in(control_plane.control_plane_url, control_plane.admin_token) as client:
        cookie = client.cookies["sluice_session"]
        page = await client.get("/console/tenants")
        resp = await client.post("/console/logout", data={"csrf": csrf_of(page.text)})
        assert resp.status_code == 303
        assert resp.headers["location"] == "/console/login"
    # the old cookie, replayed, no longer names a session
    async with httpx.AsyncClient(
        base_url=control_plane.control_plane_url, cookies={"sluice_session": cookie}
    ) as replay:
        resp = await replay.get("/console/tenants")
        assert resp.status_code == 303
        assert resp.headers["location"] == "/console/login"
        api = await replay.get("/admin/v1/tenants", headers={"x-csrf-token": csrf_of(page.text)})
        assert api.status_code == 401


async def test_a_revoked_token_ends_its_sessions(control_plane: Stack) -> None:
    token = await create_token(control_plane, "viewer")
    async with logged_in(control_plane.control_plane_url, token["token"]) as client:
        assert (await client.get("/console/tenants")).status_code == 200
        async with control_plane.admin() as admin:
            assert (await admin.delete(f"/admin-tokens/{token['id']}")).status_code == 204
        resp = await client.get("/console/tenants")
        assert resp.status_code == 303
        assert resp.headers["location"] == "/console/login"


async def test_a_viewer_gets_no_forms_and_cannot_post(control_plane: Stack) -> None:
    token = await create_token(control_plane, "viewer")
    async with logged_in(control_plane.control_plane_url, token["token"]) as client:
        page = await client.get("/console/tenants")
        assert "Create tenant" not in page.text
        before = await _events(control_plane)
        resp = await client.post(
            "/console/tenants", data={"csrf": csrf_of(page.text), "name": "by-a-viewer"}
        )
        assert resp.status_code == 403
        assert await _events(control_plane) == before


async def test_a_tenant_admin_sees_only_its_tenant(control_plane: Stack) -> None:
    mine = await control_plane.create_tenant("mine-" + uuid.uuid4().hex[:6])
    other = await control_plane.create_tenant("other-" + uuid.uuid4().hex[:6])
    other_key = await control_plane.create_key(other["id"])
    token = await create_token(control_plane, "tenant_admin", mine["id"])
    async with logged_in(control_plane.control_plane_url, token["token"]) as client:
        listed = await client.get("/console/tenants")
        assert mine["name"] in listed.text
        assert other["name"] not in listed.text
        assert other["id"] not in listed.text
        assert "Providers" not in listed.text, "no platform sections in its navigation"
        theirs = await client.get(f"/console/tenants/{other['id']}")
        nobody = await client.get(f"/console/tenants/{uuid.uuid4()}")
        assert theirs.status_code == nobody.status_code == 404
        assert other["name"] not in theirs.text
        key_page = await client.get(f"/console/keys/{other_key['id']}")
        assert key_page.status_code == 404
        # its own tenant: its keys can be made, the secret shown once
        page = await client.get(f"/console/tenants/{mine['id']}")
        assert page.status_code == 200
        made = await client.post(
            f"/console/tenants/{mine['id']}/keys", data={"csrf": csrf_of(page.text), "name": "ci"}
        )
        assert made.status_code == 201
        assert made.headers["cache-control"] == "no-store"
        secret = made.text.split('data-testid="key-secret">', 1)[1].split("<", 1)[0]
        assert secret.startswith("sk-sluice-")
        control_plane.handed_out.append(secret)
        again = await client.get(f"/console/tenants/{mine['id']}")
        assert secret not in again.text
        # but not its own tenant's policy (a platform admin's), nor another's keys
        before = await _events(control_plane)
        refused = await client.post(
            f"/console/tenants/{mine['id']}/policy",
            data={"csrf": csrf_of(page.text), "action": "set", "rpm": "100000"},
        )
        assert refused.status_code == 403
        posted = await client.post(
            f"/console/tenants/{other['id']}/keys", data={"csrf": csrf_of(page.text), "name": "x"}
        )
        assert posted.status_code == 404
        assert await _events(control_plane) == before


async def test_a_policy_error_is_shown_next_to_its_field(control_plane: Stack) -> None:
    tenant = await control_plane.create_tenant()
    async with logged_in(control_plane.control_plane_url, control_plane.admin_token) as client:
        page = await client.get(f"/console/tenants/{tenant['id']}")
        resp = await client.post(
            f"/console/tenants/{tenant['id']}/policy",
            data={"csrf": csrf_of(page.text), "action": "set", "rpm": "-5", "tpm": "many"},
        )
        assert resp.status_code in (400, 422)
        assert 'id="p-rpm" name="rpm" type="text" value="-5" aria-invalid="true"' in resp.text
        assert 'id="p-rpm-error"' in resp.text
        ok = await client.post(
            f"/console/tenants/{tenant['id']}/policy",
            data={"csrf": csrf_of(page.text), "action": "set", "rpm": "60", "models": "a, b"},
        )
        assert ok.status_code == 303
    async with control_plane.admin() as admin:
        policy = (await admin.get(f"/tenants/{tenant['id']}/policy")).json()
    assert policy["rpm"] == 60
    assert policy["models"] == ["a", "b"]


async def test_cookies_are_secure_when_tls_ends_at_a_proxy(control_plane: Stack) -> None:
    env = {"SLUICE_CONSOLE_SECURE_COOKIES": "true"}
    with another_control_plane(control_plane, "tls", env) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            form = await client.get("/console/login")
            (login_cookie,) = [v for k, v in form.headers.multi_items() if k == "set-cookie"]
            assert "secure" in {part.strip().lower() for part in login_cookie.split(";")}
            # sent by hand: a client keeps a Secure cookie from a plain-HTTP URL
            resp = await client.post(
                "/console/login",
                data={"csrf": csrf_of(form.text), "token": control_plane.admin_token},
                headers={"cookie": login_cookie.split(";", 1)[0]},
            )
    assert resp.status_code == 303
    cookies = [v.lower() for k, v in resp.headers.multi_items() if k == "set-cookie"]
    (session,) = [c for c in cookies if c.startswith("sluice_session=")]
    assert "secure" in {part.strip() for part in session.split(";")}


async def test_pages_are_not_cached_framed_or_scripted_from_elsewhere(control_plane: Stack) -> None:
    async with logged_in(control_plane.control_plane_url, control_plane.admin_token) as client:
        for path in ("/console/tenants", "/console/usage", "/console/audit"):
            resp = await client.get(path)
            assert resp.status_code == 200, path
            assert resp.headers["cache-control"] == "no-store"
            assert resp.headers["x-frame-options"] == "DENY"
            assert resp.headers["x-content-type-options"] == "nosniff"
            policy = resp.headers["content-security-policy"]
            assert "default-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as client:
        assert (await client.get("/console/login")).headers["x-frame-options"] == "DENY"


async def test_an_ended_sessions_cookie_is_cleared(control_plane: Stack) -> None:
    async with logged_in(control_plane.control_plane_url, control_plane.admin_token) as first:
        old = first.cookies["sluice_session"]
    # logging in again ends the session the browser had
    async with httpx.AsyncClient(
        base_url=control_plane.control_plane_url, cookies={"sluice_session": old}
    ) as browser:
        form = await browser.get("/console/login")
        resp = await browser.post(
            "/console/login",
            data={"csrf": csrf_of(form.text), "token": control_plane.admin_token},
        )
        assert resp.status_code == 303
    async with httpx.AsyncClient(
        base_url=control_plane.control_plane_url, cookies={"sluice_session": old}
    ) as replay:
        resp = await replay.get("/console/tenants")
        assert resp.status_code == 303
        cleared = [v for k, v in resp.headers.multi_items() if k == "set-cookie"]
        assert any(c.startswith('sluice_session="";') or "max-age=0" in c.lower() for c in cleared)
