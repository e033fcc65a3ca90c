"""Helpers and fixtures for the admin API's routes tests (control plane alone)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.stack import Stack

__all__ = ["Body", "create_route", "deployment_body", "new_model", "other_provider", "provider"]

Body = dict[str, Any]


def new_model() -> str:
    return "model-" + secrets.token_hex(4)


def deployment_body(provider_id: str, upstream: str = "up", **fields: Any) -> Body:
    return {"provider_id": provider_id, "upstream_model": upstream, **fields}


async def create_route(stack: Stack, body: Body) -> tuple[Body, str]:
    """The created route and its ETag."""
    async with stack.admin() as admin:
        resp = await admin.post("/routes", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json(), resp.headers["etag"]


@pytest.fixture(scope="module")
async def provider(control_plane: Stack) -> Body:
    return await control_plane.create_provider()


@pytest.fixture(scope="module")
async def other_provider(control_plane: Stack) -> Body:
    return await control_plane.create_provider()
