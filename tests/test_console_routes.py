"""The console's providers and routes pages over real HTTP, against a real stack (a
fake upstream, the control plane, two data planes): what their forms create is what
the admin API then holds; a provider's key never comes back into a page; the API's
refusals show next to the field at fault; a route's page shows each deployment's
health from the data planes' own reports; a tenant admin gets the API's 403."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import time
from typing import Any

import httpx

from tests.support.authz import create_token
from tests.support.console import csrf_of, logged_in
from tests.support.stack import Stack

DEAD_UPSTREAM = "http://127.0.0.1:9/v1"  # nothing listens there


def _field_error(page: str, field: str) -> str:
    """The message shown next to a form's field (its `role=alert` paragraph)."""
    found = re.search(
        rf'id="[a-z0-9]+-{field}-error" class="field-error" role="alert">([^<]*)<', page
    )
    assert found is not None, f"no error next to {field}"
    return html.unescape(found.group(1))


def _row(page: str, deployment_id: str) -> str:
    found = re.search(rf'<tr id="deployment-{deployment_id}">(.*?)</tr>', page, re.DOTALL)
    assert found is not None, f"no row for deployment {deployment_id}"
    return found.group(1)


def _cell(row: str, name: str) -> str:
    found = re.search(rf'data-field="{name}">([^<]*)<', row)
    assert found is not None, f"no {name} in the row"
    return found.group(1).strip()


async def _post(client: httpx.AsyncClient, page: str, action: str, **fields: str) -> httpx.Response:
    """Post a form of the console page at `page` (with that page's CSRF token)."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={"csrf": csrf_of(shown.text), **fields})


async def _new_provider(
    client: httpx.AsyncClient, base_url: str, api_key: str = ""
) -> tuple[str, str]:
    """A provider made through the console's form: its id and name."""
    name = "console-" + secrets.token_hex(4)
    resp = await _post(
        client,
        "/console/providers",
        "/console/providers",
        name=name,
        kind="openai",
        base_url=base_url,
        api_key=api_key,
    )
    assert resp.status_code == 303, resp.text
    return resp.headers["location"].rsplit("/", 1)[1], name


async def _new_route(client: httpx.AsyncClient, model: str, provider_id: str, **more: str) -> str:
    resp = await _post(
        client,
        "/console/routes",
        "/console/routes",
        model=model,
        provider_id=provider_id,
        upstream_model=more.pop("upstream_model", "fake-model"),
        **more,
    )
    assert resp.status_code == 303, resp.text
    return resp.headers["location"].rsplit("/", 1)[1]


async def _api(stack: Stack, path: str) -> Any:
    async with stack.admin() as admin:
        resp = await admin.get(path)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_create_a_provider_and_a_route_through_the_console(stack: Stack) -> None:
    async with logged_in(stack.control_plane_url, stack.admin_token) as client:
        routes = await client.get("/console/routes")
        assert routes.status_code == 200
        assert "create a provider first" in routes.text
        assert 'action="/console/routes"' not in routes.text  # no form without a provider
        providers = await client.get("/console/providers")
        assert "No providers yet" in providers.text
        assert 'type="password"' in providers.text  # the key is typed into a password input

        provider_id, name = await _new_provider(client, stack.fake_url + "/v1/", "sk-" + "x" * 20)
        provider = await _api(stack, f"/providers/{provider_id}")
        assert (provider["name"], provider["kind"]) == (name, "openai")
        assert provider["base_url"] == stack.fake_url + "/v1"  # as the API stores it
        assert provider["has_api_key"] is True
        listed = (await client.get("/console/providers")).text
        assert name in listed
        assert stack.fake_url + "/v1" in listed

        model = "console-model-" + secrets.token_hex(3)
        route_id = await _new_route(
            client, model, provider_id, upstream_model="up-1", weight="3", priority="1"
        )
        route = await _api(stack, f"/routes/{route_id}")
        assert route["model"] == model
        [deployment] = route["deployments"]
        assert deployment["provider_id"] == provider_id
        assert (deployment["upstream_model"], deployment["weight"], deployment["priority"]) == (
            "up-1",
            3,
            1,
        )
        listed = (await client.get("/console/routes")).text
        assert f'href="/console/routes/{route_id}">{model}</a>' in listed
        page = (await client.get(f"/console/routes/{route_id}")).text
        assert "no reports" in _row(page, deployment["id"])  # nothing has used it yet


