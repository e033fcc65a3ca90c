"""The console in a real browser (headless Chromium): a platform admin runs a tenant
from login to a revoked key, with real requests through a data plane in between and
the audit log's rows arriving live; a tenant admin sees its own tenant only. Each
page is photographed at a laptop's and a phone's width into `docs/console/`."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from shared.secrets import KEY_PREFIX
from tests.support.authz import create_token
from tests.support.browser import log_in, log_out, screenshots
from tests.support.routing import eventually
from tests.support.stack import Stack

MODEL = "console-model"
UPSTREAM = "fake-console"  # the fake's model that MODEL is routed to
CHAT = "/v1/chat/completions"
LIVE = 10_000  # ms: a change made through the API shows in an open page within this
USAGE_WITHIN = 20.0  # s: usage reaches the database in batches


@pytest.fixture(scope="module")
async def routed(stack: Stack) -> dict[str, Any]:
    """A provider (the fake) and a route of MODEL to it, made through the admin API."""
    provider = await stack.create_provider()
    await stack.create_route(MODEL, provider["id"], UPSTREAM)
    return provider


async def _chat(stack: Stack, key: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.data_plane_urls[0], timeout=10) as client:
        return await client.post(
            CHAT,
            json={"model": MODEL, "messages": [{"role": "user", "content": "hello there"}]},
            headers={"authorization": f"Bearer {key}"},
        )


async def _status(page: Page, path: str) -> int:
    """Open `path`: the status of its page."""
    response = await page.goto(path)
    assert response is not None
    return response.status


def _tenant_id(page: Page) -> str:
    found = re.search(r"/console/tenants/([0-9a-f-]{36})$", page.url)
    assert found is not None, page.url
    return found.group(1)


async def _create_tenant(page: Page, name: str) -> str:
    await page.goto("/console/tenants")
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_role("button", name="Create tenant").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return _tenant_id(page)


async def _create_key(page: Page, stack: Stack, name: str) -> str:
    """Create a key on the open tenant's page; its secret, read from the page."""
    await page.get_by_label("New key's name").fill(name)
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="Key created")).to_be_visible()
    secret = (await page.locator("#key-secret").inner_text()).strip()
    stack.handed_out.append(secret)
    assert secret.startswith(KEY_PREFIX), "the page shows no key secret"
    await screenshots(page, "key-created", hide=[page.locator("#key-secret")])
    return secret


async def _set_rpm(page: Page, stack: Stack, tenant_id: str, rpm: int) -> None:
    await page.goto(f"/console/tenants/{tenant_id}")
    await page.get_by_label("Requests per minute").fill(str(rpm))
    await page.get_by_role("button", name="Save policy").click()
    await expect(page).to_have_url(re.compile(rf"/console/tenants/{tenant_id}$"))
    await expect(page.get_by_label("Requests per minute")).to_have_value(str(rpm))
    async with stack.admin() as admin:
        policy = await admin.get(f"/tenants/{tenant_id}/policy")
    assert policy.status_code == 200, policy.text
    assert policy.json()["rpm"] == rpm


async def _requests_in_table(table: Page | Locator, tenant: str) -> int:
    """The Requests column of a table (or a page's one table), summed over the tenant's rows."""
    headers = await table.get_by_role("columnheader").all_inner_texts()
    column = [h.strip() for h in headers].index("Requests")
    total = 0
    for row in await table.get_by_role("row").filter(has_text=tenant).all():
        total += int((await row.get_by_role("cell").nth(column).inner_text()).replace(",", ""))
    return total


async def _usage_shows(page: Page, tenant: str, requests: int) -> None:
    """The usage page, filtered to the tenant, comes to chart and list its requests
    (shown again until then: usage reaches the database in batches)."""

    async def shown() -> bool:
        await page.goto("/console/usage")
        await page.get_by_label("Tenant", exact=True).select_option(label=tenant)
        await page.get_by_role("button", name="Show").click()
        await expect(page).to_have_url(re.compile(r"tenant_id="))
        if await page.get_by_role("img").count() == 0:
            return False
        return await _requests_in_table(page, tenant) == requests

    await eventually(shown, USAGE_WITHIN, f"{requests} requests of {tenant} on the usage page", 1)


async def _overview_shows(page: Page, tenant: str, requests: int) -> None:
    """The overview counts the tenant's requests of the last day and lists both data planes."""
    await page.goto("/console")
    day = page.get_by_role("region", name="Last 24 hours")
    await expect(day.get_by_role("link", name=tenant)).to_be_visible()
    by_tenant = day.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Tenant"))
    assert await _requests_in_table(by_tenant, tenant) == requests
    replicas = page.get_by_role("region", name="Data-plane replicas")
    await expect(replicas.get_by_role("row")).to_have_count(3)  # a heading row, two planes
    await screenshots(page, "overview")


