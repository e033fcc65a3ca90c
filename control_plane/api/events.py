"""The event log, read as the audit log: newest first, filtered, a page at a time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter

from control_plane.api.common import TEXT, Limit, get_store, tenant_scope
from control_plane.api.time_range import checked_range, time_parameter
from control_plane.authz import LISTING, needs
from control_plane.queries import Q

__all__ = ["EventController"]

# Fields that hold secret material, even encrypted or hashed, are not shown.
_REDACTED = frozenset({"api_key_ciphertext", "hash"})

Filter = Annotated[str | None, QueryParameter(max_length=300, pattern=TEXT)]


class AuditEvent(msgspec.Struct):
    position: int
    stream: str
    stream_version: int
    type: str
    data: dict[str, Any]
    actor: str  # who: admin:bootstrap, token:<name>, oidc:<subject>, system:<job>
    tenant_id: uuid.UUID | None  # the tenant the event belongs to; None: the platform's
    created_at: datetime


class EventPage(msgspec.Struct):
    data: list[AuditEvent]
    next_before: int | None  # pass as `before` for the next (older) page


def _redact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: ("<redacted>" if k in _REDACTED and v is not None else v) for k, v in data.items()}


class EventController(Controller):
    path = "/events"
    tags = ["audit"]

    @get(summary="Read the event log, newest first", opt=needs(LISTING))
    async def list(
        self,
        request: Request[Any, Any, Any],
        stream: Filter = None,
        type: Filter = None,
        actor: Filter = None,
        tenant_id: Annotated[
            uuid.UUID | None, QueryParameter(description="Only this tenant's events.")
        ] = None,
        since: Annotated[
            datetime | None, time_parameter("Only events at or after this time.")
        ] = None,
        until: Annotated[datetime | None, time_parameter("Only events before this time.")] = None,
        before: Annotated[
            int | None,
            QueryParameter(ge=1, le=2**63 - 1, description="Only events before this position."),
        ] = None,
        limit: Limit = 100,
    ) -> EventPage:
        """Filters combine; `next_before` pages on to older events with the same filters."""
        checked_range(since, until)
        rows = await get_store(request).pool.fetch(
            Q.list_events,
            stream,
            type,
            actor,
            since,
            until,
            before,
            limit,
            tenant_scope(request),
            tenant_id,
        )
        events = [
            AuditEvent(
                position=row["position"],
                stream=row["stream"],
                stream_version=row["stream_version"],
                type=row["type"],
                data=_redact(msgspec.json.decode(row["data"])),
                actor=row["actor"],
                tenant_id=row["tenant_id"],
                created_at=row["created_at"],
            )
            for row in rows
        ]
        next_before = events[-1].position if len(events) == limit else None
        return EventPage(data=events, next_before=next_before)
