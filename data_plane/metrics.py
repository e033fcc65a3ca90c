"""Prometheus metrics of the data plane, read at scrape time.

The request path only adds to and takes from one integer (`Load`); everything else is
read from the objects it describes when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from data_plane.cache import SnapshotCache
from data_plane.snapshot import SnapshotHolder
from data_plane.sync import Follower
from data_plane.usage import UsageRecorder
from shared.budgets import period_key
from shared.event_log import REASONS
from shared.events import EVENT_SCHEMA

__all__ = [
    "CONTENT_TYPE",
    "OPEN_STREAMS",
    "REQUESTS_IN_FLIGHT",
    "BudgetCollector",
    "Load",
    "LoadCollector",
    "SyncCollector",
    "UsageCollector",
    "render",
]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

# The autoscaler's signals (deploy/k8s/prometheus-adapter/rules.yaml reads them).
REQUESTS_IN_FLIGHT = "sluice_requests_in_flight"
OPEN_STREAMS = "sluice_streams_open"


class Load:
    """Model requests being served by this replica: a plain integer (one event loop, so
    no lock; a gauge object would take one per change)."""

    __slots__ = ("requests",)

    def __init__(self) -> None:
        self.requests = 0


class LoadCollector(Collector):
    """Requests in flight (`Load`) and open streams (`open_streams()`: the size of the
    set the drain keeps of them, `data_plane/drain.py`), read at scrape time."""

    def __init__(self, load: Load, open_streams: Callable[[], int]) -> None:
        self.load, self.open_streams = load, open_streams

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield _gauge(
            REQUESTS_IN_FLIGHT,
            "Model requests (chat, messages, embeddings) being served by this replica.",
            self.load.requests,
        )
        yield _gauge(
            OPEN_STREAMS, "Streamed responses being relayed by this replica.", self.open_streams()
        )


class SyncCollector(Collector):
    """How far this replica's snapshot is from the event log."""

    def __init__(self, holder: SnapshotHolder, follower: Follower, cache: SnapshotCache) -> None:
        self.holder, self.counters, self.cache = holder, follower.counters, cache

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        holder, counters = self.holder, self.counters
        position = holder.state.position
        yield _gauge("sluice_snapshot_position", "Event position of the snapshot.", position)
        yield _gauge(
            "sluice_snapshot_events", "Events folded into the snapshot.", holder.state.event_count
        )
        yield _gauge(
            "sluice_snapshot_lag_events",
            "Newest event position heard of minus the applied one.",
            max(counters.latest_known - position, 0),
        )
        since = holder.seconds_since_sync()
        yield _gauge(
            "sluice_snapshot_seconds_since_sync",
            "Seconds since the last successful sync with the event log (-1: none yet).",
            -1 if since is None else since,
        )
        yield _gauge(
            "sluice_snapshot_stale",
            "1 while serving the disk cache, not yet checked against the database.",
            int(holder.loaded and not holder.synced),
        )
        yield _gauge(
            "sluice_event_log_connected", "1 while the LISTEN connection is up.", counters.connected
        )
        yield _counter(
            "sluice_event_log_reconnects", "Connections made after a lost one.", counters.reconnects
        )
        yield _counter(
            "sluice_event_log_connect_failures",
            "Attempts to connect to the event log that failed.",
            counters.connect_failures,
        )
        rejected = CounterMetricFamily(
            "sluice_snapshot_rejected",
            "States not used: stored snapshots that could not be read, disk caches that were "
            "unreadable or from another database, syncs whose events could not be applied.",
            labels=["reason"],
        )
        rejected.add_metric(["stored_snapshot"], counters.snapshots_refused)
        rejected.add_metric(["disk_cache"], self.cache.refused)
        rejected.add_metric(["events"], counters.failed_syncs)
        yield rejected
        blocked = GaugeMetricFamily(
            "sluice_snapshot_blocked",
            "1 while the follower is stopped at an event this build cannot apply, for `reason`.",
            labels=["reason"],
        )
        for reason in REASONS:
            stopped = counters.blocked is not None and counters.blocked.reason == reason
            blocked.add_metric([reason], int(stopped))
        yield blocked
        yield _gauge(
            "sluice_snapshot_blocked_position",
            "Position of the event the follower is stopped at (0: none).",
            0 if counters.blocked is None else counters.blocked.position,
        )
        yield _gauge(
            "sluice_event_schema", "Newest event schema this build understands.", EVENT_SCHEMA
        )


class UsageCollector(Collector):
    """Usage records waiting in this replica's spool file (the database was out of reach
    while the memory buffer was full, or at shutdown)."""

    def __init__(self, usage: UsageRecorder) -> None:
        self.usage = usage

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield _gauge(
            "sluice_usage_spooled_records",
            "Usage records waiting in the spool file to be written to the database.",
            self.usage.waiting,
        )


class BudgetCollector(Collector):
    """Scopes cut off for the current period of their budget (`budget.exhausted`), by
    scope kind, as the snapshot has them."""

    def __init__(self, holder: SnapshotHolder) -> None:
        self.holder = holder

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.holder.state
        today = datetime.now(UTC).date()
        counts = {"tenant": 0, "key": 0}
        policies = {"tenant": state.tenant_policies, "key": state.key_policies}
        for scope, period in state.budget_exhausted.items():
            kind, _, owner = scope.partition(":")
            policy = policies[kind].get(owner) if kind in policies else None
            if policy is not None and period == period_key(policy.budget_period, today):
                counts[kind] += 1
        family = GaugeMetricFamily(
            "sluice_budgets_exhausted",
            "Scopes whose budget is spent for the current period (refused with 429).",
            labels=["scope"],
        )
        for kind, count in counts.items():
            family.add_metric([kind], count)
        yield family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
