"""Applying the alembic migrations: `sluice migrate`, and the test fixtures."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

__all__ = ["migrate"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` (a `postgresql://` URL) up to `revision`."""
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise ValueError("the database URL must start with postgresql://")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    command.upgrade(config, revision)
