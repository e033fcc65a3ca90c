"""Applying the alembic migrations: `sluice migrate`, and the test fixtures."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

__all__ = ["migrate"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_url(database_url: str) -> str:
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        raise ValueError("the database URL must start with postgresql://")
    return "postgresql+asyncpg://" + rest


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` up to `revision` (blocking)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", alembic_url(database_url).replace("%", "%%"))
    command.upgrade(config, revision)
