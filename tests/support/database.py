"""The tests' PostgreSQL: a migrated template database, cloned fresh for each test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import asyncpg

from shared.migrate import migrate

__all__ = [
    "clone_database",
    "drop_database",
    "empty_database",
    "make_template",
    "server_url",
    "with_db",
]

ROOT = Path(__file__).resolve().parents[2]


def server_url() -> str:
    """URL of the maintenance database of the test server, starting it if needed."""
    url = os.environ.get("SLUICE_TEST_PG_URL")
    if url:
        return url
    script = str(ROOT / "scripts" / "pg.sh")
    fast = {**os.environ, "SLUICE_PG_FAST": "1"}  # durability off: a server for tests
    subprocess.run([script, "start"], check=True, capture_output=True, env=fast)
    result = subprocess.run([script, "url", "postgres"], check=True, capture_output=True, text=True)
    return result.stdout.strip()


def with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def empty_database(url: str, name: str | None = None) -> str:
    """A new database with no tables (replacing one of the same name)."""
    name = name or f"sluice_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def make_template(url: str) -> str:
    name = await empty_database(url, f"sluice_template_{os.getpid()}")
    await asyncio.to_thread(migrate, with_db(url, name))
    return name


async def clone_database(url: str, template: str) -> str:
    name = f"sluice_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


async def drop_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
