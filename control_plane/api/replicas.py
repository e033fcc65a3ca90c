"""The live data-plane replicas: how far each one's snapshot has come in the event log,
and what stops it, from the heartbeats they write (`data_plane/fleet.py`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get

from control_plane.api.common import get_store
from control_plane.authz import PLATFORM_READ, needs
from control_plane.queries import Q
from shared.replicas import LIVENESS

__all__ = ["ReplicaController", "ReplicaStatus"]


class ReplicaStatus(msgspec.Struct):
    """One replica. `position`: the last event its snapshot holds; `head`: the log's
    last event when this was read; `lag`: the events it has yet to apply (`head -
    position`, as of its last heartbeat); `blocked`: why it cannot apply the next one
    (a newer build is needed), or null; `seen_at`: its last heartbeat."""

    replica: uuid.UUID
    event_schema: int
    position: int
    head: int
    lag: int
    blocked: str | None
    seen_at: datetime


class ReplicaController(Controller):
    path = "/replicas"
    tags = ["replicas"]

    @get(
        summary="The live data-plane replicas and how far behind the log each is",
        opt=needs(PLATFORM_READ),
    )
    async def list_replicas(self, request: Request[Any, Any, Any]) -> list[ReplicaStatus]:
        """Replicas with a heartbeat in the last few seconds (an empty list: none)."""
        rows = await get_store(request).pool.fetch(Q.replicas, LIVENESS)
        return [
            ReplicaStatus(
                replica=row["replica"],
                event_schema=row["event_schema"],
                position=row["position"],
                head=row["head"],
                lag=max(row["head"] - row["position"], 0),
                blocked=row["blocked"],
                seen_at=row["seen_at"],
            )
            for row in rows
        ]
