"""Helpers for the declarative configuration's tests: a control plane on a database of
its own for each test (an apply removes what its document has not), the size of the
event log, and documents."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.database import clone_database, drop_database, with_db
from tests.support.stack import NOWHERE, Stack, start_control_plane

__all__ = [
    "Doc",
    "apply",
    "event_count",
    "fields",
    "fresh",
    "fresh_too",
    "minimal",
    "names",
    "plan",
]

Doc = dict[str, Any]


@asynccontextmanager
async def _own(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    name = await clone_database(pg_url, template_db)
    stack = start_control_plane(with_db(pg_url, name), log_dir, handed_out)
    try:
        yield stack
    finally:
        stack.stop()
        await drop_database(pg_url, name)


@pytest.fixture
async def fresh(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    """A control plane alone, on an empty database of the test's own."""
    async with _own(pg_url, template_db, log_dir, handed_out) as stack:
        yield stack


@pytest.fixture
async def fresh_too(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    """Another, for a test that takes a configuration from one database to another."""
    async with _own(pg_url, template_db, log_dir, handed_out) as stack:
        yield stack


async def event_count(stack: Stack) -> int:
    """The rows of `events`."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    return count


async def plan(stack: Stack, doc: Doc) -> httpx.Response:
    async with stack.admin() as admin:
        return await admin.post("/config/plan", json=doc)


async def apply(stack: Stack, doc: Doc, digest: str | None = None) -> httpx.Response:
    params = {} if digest is None else {"digest": digest}
    async with stack.admin() as admin:
        return await admin.post("/config/apply", json=doc, params=params)


def names(changes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Each change as (action, kind, name), in the plan's order."""
    return [(c["action"], c["kind"], c["name"]) for c in changes]


def fields(changes: list[dict[str, Any]], kind: str, name: str) -> dict[str, tuple[Any, Any]]:
    """The fields of the change to `kind` `name`: field -> (old, new)."""
    (change,) = [c for c in changes if c["kind"] == kind and c["name"] == name]
    return {f["field"]: (f["old"], f["new"]) for f in change["fields"]}


MINIMAL: Doc = {
    "tenants": [{"name": "acme", "policy": {"rpm": 60, "models": ["chat"]}}],
    "providers": [
        {"name": "primary", "kind": "openai", "base_url": NOWHERE + "/v1", "api_key": "sk-one"},
        {"name": "backup", "kind": "openai", "base_url": NOWHERE + "/v2"},
    ],
    "routes": [
        {
            "model": "chat",
            "tenants": ["acme"],
            "deployments": [
                {"provider": "primary", "upstream_model": "gpt-a", "weight": 3},
                {"provider": "backup", "upstream_model": "gpt-b", "priority": 1},
            ],
        }
    ],
    "prices": {
        "models": [{"model": "chat", "input_per_million": 1.0, "output_per_million": 2.0}],
        "providers": [],
    },
}


def minimal() -> Doc:
    """A small document: a tenant with a policy, two providers, a route on both, a price."""
    return copy.deepcopy(MINIMAL)
