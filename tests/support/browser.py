"""Headless Chromium for the console's browser tests: the system's Chromium (installed
by `scripts/browser.sh`, which `make test` runs), a fresh browser context per test,
logging in through the login form, and the screenshots in `docs/console/`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.support.stack import Stack

__all__ = ["CHROMIUM", "SHOTS", "browser", "console", "log_in", "log_out", "screenshots"]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# the sizes of the screenshots: a laptop, and a phone (the console's narrowest layout)
SIZES = {"laptop": (1366, 850), "phone": (390, 844)}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/browser.sh (make test does)"
    async with async_playwright() as playwright:
        # tests run as root in CI, where Chromium's sandbox cannot start
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def console(browser: Browser, stack: Stack) -> AsyncIterator[Page]:
    """A page of a browser context of its own (no cookies) on the control plane, at the
    laptop size; the test fails if a page's script throws."""
    width, height = SIZES["laptop"]
    context = await browser.new_context(
        base_url=stack.control_plane_url, viewport={"width": width, "height": height}
    )
    page = await context.new_page()
    thrown: list[str] = []
    page.on("pageerror", lambda error: thrown.append(str(error)))
    yield page
    await context.close()
    assert thrown == [], f"a console page's script threw: {thrown}"


async def log_in(page: Page, token: str) -> None:
    """Log in through the login form; the overview follows."""
    await page.goto("/console/login")
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(re.compile(r"/console$"))


async def log_out(page: Page) -> None:
    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/console/login$"))


async def screenshots(
    page: Page, name: str, hide: Iterable[Locator] = (), show: Locator | None = None
) -> None:
    """`docs/console/<name>-laptop.png` and `<name>-phone.png` of the page as it is
    (`hide`: parts masked out, such as a secret; `show`: a part scrolled into view when
    the screen is too short for it). At the phone's width the page must not be wider
    than the screen: wide tables scroll inside their own box."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        await page.set_viewport_size({"width": width, "height": height})
        if show is not None:
            await show.scroll_into_view_if_needed()
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px is {overflow} px wider than the screen"
        await page.screenshot(
            path=SHOTS / f"{name}-{size}.png", mask=list(hide), animations="disabled"
        )
    width, height = SIZES["laptop"]
    await page.set_viewport_size({"width": width, "height": height})
