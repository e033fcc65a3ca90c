"""Alembic migrations. Each revision runs a raw SQL file from `migrations/sql/`."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SQL_DIR", "split_statements"]

SQL_DIR = Path(__file__).parent / "sql"


def split_statements(sql: str) -> list[str]:
    """Split a migration file into statements at `;` outside quotes, comments and `$$` bodies."""
    statements, current, i, n = [], [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end
            continue
        if ch == "'" or sql.startswith("$$", i):
            quote = "'" if ch == "'" else "$$"
            end = sql.find(quote, i + len(quote))
            end = n if end == -1 else end + len(quote)
            current.append(sql[i:end])
            i = end
            continue
        if ch == ";":
            statement = "".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
        else:
            current.append(ch)
        i += 1
    tail = "".join(current).strip()
    if tail:
        statements.append(tail)
    return statements
