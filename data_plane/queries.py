"""The data plane's SQL, loaded once from `data_plane/sql/*.sql`."""

from __future__ import annotations

from pathlib import Path

from shared.sql import load_queries

__all__ = ["Q"]

Q = load_queries(Path(__file__).parent / "sql")
