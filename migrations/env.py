"""Alembic environment: runs migrations over asyncpg (no second database driver).

asyncpg opens the connection from the plain `postgresql://` URL, so every option
it understands there (`sslmode`, `sslrootcert`, several hosts, …) works as it
does for the planes.
"""

from __future__ import annotations

import asyncio

import asyncpg
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _run(connection: Connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    database_url = context.config.attributes["database_url"]

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(database_url)

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


asyncio.run(_main())
