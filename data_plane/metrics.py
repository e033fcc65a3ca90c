"""Prometheus metrics of the data plane, read at scrape time (nothing on the request path)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from data_plane.cache import SnapshotCache
from data_plane.snapshot import SnapshotHolder
from data_plane.sync import Follower

__all__ = ["CONTENT_TYPE", "SyncCollector", "render"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class SyncCollector(Collector):
    """How far this replica's snapshot is from the event log."""

    def __init__(self, holder: SnapshotHolder, follower: Follower, cache: SnapshotCache) -> None:
        self.holder, self.follower, self.cache = holder, follower, cache

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        holder, follower = self.holder, self.follower
        position = holder.state.position
        yield _gauge(
            "sluice_snapshot_position", "Event position applied to the snapshot.", position
        )
        yield _gauge(
            "sluice_snapshot_events", "Events folded into the snapshot.", holder.state.event_count
        )
        yield _gauge(
            "sluice_snapshot_lag_events",
            "Newest known event position minus the applied one.",
            max(follower.latest_known - position, 0),
        )
        since = holder.seconds_since_sync()
        yield _gauge(
            "sluice_snapshot_seconds_since_sync",
            "Seconds since the last successful sync with the event log (-1: none yet).",
            -1 if since is None else since,
        )
        yield _gauge(
            "sluice_snapshot_stale",
            "1 while serving a state not yet checked against the database (disk cache).",
            int(holder.loaded and not holder.synced),
        )
        yield _gauge(
            "sluice_event_log_connected", "1 while the LISTEN connection is up.", follower.connected
        )
        yield _counter(
            "sluice_event_log_reconnects",
            "Reconnects of the LISTEN connection.",
            follower.reconnects,
        )
        yield _counter(
            "sluice_snapshot_rejected",
            "Snapshots or caches refused (unknown schema, another database, unreadable), "
            "and syncs whose events could not be applied.",
            follower.snapshots_refused + self.cache.refused + follower.failed_syncs,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
