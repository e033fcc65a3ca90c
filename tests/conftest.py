"""Fixtures: a real PostgreSQL (one migrated template, a fresh clone per test or module)
and real Sluice processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest

from shared.migrate import migrate
from tests.support.database import (
    clone_database,
    drop_database,
    make_template,
    server_url,
    with_db,
)
from tests.support.own_postgres import OwnPostgres
from tests.support.stack import Stack, start_control_plane, start_stack

# fixtures of the fake upstream (client, fake_url, session), of the routing tests
# (upstreams, failing, healthy, fresh_key, http) and of the browser tests (browser, console)
pytest_plugins = ["tests.support.fake", "tests.support.routing", "tests.support.browser"]


@pytest.fixture(scope="session")
def pg_url() -> str:
    return server_url()


@pytest.fixture(scope="session")
async def template_db(pg_url: str) -> AsyncIterator[str]:
    name = await make_template(pg_url)
    yield name
    await drop_database(pg_url, name)


@pytest.fixture
async def database_url(pg_url: str, template_db: str) -> AsyncIterator[str]:
    """A freshly migrated database of its own for one test."""
    name = await clone_database(pg_url, template_db)
    yield with_db(pg_url, name)
    await drop_database(pg_url, name)


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    """A PostgreSQL server of the module's own, migrated, which its tests may stop."""
    server = OwnPostgres()
    server.start()
    migrate(server.url())
    yield server
    server.remove()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every process the tests start logs here; the leak test reads it all."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def handed_out() -> list[str]:
    """Every secret any stack handed out during the session (keys, tokens, provider keys)."""
    return []


@asynccontextmanager
async def _on_a_database_of_its_own(
    pg_url: str, template_db: str, start: Callable[[str], Stack]
) -> AsyncIterator[Stack]:
    name = await clone_database(pg_url, template_db)
    running = start(with_db(pg_url, name))
    try:
        yield running
    finally:
        running.stop()
        await drop_database(pg_url, name)


@pytest.fixture(scope="module")
async def stack(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    """Fake provider, control plane and two data planes on a database of their own."""
    start = partial(start_stack, log_dir=log_dir, handed_out=handed_out)
    async with _on_a_database_of_its_own(pg_url, template_db, start) as running:
        yield running


@pytest.fixture(scope="module")
async def control_plane(
    pg_url: str, template_db: str, log_dir: Path, handed_out: list[str]
) -> AsyncIterator[Stack]:
    """The control plane alone (no data plane, no fake provider) on a database of its own."""
    start = partial(start_control_plane, log_dir=log_dir, handed_out=handed_out)
    async with _on_a_database_of_its_own(pg_url, template_db, start) as running:
        yield running
