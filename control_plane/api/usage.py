"""Usage reports: requests, tokens and cost by time bucket, grouped by tenant, key,
model, operation and/or dialect. From the hourly roll-ups, or, when the operation
or the dialect is asked for (grouped or filtered by), from the usage records
themselves, which alone carry them; the buckets are the same either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter

from control_plane.api.common import END, TEXT, get_store, tenant_scope
from control_plane.api.time_range import checked_range, time_parameter
from control_plane.authz import LISTING, needs
from control_plane.errors import Invalid
from control_plane.queries import Q

__all__ = ["UsageController"]

Operation = Literal["chat", "messages", "embeddings"]
Dialect = Literal["openai", "anthropic"]
_COLUMN = {
    "tenant": "tenant_id",
    "key": "key_id",
    "model": "model",
    "operation": "operation",
    "dialect": "dialect",
}
_BY_REQUEST = frozenset({"operation", "dialect"})  # not in the hourly roll-ups
# `tenant, key`: dimensions of _COLUMN, comma-separated (spaces and empty items ignored)
_DIMENSION = rf"(?:(?:{'|'.join(_COLUMN)}) *)?"
GROUP_BY = rf"^ *{_DIMENSION}(?:, *{_DIMENSION})*" + END


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
    operation: str | None = None  # chat, messages, embeddings
    dialect: str | None = None  # the API the client spoke: openai, anthropic


class UsageReport(msgspec.Struct):
    since: datetime
    until: datetime
    bucket: str
    group_by: list[str]
    data: list[UsageRow]


class UsageController(Controller):
    path = "/usage"
    tags = ["usage"]

    @get(
        summary="Usage by time bucket, grouped by tenant, key, model, operation, dialect",
        opt=needs(LISTING),
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        since: Annotated[datetime | None, time_parameter("Default: a day before until.")] = None,
        until: Annotated[datetime | None, time_parameter("Default: now.")] = None,
        bucket: FromQuery[Literal["hour", "day"]] = "hour",
        group_by: Annotated[
            str,
            QueryParameter(
                description="Comma-separated: tenant, key, model, operation, dialect.",
                pattern=GROUP_BY,
            ),
        ] = "tenant",
        tenant_id: FromQuery[uuid.UUID | None] = None,
        key_id: FromQuery[uuid.UUID | None] = None,
        model: Annotated[str | None, QueryParameter(max_length=200, pattern=TEXT)] = None,
        operation: FromQuery[Operation | None] = None,
        dialect: FromQuery[Dialect | None] = None,
    ) -> UsageReport:
        checked_range(since, until)
        until = until or datetime.now(UTC)
        since = since or until - timedelta(days=1)
        if since >= until:
            raise Invalid("since must be before until", field="since", source="query")
        dims = [d.strip() for d in group_by.split(",") if d.strip()]  # as GROUP_BY says
        # whole buckets: the one `since` falls in is included
        first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            first = first.replace(hour=0)
        pool = get_store(request).pool
        filters = (tenant_id, key_id, model)
        if _BY_REQUEST.intersection(dims) or operation is not None or dialect is not None:
            # the hours the roll-ups would count: those that start before `until`
            end = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            end = end if end == until else end + timedelta(hours=1)
            query = Q.usage_report_by_request
            rows = await pool.fetch(
                query, bucket, first, end, *filters, operation, dialect, tenant_scope(request)
            )
        else:
            rows = await pool.fetch(
                Q.usage_report, bucket, first, until, *filters, tenant_scope(request)
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
