"""Checks on the admin API's refusals: problem details that name the field at fault,
and nothing appended to the event log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.support.stack import Stack

__all__ = ["assert_refused", "nothing_appended"]


def assert_refused(resp: httpx.Response, status: int, field: str | None = None) -> None:
    """`resp` is a problem with `status`; with `field`, its `errors` name that field
    by its path (`deployments[1].weight`), an unknown or missing one too."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["status"] == status
    assert problem["detail"]
    if field is not None:
        named = [e["key"] for e in problem.get("errors", [])]
        assert field in named, named


@asynccontextmanager
async def nothing_appended(stack: Stack) -> AsyncIterator[None]:
    """The event log is the same after the block as before it."""
    before = await stack.last_position()
    yield
    assert await stack.last_position() == before
