"""Named SQL queries kept in `.sql` files.

A file holds one or more queries, each introduced by a header line::

    -- name: insert_event
    INSERT INTO events (...) VALUES (...) RETURNING position;

`load_queries(directory)` returns them by name. The schema check
(`shared/tools/sqlcheck.py`, `sluice check-sql`) reads the same files, so every query that runs has
been checked against the migrated schema.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["Queries", "load_queries", "parse_query_file"]

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_query_file(text: str, origin: str = "<sql>") -> dict[str, str]:
    """Split a query file into `{name: sql}`; text before the first header is a comment."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip().rstrip(";").strip()
        if not sql:
            raise ValueError(f"{origin}: query {name!r} is empty")
        if name in queries:
            raise ValueError(f"{origin}: query {name!r} is defined twice")
        queries[name] = sql
    return queries


class Queries:
    """Read-only access to the queries of one directory, by attribute or by name."""

    def __init__(self, queries: dict[str, str]) -> None:
        self._queries = dict(queries)

    def __getattr__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"no query named {name!r}") from None

    def __getitem__(self, name: str) -> str:
        return self._queries[name]

    def names(self) -> list[str]:
        return sorted(self._queries)


def load_queries(directory: Path) -> Queries:
    """Load every `*.sql` file in `directory`; query names are unique across the files."""
    merged: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, sql in parse_query_file(path.read_text(), str(path)).items():
            if name in merged:
                raise ValueError(f"{path}: query {name!r} is already defined in {directory}")
            merged[name] = sql
    return Queries(merged)