async def test_deployments_added_changed_and_removed(stack: Stack) -> None:
    async with logged_in(stack.control_plane_url, stack.admin_token) as client:
        provider_id, _name = await _new_provider(client, stack.fake_url + "/v1")
        route_id = await _new_route(client, "deployments-" + secrets.token_hex(3), provider_id)
        page = f"/console/routes/{route_id}"
        base = f"/console/routes/{route_id}/deployments"
        [first] = (await _api(stack, f"/routes/{route_id}"))["deployments"]

        # the route's last deployment cannot go: the API's 409, shown on the page
        resp = await _post(client, page, f"{base}/{first['id']}/remove")
        assert resp.status_code == 409
        assert "at least one" in html.unescape(resp.text)

        resp = await _post(
            client, page, base, provider_id=provider_id, upstream_model="up-2", weight="5"
        )
        assert resp.status_code == 303, resp.text
        deployments = (await _api(stack, f"/routes/{route_id}"))["deployments"]
        [second] = [d for d in deployments if d["id"] != first["id"]]
        assert (second["upstream_model"], second["weight"]) == ("up-2", 5)

        # a quota that is not a number: 400, next to the field, with the values sent
        resp = await _post(
            client, page, f"{base}/{second['id']}", upstream_model="up-3", rpm="many"
        )
        assert resp.status_code == 400
        assert _field_error(resp.text, "rpm")
        resp = await _post(
            client, page, f"{base}/{second['id']}", upstream_model="up-3", weight="2", rpm="600"
        )
        assert resp.status_code == 303, resp.text
        changed = await _api(stack, f"/routes/{route_id}/deployments/{second['id']}")
        assert (changed["upstream_model"], changed["weight"], changed["rpm"]) == ("up-3", 2, 600)

        resp = await _post(client, page, f"{base}/{first['id']}/remove")
        assert resp.status_code == 303, resp.text
        left = (await _api(stack, f"/routes/{route_id}"))["deployments"]
        assert [d["id"] for d in left] == [second["id"]]


