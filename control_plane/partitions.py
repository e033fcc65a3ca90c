"""Daily partitions of the usage table, created a week ahead.

Records whose day has no partition land in the default partition (nothing is
ever refused); a partition cannot be created over rows already there, so the
job creates them early and runs every hour and at start.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import asyncpg

__all__ = ["AHEAD_DAYS", "ensure_usage_partitions", "partition_name"]

log = logging.getLogger("sluice.control_plane.partitions")

AHEAD_DAYS = 7


def partition_name(day: date) -> str:
    return f"usage_{day:%Y%m%d}"


async def ensure_usage_partitions(conn: asyncpg.Connection, today: date | None = None) -> int:
    """Create the missing daily partitions from `today` to `AHEAD_DAYS` ahead; how many."""
    today = today or datetime.now(UTC).date()
    created = 0
    for offset in range(AHEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        name = partition_name(day)  # digits only: safe to place in the statement
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
        if exists:
            continue
        try:
            await conn.execute(
                f"CREATE TABLE {name} PARTITION OF usage"
                f" FOR VALUES FROM ('{day.isoformat()}T00:00:00Z')"
                f" TO ('{(day + timedelta(days=1)).isoformat()}T00:00:00Z')"
            )
            created += 1
        except asyncpg.PostgresError as exc:  # rows of that day already in the default
            log.warning("cannot create %s (%s); its rows stay in usage_default", name, exc)
    return created