async def _provider_and_route_show(page: Page, provider: str) -> None:
    """The provider and the route made through the API, in their lists and on their pages."""
    await page.goto("/console/routes")
    route = page.get_by_role("row").filter(has=page.get_by_role("link", name=MODEL, exact=True))
    await expect(route).to_contain_text(provider)
    await screenshots(page, "routes")
    await page.goto("/console/providers")
    await page.get_by_role("link", name=provider).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(provider)
    await screenshots(page, "provider")
    await page.get_by_role("link", name=MODEL, exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(MODEL)
    deployment = page.get_by_role("row").filter(has=page.get_by_role("link", name=provider))
    await expect(deployment).to_contain_text(UPSTREAM)
    await screenshots(page, "route")
    await page.goto("/console/providers")
    await screenshots(page, "providers")


async def _revoke(page: Page, stack: Stack, tenant_id: str, name: str, secret: str) -> None:
    await page.goto(f"/console/tenants/{tenant_id}")
    await page.get_by_role("button", name=f"Revoke key {name}").click()
    row = page.get_by_role("row").filter(has_text=name)
    await expect(row.get_by_text("revoked")).to_be_visible()
    await expect(page.get_by_role("button", name=f"Revoke key {name}")).to_have_count(0)

    async def refused() -> bool:
        return (await _chat(stack, secret)).status_code == 401

    await eventually(refused, 5, "the data plane refuses the revoked key", 0.05)


async def _audit_is_live(page: Page, stack: Stack) -> None:
    """A change made through the API appears in the open audit log without a reload;
    its state link opens the state after that event, and the one before lacks it."""
    await page.goto("/console/audit")
    await page.evaluate("window.notReloaded = true")
    name = "live-" + secrets.token_hex(4)
    async with stack.admin() as admin:
        created = await admin.post("/tenants", json={"name": name})
    assert created.status_code == 201, created.text
    row = page.get_by_role("row").filter(has_text=name)
    await expect(row).to_be_visible(timeout=LIVE)
    assert await page.evaluate("window.notReloaded === true"), "the page was reloaded"
    await screenshots(page, "audit")

    await row.get_by_role("link", name=re.compile(r"^State after event \d+$")).click()
    await expect(page).to_have_url(re.compile(r"/console/state/\d+$"))
    position = int(page.url.rsplit("/", 1)[1])
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text(f"State after event {position}")
    tenants = page.get_by_role("table", name=re.compile(r"^Tenants"))
    await expect(tenants.get_by_role("row").filter(has_text=name)).to_have_count(1)
    await screenshots(page, "state")
    await page.get_by_role("link", name=re.compile(r"^← State after event")).click()
    await expect(heading).not_to_have_text(f"State after event {position}")
    await expect(tenants.get_by_role("row").filter(has_text=name)).to_have_count(0)


async def test_a_platform_admin_runs_a_tenant_from_the_browser(
    console: Page, stack: Stack, routed: dict[str, Any]
) -> None:
    page = console
    await page.goto("/console/tenants")
    await expect(page).to_have_url(re.compile(r"/console/login$"))  # no session yet
    await screenshots(page, "login")
    await log_in(page, stack.admin_token)
    tenant = "acme-" + secrets.token_hex(4)
    tenant_id = await _create_tenant(page, tenant)
    await screenshots(page, "tenant-new")
    secret = await _create_key(page, stack, "ci-runner")
    await _set_rpm(page, stack, tenant_id, 1000)
    await screenshots(page, "tenant")
    await page.goto("/console/tenants")
    await expect(page.get_by_role("link", name=tenant)).to_be_visible()
    await screenshots(page, "tenants")

    await stack.until_model(secret, MODEL, within=5)
    for _ in range(3):
        answer = await _chat(stack, secret)
        assert answer.status_code == 200, answer.text
    await page.goto(f"/console/tenants/{tenant_id}")
    await page.get_by_role("link", name="ci-runner").click()
    await expect(page.get_by_role("heading", name="Key ci-runner")).to_be_visible()
    await screenshots(page, "key")
    await _revoke(page, stack, tenant_id, "ci-runner", secret)

    await _usage_shows(page, tenant, 3)  # the requests made before the key was revoked
    await screenshots(page, "usage", show=page.get_by_role("img").first)
    await _overview_shows(page, tenant, 3)
    await _provider_and_route_show(page, routed["name"])
    await _audit_is_live(page, stack)


async def test_a_tenant_admin_sees_only_its_tenant(console: Page, stack: Stack) -> None:
    page = console
    mine, theirs = await stack.create_tenant(), await stack.create_tenant()
    token = (await create_token(stack, "tenant_admin", mine["id"], name="tenant-ops"))["token"]

    await log_in(page, token)
    await page.goto("/console/tenants")
    await expect(page.get_by_role("link", name=mine["name"])).to_be_visible()
    await expect(page.get_by_role("link", name=theirs["name"])).to_have_count(0)
    await expect(page.get_by_role("button", name="Create tenant")).to_have_count(0)
    sections = page.get_by_role("navigation", name="Sections")
    await expect(sections.get_by_role("link", name="Providers")).to_have_count(0)
    await screenshots(page, "tenants-tenant-admin")
    assert await _status(page, f"/console/tenants/{theirs['id']}") == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await screenshots(page, "not-found")
    assert await _status(page, f"/console/tenants/{mine['id']}") == 200

    await log_out(page)
    for path in ("/console", "/console/tenants", f"/console/tenants/{mine['id']}"):
        await page.goto(path)
        await expect(page).to_have_url(re.compile(r"/console/login$"))
