"""Usage reports: requests, tokens and cost by time bucket, grouped by tenant,
key and/or model, from the hourly roll-ups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter

from control_plane.api.common import TEXT, get_store
from control_plane.errors import Invalid
from control_plane.queries import Q

__all__ = ["UsageController"]

Dimension = Literal["tenant", "key", "model"]
_COLUMN = {"tenant": "tenant_id", "key": "key_id", "model": "model"}


class UsageRow(msgspec.Struct, omit_defaults=True):
    bucket: datetime
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    tenant_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    model: str | None = None


class UsageReport(msgspec.Struct):
    since: datetime
    until: datetime
    bucket: str
    group_by: list[str]
    data: list[UsageRow]


class UsageController(Controller):
    path = "/usage"
    tags = ["usage"]

    @get(summary="Usage by time bucket, grouped by tenant, key and/or model")
    async def report(
        self,
        request: Request[Any, Any, Any],
        since: Annotated[datetime | None, QueryParameter(description="Default: 24 h ago.")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Default: now.")] = None,
        bucket: FromQuery[Literal["hour", "day"]] = "hour",
        group_by: Annotated[
            str, QueryParameter(description="Comma-separated: tenant, key, model.", pattern=TEXT)
        ] = "tenant",
        tenant_id: FromQuery[uuid.UUID | None] = None,
        key_id: FromQuery[uuid.UUID | None] = None,
        model: Annotated[str | None, QueryParameter(max_length=200, pattern=TEXT)] = None,
    ) -> UsageReport:
        now = datetime.now(UTC)
        until = until or now
        since = since or until - timedelta(days=1)
        for name, moment in (("since", since), ("until", until)):
            if moment.tzinfo is None:
                raise Invalid(f"{name} needs a time zone, e.g. 2026-01-31T12:00:00Z")
        if since >= until:
            raise Invalid("since must be before until")
        dims = [d.strip() for d in group_by.split(",") if d.strip()]
        unknown = [d for d in dims if d not in _COLUMN]
        if unknown:
            raise Invalid(f"group_by takes tenant, key and model, not {', '.join(unknown)}")
        # whole buckets: the one `since` falls in is included
        first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            first = first.replace(hour=0)
        rows = await get_store(request).pool.fetch(
            Q.usage_report, bucket, first, until, tenant_id, key_id, model
        )
        totals: dict[tuple[Any, ...], list[float]] = {}
        for row in rows:
            group = (row["bucket"], *(row[_COLUMN[d]] for d in dims))
            acc = totals.setdefault(group, [0, 0, 0, 0, 0.0])
            for i, column in enumerate(
                ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd")
            ):
                acc[i] += row[column]
        data = [
            UsageRow(
                bucket=group[0],
                requests=int(acc[0]),
                errors=int(acc[1]),
                prompt_tokens=int(acc[2]),
                completion_tokens=int(acc[3]),
                total_tokens=int(acc[2] + acc[3]),
                cost_usd=round(acc[4], 9),
                **{_COLUMN[d]: value for d, value in zip(dims, group[1:], strict=True)},
            )
            for group, acc in totals.items()
        ]
        return UsageReport(since=since, until=until, bucket=bucket, group_by=dims, data=data)
