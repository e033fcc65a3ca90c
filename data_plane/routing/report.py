"""Reporting this replica's deployment health to PostgreSQL (for the admin API)
and to Prometheus. Read off the request path: by the fleet sync every few
seconds, and at scrape time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from data_plane.queries import Q
from data_plane.routing.health import CLOSED, HALF_OPEN, OPEN, Health
from data_plane.snapshot import SnapshotHolder

__all__ = ["HealthCollector", "report_health"]

HEALTH_TTL = 300.0  # seconds: rows of replicas that stopped reporting are dropped after this
_STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


def _live(health: Health, holder: SnapshotHolder) -> dict[str, str]:
    """deployment id -> route id of every deployment in the snapshot; others are forgotten."""
    live = {d.id: r.id for r in holder.state.routes.values() for d in r.deployments}
    health.forget_except(set(live))
    return live


async def report_health(
    conn: asyncpg.Connection, replica: uuid.UUID, health: Health, holder: SnapshotHolder
) -> None:
    live = _live(health, holder)
    now = time.monotonic()
    rows = []
    for deployment_id, h in health.deployments.items():
        if deployment_id not in live:
            continue
        h.available(now)  # an open breaker whose cooldown is over reads as half open
        rows.append(
            (
                uuid.UUID(deployment_id),
                uuid.UUID(live[deployment_id]),
                h.state,
                h.in_flight,
                None if h.ttft is None else h.ttft * 1000,
                h.consecutive,
                h.requests,
                h.failures,
                h.last_error,
                h.last_error_at,
            )
        )
    if rows:
        columns = list(zip(*rows, strict=True))
        await conn.execute(Q.push_health, list(columns[0]), replica, *map(list, columns[1:]))
    await conn.execute(Q.prune_health, HEALTH_TTL)


class HealthCollector(Collector):
    """sluice_deployment_* metrics: this replica's view of each deployment."""

    def __init__(self, health: Health, holder: SnapshotHolder) -> None:
        self.health, self.holder = health, holder

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["deployment", "route", "model"]
        models = {r.id: r.model for r in self.holder.state.routes.values()}
        state = GaugeMetricFamily(
            "sluice_deployment_breaker_state",
            "Circuit breaker: 0 closed, 1 half open, 2 open.",
            labels=labels,
        )
        in_flight = GaugeMetricFamily(
            "sluice_deployment_in_flight", "Attempts running on this replica.", labels=labels
        )
        ttft = GaugeMetricFamily(
            "sluice_deployment_ttft_seconds",
            "Moving average of time to first token (non-streams: to the whole answer).",
            labels=labels,
        )
        requests = CounterMetricFamily(
            "sluice_deployment_attempts", "Attempts sent to the deployment.", labels=labels
        )
        failures = CounterMetricFamily(
            "sluice_deployment_failures", "Attempts that failed.", labels=labels
        )
        now = time.monotonic()
        for deployment_id, h in list(self.health.deployments.items()):
            h.available(now)
            values = [deployment_id, h.route_id, models.get(h.route_id, "")]
            state.add_metric(values, _STATE_VALUES[h.state])
            in_flight.add_metric(values, h.in_flight)
            if h.ttft is not None:
                ttft.add_metric(values, h.ttft)
            requests.add_metric(values, h.requests)
            failures.add_metric(values, h.failures)
        yield from (state, in_flight, ttft, requests, failures)