async def test_route_settings(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    async with logged_in(stack.control_plane_url, stack.admin_token) as client:
        provider_id, _name = await _new_provider(client, stack.fake_url + "/v1")
        model, other = "limited-" + secrets.token_hex(3), "wider-" + secrets.token_hex(3)
        route_id = await _new_route(client, model, provider_id)
        await _new_route(client, other, provider_id)
        page = f"/console/routes/{route_id}"
        shown = (await client.get(page)).text
        assert f'name="tenant-{tenant["id"]}"' in shown  # a checkbox per tenant
        assert f'<option value="{other}"' in shown  # other routes as context fallbacks

        resp = await _post(client, page, page, strategy="weighted", context_fallback=model)
        assert resp.status_code == 422
        assert "another model" in _field_error(resp.text, "context_fallback")
        resp = await _post(client, page, page, strategy="weighted", max_attempts="many")
        assert resp.status_code == 400
        assert _field_error(resp.text, "max_attempts")
        assert 'value="many"' in resp.text

        resp = await _post(
            client,
            page,
            page,
            **{f"tenant-{tenant['id']}": "on"},
            strategy="least_in_flight",
            context_fallback=other,
            max_attempts="2",
            ratio="0.25",
        )
        assert resp.status_code == 303, resp.text
        route = await _api(stack, f"/routes/{route_id}")
        assert route["tenant_ids"] == [tenant["id"]]
        assert (route["strategy"], route["context_fallback"]) == ("least_in_flight", other)
        assert (route["retry"]["max_attempts"], route["breaker"]["ratio"]) == (2, 0.25)
        listed = (await client.get("/console/routes")).text
        row = listed[listed.index(f'href="/console/routes/{route_id}"') :].split("</tr>")[0]
        assert tenant["name"] in row
        assert other in row

        # no tenant ticked: every tenant again
        resp = await _post(client, page, page, strategy="least_in_flight")
        assert resp.status_code == 303, resp.text
        route = await _api(stack, f"/routes/{route_id}")
        assert route["tenant_ids"] is None
        assert route["context_fallback"] is None


async def test_provider_price_and_removal(stack: Stack) -> None:
    async with logged_in(stack.control_plane_url, stack.admin_token) as client:
        provider_id, _name = await _new_provider(client, stack.fake_url + "/v1")
        page = f"/console/providers/{provider_id}"
        resp = await _post(
            client, page, f"{page}/price", input_per_million="-1", output_per_million="2"
        )
        assert resp.status_code == 400
        assert _field_error(resp.text, "input_per_million")
        resp = await _post(
            client, page, f"{page}/price", input_per_million="0.5", output_per_million="2"
        )
        assert resp.status_code == 303, resp.text
        provider = await _api(stack, f"/providers/{provider_id}")
        assert (provider["input_per_million"], provider["output_per_million"]) == (0.5, 2.0)

        route_id = await _new_route(client, "served-" + secrets.token_hex(3), provider_id)
        resp = await _post(client, page, f"{page}/delete")
        assert resp.status_code == 409  # it serves a route: the API's refusal, on the page
        assert route_id in resp.text
        gone = await _post(
            client, f"/console/routes/{route_id}", f"/console/routes/{route_id}/delete"
        )
        assert gone.status_code == 303, gone.text
        resp = await _post(client, page, f"{page}/delete")
        assert resp.status_code == 303, resp.text
        async with stack.admin() as admin:
            assert (await admin.get(f"/providers/{provider_id}")).status_code == 404
        assert (await client.get(page)).status_code == 404


async def test_the_provider_key_never_comes_back(stack: Stack) -> None:
    key, rotated = "sk-console-" + secrets.token_hex(16), "sk-rotated-" + secrets.token_hex(16)
    stack.handed_out += [key, rotated]
    async with logged_in(stack.control_plane_url, stack.admin_token) as client:
        provider_id, name = await _new_provider(client, stack.fake_url + "/v1", key)
        # refused forms are shown again with what was typed, but not the key
        again = await _post(
            client,
            "/console/providers",
            "/console/providers",
            name=name,
            kind="openai",
            base_url=stack.fake_url + "/v1",
            api_key=key,
        )
        assert again.status_code == 409
        page = f"/console/providers/{provider_id}"
        refused = await _post(client, page, page, name=name, base_url="nope", api_key=rotated)
        assert refused.status_code == 400
        assert (await _api(stack, f"/providers/{provider_id}"))["base_url"] == (
            stack.fake_url + "/v1"
        )
        rotate = await _post(
            client, page, page, name=name, base_url=stack.fake_url + "/v1", api_key=rotated
        )
        assert rotate.status_code == 303, rotate.text
        assert (await _api(stack, f"/providers/{provider_id}"))["has_api_key"] is True
        route_id = await _new_route(client, "secret-" + secrets.token_hex(3), provider_id)
        pages = [again, refused]
        for path in ("/console/providers", page, "/console/routes", f"/console/routes/{route_id}"):
            pages.append(await client.get(path))
        for resp in pages:
            assert name in resp.text
            assert key not in resp.text, str(resp.url)
            assert rotated not in resp.text, str(resp.url)


async def test_api_refusals_next_to_their_fields(stack: Stack) -> None:
    async with logged_in(stack.control_plane_url, stack.admin_token) as client:
        bad_url = {"name": "bad-" + secrets.token_hex(4), "kind": "openai", "base_url": "ftp:x"}
        async with stack.admin() as admin:
            direct = await admin.post("/providers", json=bad_url)
        assert direct.status_code == 400
        [error] = direct.json()["errors"]
        assert error["key"] == "base_url"
        resp = await _post(client, "/console/providers", "/console/providers", **bad_url)
        assert resp.status_code == 400
        assert _field_error(resp.text, "base_url") == error["message"]
        assert 'value="ftp:x"' in resp.text  # what was typed stays in the form

        provider_id, name = await _new_provider(client, stack.fake_url + "/v1")
        resp = await _post(
            client,
            "/console/providers",
            "/console/providers",
            name=name,
            kind="openai",
            base_url=stack.fake_url + "/v1",
        )
        assert resp.status_code == 409
        assert "already exists" in _field_error(resp.text, "name")

        model = "taken-" + secrets.token_hex(3)
        await _new_route(client, model, provider_id)
        resp = await _post(
            client,
            "/console/routes",
            "/console/routes",
            model=model,
            provider_id=provider_id,
            upstream_model="m",
        )
        assert resp.status_code == 409
        assert "already routed" in _field_error(resp.text, "model")
        resp = await _post(
            client,
            "/console/routes",
            "/console/routes",
            model="other-" + secrets.token_hex(3),
            provider_id=provider_id,
            upstream_model="m",
            weight="0",
        )
        assert resp.status_code == 400
        assert ">= 1" in _field_error(resp.text, "weight")


async def _chat(stack: Stack, key: str, model: str) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(
            stack.data_plane_urls[0] + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hello there"}]},
        )
    return resp.status_code


async def _until_row(
    client: httpx.AsyncClient, route_id: str, deployment_id: str, shows: str
) -> str:
    """The deployment's row on the route's page, once it shows `shows` (the replicas
    report every 2 s)."""
    deadline = time.monotonic() + 30
    while True:
        page = await client.get(f"/console/routes/{route_id}")
        assert page.status_code == 200
        row = _row(page.text, deployment_id)
        if shows in row:
            return row
        assert time.monotonic() < deadline, f"the page never showed {shows!r}: {row}"
        await asyncio.sleep(0.5)


async def test_a_route_page_shows_each_deployments_health(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    key = (await stack.create_key(tenant["id"]))["key"]
    async with logged_in(stack.control_plane_url, stack.admin_token) as client:
        provider_id, _name = await _new_provider(client, stack.fake_url + "/v1", stack.upstream_key)
        model = "healthy-" + secrets.token_hex(3)
        route_id = await _new_route(client, model, provider_id)
        [deployment] = (await _api(stack, f"/routes/{route_id}"))["deployments"]
        await stack.until_model(key, model, within=10)
        for _ in range(3):
            assert await _chat(stack, key, model) == 200
        row = await _until_row(client, route_id, deployment["id"], 'data-field="attempts">3<')
        assert 'class="badge good" data-state="closed"' in row
        assert _cell(row, "error-rate") == "0.0 %"
        assert _cell(row, "replicas") == "1"  # only the first data plane used it
        assert _cell(row, "latency").isdigit()  # time to first token, from the report

        # an upstream where nothing listens, behind a breaker that opens at once
        dead_id, _dead = await _new_provider(client, DEAD_UPSTREAM)
        dead_model = "dead-" + secrets.token_hex(3)
        dead_route = await _new_route(client, dead_model, dead_id)
        page = f"/console/routes/{dead_route}"
        resp = await _post(
            client,
            page,
            page,
            strategy="weighted",
            max_attempts="1",
            failures="1",
            cooldown="600",
        )
        assert resp.status_code == 303, resp.text
        settings = await _api(stack, f"/routes/{dead_route}")
        assert settings["retry"]["max_attempts"] == 1
        assert (settings["breaker"]["failures"], settings["breaker"]["cooldown"]) == (1, 600)
        [dead] = settings["deployments"]
        await stack.until_model(key, dead_model, within=10)
        assert await _chat(stack, key, dead_model) >= 500
        row = await _until_row(client, dead_route, dead["id"], 'data-state="open"')
        assert 'class="badge bad"' in row
        assert _cell(row, "error-rate") == "100.0 %"


async def test_a_tenant_admin_is_refused_providers_and_routes(stack: Stack) -> None:
    tenant = await stack.create_tenant()
    token = (await create_token(stack, "tenant_admin", tenant["id"]))["token"]
    async with stack.admin() as admin:
        route = (await admin.get("/routes")).json()
    async with logged_in(stack.control_plane_url, token) as client:
        own = await client.get(f"/console/tenants/{tenant['id']}")
        assert own.status_code == 200
        assert 'href="/console/providers"' not in own.text  # not in the nav either
        assert 'href="/console/routes"' not in own.text
        paths = ["/console/providers", "/console/routes"]
        paths += [f"/console/routes/{r['id']}" for r in route[:1]]
        for path in paths:
            resp = await client.get(path)
            assert resp.status_code == 403, path
            assert "Not allowed" in resp.text
        resp = await _post(
            client,
            f"/console/tenants/{tenant['id']}",
            "/console/providers",
            name="x",
            kind="openai",
            base_url=stack.fake_url + "/v1",
        )
        assert resp.status_code == 403
        async with stack.admin() as admin:
            names = [p["name"] for p in (await admin.get("/providers")).json()]
        assert "x" not in names
