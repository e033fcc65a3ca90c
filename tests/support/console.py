"""A browser's part in the console's HTTP tests: logging in with a token (the login
form's CSRF token and cookie), then reading a page's CSRF token to post its forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

__all__ = ["csrf_of", "logged_in", "login"]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def login(control_plane_url: str, token: str) -> httpx.AsyncClient:
    """A client logged in to the console with `token` (the caller closes it with
    `aclose()`; it cannot be entered with `async with` once used: see `logged_in`)."""
    client = httpx.AsyncClient(base_url=control_plane_url, timeout=30)
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    resp = await client.post("/console/login", data={"csrf": csrf_of(form.text), "token": token})
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/console"
    return client


@asynccontextmanager
async def logged_in(control_plane_url: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """`login`, closed on leaving the block."""
    client = await login(control_plane_url, token)
    try:
        yield client
    finally:
        await client.aclose()
